#include "tokenizer/chat_template.h"

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace flashrt {
namespace {

constexpr std::string_view kStart = "<|im_start|>";
constexpr std::string_view kEnd = "<|im_end|>\n";

bool contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

// Python's str.isspace(), which Jinja's trim filter (str.strip()) uses: Unicode White_Space plus
// the information separators U+001C..U+001F.
bool py_isspace(char32_t c) {
  return utf8::is_white_space(c) || (c >= 0x1C && c <= 0x1F);
}

// Jinja `|trim`, i.e. Python str.strip().
std::string_view py_strip(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e) {
    size_t j = b;
    if (!py_isspace(utf8::next(s, j))) break;
    b = j;
  }
  while (e > b) {
    size_t start;
    if (!py_isspace(utf8::prev(s, e, start))) break;
    e = start;
  }
  return s.substr(b, e - b);
}

// Python str.lstrip('\n') / rstrip('\n') / strip('\n').
std::string_view lstrip_nl(std::string_view s) {
  while (!s.empty() && s.front() == '\n') s.remove_prefix(1);
  return s;
}
std::string_view rstrip_nl(std::string_view s) {
  while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}

bool is_tool_response(std::string_view s) {
  return s.starts_with("<tool_response>") && s.ends_with("</tool_response>");
}

// Splits "...<think>R</think>C" into reasoning and content the way both Qwen templates do:
// reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n'),
// content = content.split('</think>')[-1].lstrip('\n').
void split_thinking(std::string_view text, std::string_view& reasoning, std::string_view& content) {
  constexpr std::string_view kClose = "</think>", kOpen = "<think>";
  const size_t first_close = text.find(kClose);
  std::string_view before = rstrip_nl(text.substr(0, first_close));
  const size_t open = before.rfind(kOpen);
  if (open != std::string_view::npos) before = before.substr(open + kOpen.size());
  reasoning = lstrip_nl(before);
  content = lstrip_nl(text.substr(text.rfind(kClose) + kClose.size()));
}

void append_turn(std::string& out, std::string_view role, std::string_view content) {
  out.append(kStart).append(role).append("\n").append(content).append(kEnd);
}

std::string render_chatml(std::span<const ChatMessage> messages, const ChatOptions& options) {
  std::string out;
  for (const ChatMessage& m : messages) append_turn(out, m.role, m.content);
  if (options.add_generation_prompt) out.append(kStart).append("assistant\n");
  return out;
}

// Qwen3's template (Qwen/Qwen3-* tokenizer_config.json), without tool definitions.
std::string render_qwen3(std::span<const ChatMessage> messages, const ChatOptions& options) {
  FLASHRT_CHECK(!messages.empty(), "chat template qwen3: the conversation has no messages");
  const size_t n = messages.size();
  std::string out;
  if (messages[0].role == "system") append_turn(out, "system", messages[0].content);
  // Thinking is shown only for assistant turns after the last real user query.
  size_t last_query = n - 1;
  for (size_t k = n; k-- > 0;) {
    if (messages[k].role == "user" && !is_tool_response(messages[k].content)) {
      last_query = k;
      break;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" || (m.role == "system" && i != 0)) {
      append_turn(out, m.role, m.content);
    } else if (m.role == "assistant") {
      std::string_view content = m.content, reasoning;
      if (!m.reasoning_content.empty()) {
        reasoning = m.reasoning_content;
      } else if (contains(content, "</think>")) {
        split_thinking(m.content, reasoning, content);
      }
      out.append(kStart).append("assistant\n");
      if (i > last_query && (i == n - 1 || !reasoning.empty())) {
        out.append("<think>\n").append(rstrip_nl(lstrip_nl(reasoning))).append("\n</think>\n\n");
        out.append(lstrip_nl(content));
      } else {
        out.append(content);
      }
      out.append(kEnd);
    } else if (m.role == "tool") {
      if (i == 0 || messages[i - 1].role != "tool") out.append(kStart).append("user");
      out.append("\n<tool_response>\n").append(m.content).append("\n</tool_response>");
      if (i == n - 1 || messages[i + 1].role != "tool") out.append(kEnd);
    }
    // The Jinja template silently skips any other role; so does this.
  }
  if (options.add_generation_prompt) {
    out.append(kStart).append("assistant\n");
    if (!options.enable_thinking) out.append("<think>\n\n</think>\n\n");
  }
  return out;
}

// Qwen3.5's template (Qwen/Qwen3.5-* chat template), text only, without tool definitions.
std::string render_qwen35(std::span<const ChatMessage> messages, const ChatOptions& options) {
  FLASHRT_CHECK(!messages.empty(), "chat template qwen3.5: no messages provided");
  const size_t n = messages.size();
  std::string out;
  if (messages[0].role == "system") append_turn(out, "system", py_strip(messages[0].content));
  size_t last_query = n;
  for (size_t k = n; k-- > 0;) {
    if (messages[k].role == "user" && !is_tool_response(py_strip(messages[k].content))) {
      last_query = k;
      break;
    }
  }
  FLASHRT_CHECK(last_query < n, "chat template qwen3.5: no user query found in the messages");
  for (size_t i = 0; i < n; ++i) {
    const ChatMessage& m = messages[i];
    std::string_view content = py_strip(m.content);
    if (m.role == "system") {
      FLASHRT_CHECK(i == 0,
                    "chat template qwen3.5: a system message must be the first message "
                    "(message {} is one)",
                    i);
    } else if (m.role == "user") {
      append_turn(out, "user", content);
    } else if (m.role == "assistant") {
      std::string_view reasoning;
      if (!m.reasoning_content.empty()) {
        reasoning = m.reasoning_content;
      } else if (contains(content, "</think>")) {
        split_thinking(content, reasoning, content);
      }
      reasoning = py_strip(reasoning);
      out.append(kStart).append("assistant\n");
      if (i > last_query) out.append("<think>\n").append(reasoning).append("\n</think>\n\n");
      out.append(content).append(kEnd);
    } else if (m.role == "tool") {
      if (i > 0 && messages[i - 1].role != "tool") out.append(kStart).append("user");
      out.append("\n<tool_response>\n").append(content).append("\n</tool_response>");
      if (i == n - 1 || messages[i + 1].role != "tool") out.append(kEnd);
    } else {
      fail(
          "chat template qwen3.5: unexpected message role {:?} (message {}); expected system, "
          "user, assistant or tool",
          m.role, i);
    }
  }
  if (options.add_generation_prompt) {
    out.append(kStart).append("assistant\n");
    out.append(options.enable_thinking ? "<think>\n" : "<think>\n\n</think>\n\n");
  }
  return out;
}

}  // namespace

