// The tokenizer against Hugging Face's own output: the 624 Qwen3 cases, the chat cases, and the
// pycoder models' prompts.
#include <gtest/gtest.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer_fixtures.h"

namespace flashrt {
namespace {

using namespace tokenizer_test;

std::string first_difference(const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return "at token " + std::to_string(i) + ": got [" + show_ids(got, i) + "] want [" +
         show_ids(want, i) + "] (lengths " + std::to_string(got.size()) + " vs " +
         std::to_string(want.size()) + ")";
}

TEST(TokenizerQwen3, EncodesAllReferenceCases) {
  const auto& cases = qwen3_cases();
  ASSERT_EQ(cases.texts.size(), 624u);
  size_t mismatches = 0;
  std::string report;
  for (size_t i = 0; i < cases.texts.size(); ++i) {
    // HF's encode parses special tokens written in the text (one case has <|im_start|>).
    const auto got = qwen3().encode(cases.texts[i]);
    if (got == cases.ids[i]) continue;
    if (++mismatches <= 5) {
      report += "case " + std::to_string(i) + " " +
                nlohmann::json(cases.texts[i].substr(0, 60)).dump() + ": " +
                first_difference(got, cases.ids[i]) + "\n";
    }
  }
  EXPECT_EQ(mismatches, 0u) << mismatches << " of " << cases.texts.size()
                            << " texts encode differently; first ones:\n"
                            << report;
}

TEST(TokenizerQwen3, DecodesAllReferenceCases) {
  const auto& cases = qwen3_cases();
  size_t mismatches = 0;
  std::string report;
  for (size_t i = 0; i < cases.ids.size(); ++i) {
    const std::string got = qwen3().decode(cases.ids[i]);
    if (got == cases.decoded[i]) continue;
    if (++mismatches <= 5) {
      report += "case " + std::to_string(i) + ": got " + nlohmann::json(got.substr(0, 60)).dump() +
                " want " + nlohmann::json(cases.decoded[i].substr(0, 60)).dump() + "\n";
    }
  }
  EXPECT_EQ(mismatches, 0u) << mismatches << " decode differently; first ones:\n" << report;
}

TEST(TokenizerQwen3, ConfigGivesSpecialTokensAndTemplate) {
  EXPECT_EQ(qwen3().vocab_size(), 151669);
  EXPECT_EQ(qwen3().eos_id(), 151645);  // <|im_end|>
  EXPECT_EQ(qwen3().pad_id(), 151643);  // <|endoftext|>
  EXPECT_FALSE(qwen3().bos_id());
  EXPECT_EQ(qwen3().pre_name(), "qwen2");
  EXPECT_EQ(qwen3().token_id("<|im_start|>"), 151644);
  EXPECT_TRUE(qwen3().is_special(151644));
  EXPECT_FALSE(qwen3().is_special(151657));  // <tool_call> is added but not special
  EXPECT_EQ(detect_chat_family(qwen3().chat_template()), ChatFamily::kQwen3);
  const auto stops = qwen3().stop_ids();
  EXPECT_NE(std::find(stops.begin(), stops.end(), 151645), stops.end());
  EXPECT_NE(std::find(stops.begin(), stops.end(), 151643), stops.end());
}

TEST(TokenizerQwen3, ChatCasesRenderToReferenceTextAndIds) {
  const auto cases = read_json(shared_dir() + "/reference/qwen3-chat-cases.json");
  ASSERT_EQ(cases.size(), 3u);
  for (const auto& c : cases) {
    std::vector<ChatMessage> messages;
    for (const auto& m : c.at("messages")) {
      messages.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>(), ""});
    }
    const std::string text = qwen3().render_chat(messages);
    EXPECT_EQ(text, c.at("text").get<std::string>());
    EXPECT_EQ(qwen3().encode(text), c.at("ids").get<std::vector<int32_t>>());
  }
}

