// Tokenizer's chat rendering: the model's Jinja template (parsed once, when the tokenizer is made)
// rendered the way transformers' apply_chat_template renders it, or a native family on request.
#include "core/error.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_state.h"

namespace flashrt {

struct Tokenizer::ChatTemplate {
  std::string text;
  std::shared_ptr<const jinja::Template> parsed;  // null: no template, or `error`
  std::string error;                              // why it did not parse

  explicit ChatTemplate(std::string source) : text(std::move(source)) {
    if (text.empty()) return;
    try {
      parsed = std::make_shared<const jinja::Template>(text);
    } catch (const Error& e) {
      // A model whose template flashrt cannot parse still tokenizes; chat says why it cannot.
      error = e.what();
    }
  }
};

Tokenizer::Tokenizer(std::shared_ptr<const State> state)
    : state_(std::move(state)),
      chat_(std::make_shared<const ChatTemplate>(state_->chat_template)) {}

const std::string& Tokenizer::chat_template() const {
  return chat_->text;
}

Tokenizer Tokenizer::with_chat_template(std::string jinja_source) const {
  auto chat = std::make_shared<const ChatTemplate>(std::move(jinja_source));
  if (!chat->error.empty()) throw Error(chat->error);
  Tokenizer t = *this;
  t.chat_ = std::move(chat);
  return t;
}

ChatConversation conversation_of(std::span<const ChatMessage> messages,
                                 const ChatOptions& options) {
  ChatConversation c;
  for (const ChatMessage& m : messages) {
    nlohmann::ordered_json j = {{"role", m.role}, {"content", m.content}};
    if (!m.reasoning_content.empty()) j["reasoning_content"] = m.reasoning_content;
    c.messages.push_back(std::move(j));
  }
  c.add_generation_prompt = options.add_generation_prompt;
  c.kwargs["enable_thinking"] = options.enable_thinking;
  return c;
}

std::string Tokenizer::render_conversation(const ChatConversation& conv,
                                           std::string_view family) const {
  if (family.empty()) return apply_chat_template(conv);
  FLASHRT_CHECK(!conv.tools.is_array() || conv.tools.empty(),
                "the built-in {} template renders no tools: use the model's template or a Jinja "
                "one that does (--chat-template FILE.jinja)",
                family);
  std::vector<ChatMessage> msgs;
  for (const auto& m : conv.messages) {
    auto text = [&m](const char* k) {
      const auto it = m.find(k);
      return it != m.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    msgs.push_back({text("role"), text("content"), text("reasoning_content")});
  }
  ChatOptions copt;
  copt.family_override = std::string(family);
  copt.add_generation_prompt = conv.add_generation_prompt;
  const auto think = conv.kwargs.find("enable_thinking");
  if (think != conv.kwargs.end() && think->is_boolean()) copt.enable_thinking = think->get<bool>();
  return render_chat(msgs, copt);
}

std::string Tokenizer::apply_chat_template(const ChatConversation& conv) const {
  if (!chat_->parsed) {
    if (!chat_->error.empty()) fail("the chat template of {}: {}", state_->origin, chat_->error);
    fail(
        "{} has no chat template; pass one with --chat-template FILE.jinja, or a built-in: "
        "--chat-template chatml (or qwen3, qwen3.5)",
        state_->origin);
  }
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  // transformers passes the special tokens the tokenizer has; an absent one stays undefined.
  if (state_->bos) ctx["bos_token"] = state_->tokens[static_cast<size_t>(*state_->bos)];
  if (state_->eos) ctx["eos_token"] = state_->tokens[static_cast<size_t>(*state_->eos)];
  for (const auto& [k, v] : conv.kwargs.items()) ctx[k] = v;
  ctx["messages"] = conv.messages;
  if (!conv.tools.is_null()) ctx["tools"] = conv.tools;
  ctx["add_generation_prompt"] = conv.add_generation_prompt;
  return chat_->parsed->render(ctx);
}

std::string Tokenizer::render_chat(std::span<const ChatMessage> messages,
                                   const ChatOptions& options) const {
  if (!options.family_override.empty())
    return flashrt::render_chat(chat_family_from_name(options.family_override), messages, options);
  return apply_chat_template(conversation_of(messages, options));
}

}  // namespace flashrt

namespace flashrt {

nlohmann::ordered_json template_message(const nlohmann::ordered_json& m, const std::string& where) {
  using ojson = nlohmann::ordered_json;
  FLASHRT_CHECK(m.is_object(), "'{}' must be an object", where);
  const auto role = m.find("role");
  FLASHRT_CHECK(role != m.end() && role->is_string(), "'{}.role' must be a string", where);
  ojson out = m;
  // OpenAI sends "content": null (or nothing) beside tool calls; templates do string operations
  // on it, so it becomes "" as vLLM and llama.cpp make it.
  if (const auto c = m.find("content"); c == m.end() || c->is_null()) out["content"] = "";
  if (const auto c = m.find("content"); c != m.end() && c->is_array()) {
    std::string text;  // [{"type": "text", "text": "..."}, ...]
    for (size_t i = 0; i < c->size(); ++i) {
      const ojson& part = (*c)[i];
      FLASHRT_CHECK(part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
                        part["text"].is_string(),
                    "'{}.content[{}]' must be a text part {{\"type\": \"text\", \"text\": ...}}",
                    where, i);
      text += part["text"].get<std::string>();
    }
    out["content"] = text;
  }
  if (const auto calls = m.find("tool_calls"); calls != m.end() && !calls->is_null()) {
    FLASHRT_CHECK(calls->is_array(), "'{}.tool_calls' must be an array", where);
    for (size_t i = 0; i < calls->size(); ++i) {
      ojson& call = out["tool_calls"][i];
      const std::string cw = fmt::format("{}.tool_calls[{}]", where, i);
      FLASHRT_CHECK(call.is_object() && call.contains("function") && call["function"].is_object(),
                    "'{}' must be an object with a 'function'", cw);
      ojson& fn = call["function"];
      FLASHRT_CHECK(fn.contains("name") && fn["name"].is_string(),
                    "'{}.function.name' must be a string", cw);
      if (auto a = fn.find("arguments"); a != fn.end() && a->is_string()) {
        ojson parsed = ojson::parse(a->get<std::string>(), nullptr, /*allow_exceptions=*/false);
        if (parsed.is_object()) *a = std::move(parsed);  // else the template gets the text
      }
    }
  }
  return out;
}

ChatConversation chat_conversation_from_json(const nlohmann::ordered_json& j) {
  FLASHRT_CHECK(j.is_object(), "a conversation must be a JSON object with 'messages'");
  ChatConversation c;
  const auto msgs = j.find("messages");
  FLASHRT_CHECK(msgs != j.end() && msgs->is_array(), "'messages' must be an array of messages");
  for (size_t i = 0; i < msgs->size(); ++i)
    c.messages.push_back(template_message((*msgs)[i], fmt::format("messages[{}]", i)));
  if (const auto t = j.find("tools"); t != j.end() && !t->is_null()) {
    FLASHRT_CHECK(t->is_array(), "'tools' must be an array");
    c.tools = *t;
  }
  if (const auto g = j.find("add_generation_prompt"); g != j.end() && !g->is_null()) {
    FLASHRT_CHECK(g->is_boolean(), "'add_generation_prompt' must be true or false");
    c.add_generation_prompt = g->get<bool>();
  } else {
    c.add_generation_prompt = false;
  }
  for (const char* key : {"kwargs", "chat_template_kwargs"}) {
    if (const auto k = j.find(key); k != j.end() && !k->is_null()) {
      FLASHRT_CHECK(k->is_object(), "'{}' must be an object", key);
      for (const auto& [name, v] : k->items()) c.kwargs[name] = v;
    }
  }
  return c;
}

}  // namespace flashrt