ChatFamily chat_family_from_name(std::string_view name) {
  if (name == "chatml") return ChatFamily::kChatML;
  if (name == "qwen3") return ChatFamily::kQwen3;
  if (name == "qwen3.5" || name == "qwen35") return ChatFamily::kQwen35;
  fail("unknown chat template {:?}; known: chatml, qwen3, qwen3.5", name);
}

std::string_view chat_family_name(ChatFamily family) {
  switch (family) {
    case ChatFamily::kChatML:
      return "chatml";
    case ChatFamily::kQwen3:
      return "qwen3";
    case ChatFamily::kQwen35:
      return "qwen3.5";
  }
  return "?";
}

ChatFamily detect_chat_family(std::string_view t) {
  FLASHRT_CHECK(!t.empty(),
                "the model has no chat template; choose one with --chat-template "
                "chatml (or qwen3, qwen3.5)");
  // The markers are pieces of the Jinja source (\n here is a backslash and an n, as in the file).
  if (contains(t, kStart) && contains(t, "<|im_end|>")) {
    if (contains(t, "enable_thinking")) {
      // Qwen3.5 opens a thinking block in the generation prompt and trims reasoning. (Qwen3.6's
      // template adds an opt-in preserve_thinking, which renders the same when not set.)
      if (contains(t, R"({{- '<think>\n' }})") && contains(t, "reasoning_content|trim") &&
          !contains(t, "preserve_thinking is undefined")) {
        return ChatFamily::kQwen35;
      }
      if (contains(t, R"(reasoning_content.strip('\n'))") &&
          contains(t, R"({{- '<think>\n\n</think>\n\n' }})")) {
        return ChatFamily::kQwen3;
      }
    } else if (!contains(t, "think") && !contains(t, "tool") && !contains(t, "system")) {
      // Plain ChatML: one <|im_start|>role\ncontent<|im_end|>\n per message, nothing else (a
      // template that mentions system or tools probably adds a default prompt of its own).
      return ChatFamily::kChatML;
    }
  }
  std::string head(t.substr(0, 60));
  fail(
      "unrecognised chat template (it begins {:?}); flashrt renders chatml, qwen3 and qwen3.5 "
      "natively: choose one with --chat-template chatml (or qwen3, qwen3.5)",
      head);
}

std::string render_chat(ChatFamily family, std::span<const ChatMessage> messages,
                        const ChatOptions& options) {
  switch (family) {
    case ChatFamily::kChatML:
      return render_chatml(messages, options);
    case ChatFamily::kQwen3:
      return render_qwen3(messages, options);
    case ChatFamily::kQwen35:
      return render_qwen35(messages, options);
  }
  fail("unknown chat family");
}

std::string render_chat(std::string_view template_text, std::span<const ChatMessage> messages,
                        const ChatOptions& options) {
  const ChatFamily family = options.family_override.empty()
                                ? detect_chat_family(template_text)
                                : chat_family_from_name(options.family_override);
  return render_chat(family, messages, options);
}

}  // namespace flashrt