TEST(TokenizerQwen3, SpecialTokensOnlyWhenParsingSpecial) {
  const auto with = qwen3().encode("<|im_start|>user");
  EXPECT_EQ(with, (std::vector<int32_t>{151644, 872}));
  const auto without = qwen3().encode("<|im_start|>user", /*parse_special=*/false);
  EXPECT_EQ(std::count(without.begin(), without.end(), 151644), 0);
  EXPECT_EQ(qwen3().decode(without), "<|im_start|>user");
  // <think> is an added token that is not special: one id either way.
  EXPECT_EQ(qwen3().encode("<think>", false), (std::vector<int32_t>{151667}));
  EXPECT_EQ(qwen3().decode(std::vector<int32_t>{151644, 872}, /*skip_special=*/true), "user");
}

void check_pycoder_prompts(const std::string& model) {
  const std::string dir = shared_dir() + "/models/" + model;
  const Tokenizer tok = Tokenizer::from_hf_dir_or_file(dir);
  const auto samples = read_json(dir + "/samples.json");
  ASSERT_EQ(samples.size(), 3u);
  for (size_t i = 0; i < samples.size(); ++i) {
    const std::string prompt = samples[i].at("prompt").get<std::string>();
    const auto want64 =
        read_safetensors_i64(dir + "/reference.safetensors", fmt::format("p{}.input_ids", i));
    const std::vector<int32_t> want(want64.begin(), want64.end());
    const auto got = tok.encode(prompt);
    EXPECT_EQ(got, want) << model << " prompt p" << i << ": " << first_difference(got, want);
    EXPECT_EQ(tok.decode(got), prompt);
  }
}

TEST(TokenizerPycoder, HybridPromptsEncodeToReferenceIds) {
  check_pycoder_prompts("pycoder-hybrid-12m");
}
TEST(TokenizerPycoder, DensePromptsEncodeToReferenceIds) {
  check_pycoder_prompts("pycoder-dense-7m");
}

TEST(TokenizerPycoder, ChatMLTemplateDetected) {
  EXPECT_EQ(detect_chat_family(pycoder().chat_template()), ChatFamily::kChatML);
  EXPECT_EQ(pycoder().eos_id(), 0);
  EXPECT_EQ(pycoder().vocab_size(), 8192);
  const ChatMessage msgs[] = {{"user", "hi", ""}};
  EXPECT_EQ(pycoder().render_chat(msgs), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

void check_round_trip(const Tokenizer& original) {
  const TokenizerData data = original.to_data();
  const Tokenizer copy = Tokenizer::from_data(data);
  EXPECT_EQ(copy.vocab_size(), original.vocab_size());
  EXPECT_EQ(copy.eos_id(), original.eos_id());
  EXPECT_EQ(copy.chat_template(), original.chat_template());
  const auto& cases = qwen3_cases();
  size_t mismatches = 0;
  for (const auto& text : cases.texts) {
    for (bool special : {false, true}) {
      if (copy.encode(text, special) != original.encode(text, special)) ++mismatches;
    }
  }
  EXPECT_EQ(mismatches, 0u);
  for (const std::string text : {"<|im_start|>user\nhi<|im_end|>\n", "<think>x</think>"}) {
    EXPECT_EQ(copy.encode(text), original.encode(text));
  }
  const TokenizerData again = copy.to_data();
  EXPECT_EQ(again.tokens, data.tokens);
  EXPECT_EQ(again.token_types, data.token_types);
  EXPECT_EQ(again.merges, data.merges);
  EXPECT_EQ(again.pre, data.pre);
  EXPECT_EQ(again.eos, data.eos);
}

TEST(TokenizerRoundTrip, Qwen3ThroughDataEncodesIdentically) {
  const TokenizerData data = qwen3().to_data();
  EXPECT_EQ(data.pre, "qwen2");
  EXPECT_EQ(data.tokens.size(), 151669u);
  EXPECT_EQ(data.tokens[220], "Ġ");
  EXPECT_EQ(data.token_types[151644], kTokenControl);
  EXPECT_EQ(data.token_types[151667], kTokenUserDefined);
  EXPECT_EQ(data.token_types[100], kTokenNormal);
  EXPECT_EQ(data.merges[0], "Ġ Ġ");
  check_round_trip(qwen3());
}

TEST(TokenizerRoundTrip, PycoderThroughDataEncodesIdentically) {
  check_round_trip(pycoder());
}

}  // namespace
}  // namespace flashrt
