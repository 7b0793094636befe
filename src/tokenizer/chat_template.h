// Chat templates, rendered natively: instead of a Jinja engine, flashrt recognises the template
// families it knows (from the template text in tokenizer_config.json or GGUF
// tokenizer.chat_template) and renders them in C++, byte for byte as transformers would.
#pragma once
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
