// Chat templates. A model's own template (tokenizer_config.json, chat_template.jinja or GGUF
// tokenizer.chat_template) is rendered by the Jinja engine in tokenizer/jinja.h
// (Tokenizer::apply_chat_template). The families here are also rendered natively in C++, byte for
// byte as transformers would, for `--chat-template chatml|qwen3|qwen3.5` (a model without a
// template, or one whose own template is unwanted).
#pragma once
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

namespace flashrt {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", "tool"
  std::string content;
  // The assistant's thinking, if kept apart from `content` (empty = none given). Templates that
  // show thinking render it between <think> and </think>.
  std::string reasoning_content;
};

enum class ChatFamily {
  kChatML,  // <|im_start|>role\ncontent<|im_end|>\n per message, no thinking
  kQwen3,   // Qwen3: thinking blocks after the last user turn; enable_thinking=false adds an
            // empty <think>\n\n</think>\n\n to the generation prompt
  kQwen35,  // Qwen3.5: trims contents; the generation prompt opens <think>\n (thinking on) or
            // adds an empty thinking block (thinking off)
};

struct ChatOptions {
  bool add_generation_prompt = true;
  bool enable_thinking = true;
  std::string family_override;  // "chatml", "qwen3", "qwen3.5": use this instead of detecting
};

// A conversation as OpenAI's API and transformers' apply_chat_template take it: what a Jinja chat
// template is rendered with. Ordered JSON, because `tojson` prints keys in the order given.
struct ChatConversation {
  // [{"role", "content", optional "reasoning_content", "tool_calls" [{id, type, function{name,
  // arguments (an object)}}], "tool_call_id", "name"}]
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  nlohmann::ordered_json tools;  // OpenAI tool objects, or null for none
  bool add_generation_prompt = true;
  // Template variables besides these (enable_thinking, ...), as chat_template_kwargs carries them.
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();
};
// A conversation from JSON in OpenAI's request shape: {"messages", optional "tools",
// "add_generation_prompt" (default false, as transformers), "kwargs" or "chat_template_kwargs"}.
// Messages are checked (an object with a string role each) and brought to the shape templates
// expect: content null or absent becomes "", content given as text parts is joined into one
// string, and tool-call arguments given as
// JSON text (as OpenAI sends them) become objects (as vLLM and llama.cpp pass them to templates).
// Errors (flashrt::Error) name the field.
ChatConversation chat_conversation_from_json(const nlohmann::ordered_json& j);
// The same for one message, `where` naming it in errors ("messages[2]").
nlohmann::ordered_json template_message(const nlohmann::ordered_json& m, const std::string& where);
// The conversation of plain messages (reasoning_content only where given).
ChatConversation conversation_of(std::span<const ChatMessage> messages, const ChatOptions& options);

// "chatml" | "qwen3" | "qwen3.5" (also "qwen35"); throws flashrt::Error listing the known names.
ChatFamily chat_family_from_name(std::string_view name);
std::string_view chat_family_name(ChatFamily family);
// Recognises a template's family; throws flashrt::Error (suggesting --chat-template chatml) when
// the template is empty or unknown.
ChatFamily detect_chat_family(std::string_view template_text);

// Renders with a known family. Throws flashrt::Error for conversations the template itself
// rejects (e.g. Qwen3.5 wants at least one user message and a system message only first).
std::string render_chat(ChatFamily family, std::span<const ChatMessage> messages,
                        const ChatOptions& options = {});
// Renders with options.family_override if set, else the family detected from `template_text`.
std::string render_chat(std::string_view template_text, std::span<const ChatMessage> messages,
                        const ChatOptions& options = {});

}  // namespace flashrt
