// flashrt template: prints exactly what a model is fed for a conversation, rendered with its chat
// template (or --chat-template), so users can see the prompt their messages and tools become.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"

namespace flashrt::cli {

void register_template(CLI::App& app) {
  struct Opts {
    std::string model, file, chat_template;
    bool tokens = false, show_source = false;
    std::optional<bool> generation_prompt, thinking;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "template",
      "Render a conversation (JSON: messages, tools, add_generation_prompt, kwargs) with the "
      "model's chat template and print the exact text");
  cmd->add_option("-m,--model", o->model,
                  "HF folder, tokenizer.json (or a folder holding it) or .gguf")
      ->required();
  auto* f = cmd->add_option("-f,--file", o->file,
                            "Conversation JSON ('-' reads stdin): {\"messages\": [...], "
                            "\"tools\": [...], \"add_generation_prompt\": true, \"kwargs\": "
                            "{\"enable_thinking\": false}}");
  cmd->add_option("--chat-template", o->chat_template, kChatTemplateHelp);
  cmd->add_option("--add-generation-prompt", o->generation_prompt,
                  "Override the file's add_generation_prompt (true/false)");
  cmd->add_option("--thinking", o->thinking, "Set the enable_thinking template variable");
  cmd->add_flag("--tokens", o->tokens, "Print the token ids of the rendered text instead");
  cmd->add_flag("--show-source", o->show_source, "Print the chat template's Jinja source")
      ->excludes(f);
  cmd->callback([o] {
    std::string family;
    const Tokenizer tok = load_chat_tokenizer(o->model, o->chat_template, &family);
    if (o->show_source) {
      FLASHRT_CHECK(family.empty(), "the built-in {} template is rendered natively (no source)",
                    family);
      FLASHRT_CHECK(!tok.chat_template().empty(), "{} has no chat template", o->model);
      std::fputs(tok.chat_template().c_str(), stdout);
      return;
    }
    FLASHRT_CHECK(!o->file.empty(), "give the conversation with -f FILE (or --show-source)");
    std::string text;
    if (o->file == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), {});
    } else {
      std::ifstream in(o->file, std::ios::binary);
      FLASHRT_CHECK(in.good(), "cannot read {}", o->file);
      text.assign(std::istreambuf_iterator<char>(in), {});
    }
    nlohmann::ordered_json j =
        nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
    FLASHRT_CHECK(!j.is_discarded(), "{} is not valid JSON", o->file);
    ChatConversation conv;
    try {
      conv = chat_conversation_from_json(j);
    } catch (const Error& e) {
      fail("{}: {}", o->file, e.what());
    }
    if (o->generation_prompt) conv.add_generation_prompt = *o->generation_prompt;
    if (o->thinking) conv.kwargs["enable_thinking"] = *o->thinking;
    const std::string out = tok.render_conversation(conv, family);
    if (o->tokens) {
      const auto ids = tok.encode(out);
      for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
      std::printf("\n");
      return;
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
  });
}

}  // namespace flashrt::cli
