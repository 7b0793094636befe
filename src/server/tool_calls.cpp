#include "server/tool_calls.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "engine/json_schema.h"

namespace flashrt::server {
namespace {

using ojson = nlohmann::ordered_json;

constexpr std::string_view kOpen = "<tool_call>", kClose = "</tool_call>";

// How many trailing bytes of `s` could be the start of `tag` (held back until the next text shows
// whether the tag follows).
size_t partial_tag_suffix(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  return 0;
}

// {"name": "...", "arguments": {...}} (Qwen also accepts "parameters"), else nullopt.
std::optional<ParsedToolCall> parse_call(std::string_view body) {
  ojson j = ojson::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  const auto name = j.find("name");
  if (name == j.end() || !name->is_string()) return std::nullopt;
  auto args = j.find("arguments");
  if (args == j.end()) args = j.find("parameters");
  ParsedToolCall c;
  c.name = name->get<std::string>();
  if (args == j.end() || args->is_null()) {
    c.arguments = "{}";
  } else if (args->is_string()) {
    c.arguments = args->get<std::string>();  // already JSON text
  } else {
    c.arguments = args->dump(-1, ' ', false, ojson::error_handler_t::replace);
  }
  return c;
}

class HermesReader final : public ToolCallReader {
 public:
  void feed(std::string_view text, std::string& content,
            std::vector<ParsedToolCall>& calls) override {
    held_.append(text);
    for (;;) {
      if (after_call_) {  // the newline the template puts between parallel calls is not content
        while (!held_.empty() && held_.front() == '\n') held_.erase(0, 1);
        if (held_.empty()) return;
        after_call_ = false;
      }
      if (!in_call_) {
        const size_t open = held_.find(kOpen);
        if (open == std::string::npos) {
          const size_t keep = partial_tag_suffix(held_, kOpen);
          content.append(held_, 0, held_.size() - keep);
          held_.erase(0, held_.size() - keep);
          return;
        }
        content.append(held_, 0, open);
        held_.erase(0, open + kOpen.size());
        in_call_ = true;
      }
      const size_t close = held_.find(kClose);
      if (close == std::string::npos) return;
      const std::string body = held_.substr(0, close);
      if (auto c = parse_call(body)) {
        calls.push_back(std::move(*c));
      } else {  // not a call after all: the model's text, as written
        content.append(kOpen).append(body).append(kClose);
      }
      held_.erase(0, close + kClose.size());
      in_call_ = false;
      after_call_ = true;
    }
  }

  void finish(std::string& content, std::vector<ParsedToolCall>&) override {
    if (in_call_) content.append(kOpen);
    content.append(held_);
    held_.clear();
    in_call_ = false;
  }

 private:
  std::string held_;
  bool in_call_ = false, after_call_ = false;
};

// `gbnf` with every rule name prefixed (definitions and references alike), so the grammars of
// several schemas can live in one. Literals, classes, comments and repetition counts are left as
// they are.
std::string prefix_rules(std::string_view gbnf, std::string_view prefix) {
  std::string out;
  size_t i = 0;
  auto is_name = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  };
  while (i < gbnf.size()) {
    const char c = gbnf[i];
    if (c == '"' || c == '[') {  // a literal or a class, up to its unescaped end
      const char close = c == '"' ? '"' : ']';
      size_t j = i + 1;
      while (j < gbnf.size() && gbnf[j] != close) j += gbnf[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, gbnf.size());
      out.append(gbnf.substr(i, j - i));
      i = j;
    } else if (c == '#') {  // a comment, to the end of the line
      const size_t j = std::min(gbnf.find('\n', i), gbnf.size());
      out.append(gbnf.substr(i, j - i));
      i = j;
    } else if (c == '{') {  // a repetition count
      const size_t close = gbnf.find('}', i);
      const size_t j = close == std::string_view::npos ? gbnf.size() : close + 1;
      out.append(gbnf.substr(i, j - i));
      i = j;
    } else if (is_name(c)) {
      size_t j = i;
      while (j < gbnf.size() && is_name(gbnf[j])) ++j;
      out.append(prefix).append(gbnf.substr(i, j - i));
      i = j;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

class HermesFormat final : public ToolCallFormat {
 public:
  const char* name() const override { return "hermes"; }
  std::unique_ptr<ToolCallReader> reader() const override {
    return std::make_unique<HermesReader>();
  }
  std::string grammar(const ojson& tools, bool parallel) const override {
    std::string rules, alts;
    for (size_t i = 0; i < tools.size(); ++i) {
      const ojson& fn = tools[i]["function"];
      const std::string prefix = fmt::format("tool{}-", i);
      const ojson params = fn.contains("parameters") && !fn["parameters"].is_null()
                               ? fn["parameters"]
                               : ojson{{"type", "object"}, {"properties", ojson::object()}};
      std::string args;
      try {
        args = prefix_rules(json_schema_to_gbnf(params), prefix);
      } catch (const Error& e) {
        fail("tools[{}].function.parameters: {}", i, e.what());
      }
      // {"name": "NAME", "arguments": ARGS} as the Qwen template writes it (json.dumps spacing).
      const std::string head = fmt::format("<tool_call>\n{{\"name\": \"{}\", \"arguments\": ",
                                           fn["name"].get<std::string>());
      rules += fmt::format("call{} ::= {} {}root {}\n", i, gbnf_literal(head), prefix,
                           gbnf_literal("}\n</tool_call>"));
      rules += args + "\n";
      alts += (i ? " | " : "") + fmt::format("call{}", i);
    }
    std::string root = "call ::= " + alts + "\n";
    root += parallel ? "root ::= call (\"\\n\" call){0,3}\n" : "root ::= call\n";
    return root + rules;
  }
};

}  // namespace

const ToolCallFormat& hermes_tool_call_format() {
  static const HermesFormat f;
  return f;
}

const ToolCallFormat* tool_call_format_for(std::string_view template_text) {
  if (template_text.find("<tool_call>") != std::string_view::npos)
    return &hermes_tool_call_format();
  return nullptr;
}

}  // namespace flashrt::server
