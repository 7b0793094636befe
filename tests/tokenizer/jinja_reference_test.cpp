// The Jinja renderer against transformers' apply_chat_template: the Qwen3 chat template on the 40
// agent conversations of qwen3-tool-chat-cases.json (tools, tool calls, tool results, reasoning,
// enable_thinking) and on the conversations of qwen3-chat-cases.json, byte for byte.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "core/error.h"
#include "test_paths.h"
#include "tokenizer/jinja.h"

namespace flashrt {
namespace {

using nlohmann::ordered_json;

ordered_json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ordered_json::parse(ss.str());
}

std::string reference_dir() {
  return shared_dir() + "/reference";
}

// What transformers passes besides the conversation: the special tokens of tokenizer_config.json
// that are set (Qwen3's bos_token is null, so it is absent).
void add_special_tokens(const ordered_json& config, ordered_json* context) {
  for (const char* key : {"bos_token", "eos_token"})
    if (config.contains(key) && config[key].is_string()) (*context)[key] = config[key];
}

// Where two renders part, for a readable failure.
std::string first_difference(const std::string& got, const std::string& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  const size_t from = i < 40 ? 0 : i - 40;
  return "at byte " + std::to_string(i) + ":\n  got  " +
         ordered_json(got.substr(from, 120)).dump() + "\n  want " +
         ordered_json(want.substr(from, 120)).dump();
}

TEST(JinjaReference, Qwen3ToolChatCases) {
  const ordered_json data = read_json(reference_dir() + "/qwen3-tool-chat-cases.json");
  const ordered_json config =
      read_json(reference_dir() + "/" + data["template"].get<std::string>());
  const jinja::Template tpl(config["chat_template"].get<std::string>());
  const auto& cases = data["cases"];
  ASSERT_EQ(cases.size(), 40u);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    ordered_json context;
    context["messages"] = c["messages"];
    if (c.contains("tools") && !c["tools"].is_null()) context["tools"] = c["tools"];
    context["add_generation_prompt"] = c.value("add_generation_prompt", false);
    if (c.contains("kwargs"))
      for (const auto& [k, v] : c["kwargs"].items()) context[k] = v;
    add_special_tokens(config, &context);
    const std::string want = c["text"].get<std::string>();
    std::string got;
    ASSERT_NO_THROW(got = tpl.render(context)) << "case " << i;
    EXPECT_EQ(got, want) << "case " << i << " " << first_difference(got, want);
  }
}

// The plain conversations: their ChatML text is what the Qwen3 template renders with the
// generation prompt.
TEST(JinjaReference, Qwen3ChatCases) {
  const ordered_json cases = read_json(reference_dir() + "/qwen3-chat-cases.json");
  const ordered_json config = read_json(reference_dir() + "/qwen3-tokenizer/tokenizer_config.json");
  const jinja::Template tpl(config["chat_template"].get<std::string>());
  ASSERT_FALSE(cases.empty());
  for (size_t i = 0; i < cases.size(); ++i) {
    ordered_json context;
    context["messages"] = cases[i]["messages"];
    context["add_generation_prompt"] = true;
    add_special_tokens(config, &context);
    const std::string want = cases[i]["text"].get<std::string>();
    const std::string got = tpl.render(context);
    EXPECT_EQ(got, want) << "case " << i << " " << first_difference(got, want);
  }
}

// The tiny trained models' ChatML template (the same in each of their tokenizer_config.json).
TEST(JinjaReference, PycoderModelTemplates) {
  for (const char* model : {"pycoder-dense-7m", "pycoder-hybrid-12m", "pycoder-hybrid-12m-mtp"}) {
    const ordered_json config =
        read_json(shared_dir() + "/models/" + model + "/tokenizer_config.json");
    const jinja::Template tpl(config["chat_template"].get<std::string>());
    ordered_json context;
    context["messages"] = ordered_json::array({{{"role", "system"}, {"content", "Be brief."}},
                                               {{"role", "user"}, {"content", "def f():"}}});
    context["add_generation_prompt"] = true;
    add_special_tokens(config, &context);
    EXPECT_EQ(tpl.render(context),
              "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\ndef f():<|im_end|>\n"
              "<|im_start|>assistant\n")
        << model;
  }
}

}  // namespace
}  // namespace flashrt
