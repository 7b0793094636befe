// Tool calls in the model's own output format, parsed into OpenAI's shape, and the grammar that
// makes a model emit a valid call. Each chat-template family writes calls its own way; a
// ToolCallFormat is one family's reader and writer, picked from the template text
// (tool_call_format_for), so a new family is one more implementation here.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace flashrt::server {

struct ParsedToolCall {
  std::string name;
  std::string arguments;  // JSON text of the arguments object, as OpenAI sends it
};

// Reads generated text incrementally: what is plain content goes out as soon as it cannot be the
// start of a call, calls come out whole once their closing tag arrives.
class ToolCallReader {
 public:
  virtual ~ToolCallReader() = default;
  // Feeds the next generated text; appends to `content` the text that is certainly not part of a
  // call and to `calls` the calls completed by it.
  virtual void feed(std::string_view text, std::string& content,
                    std::vector<ParsedToolCall>& calls) = 0;
  // The end of generation: whatever is held back (a partial tag, an unterminated or malformed
  // call) goes out as content.
  virtual void finish(std::string& content, std::vector<ParsedToolCall>& calls) = 0;
};

class ToolCallFormat {
 public:
  virtual ~ToolCallFormat() = default;
  virtual const char* name() const = 0;
  virtual std::unique_ptr<ToolCallReader> reader() const = 0;
  // GBNF for the model's output when a call is required: one call of one of `tools` (OpenAI tool
  // objects, already checked), or with `parallel` one to four calls. The arguments follow each
  // function's JSON schema. Throws flashrt::Error for a schema the compiler refuses.
  virtual std::string grammar(const nlohmann::ordered_json& tools, bool parallel) const = 0;
};

// The format the template writes calls in, or null when flashrt does not know it (tools can still
// be rendered into the prompt; calls are then not parsed).
const ToolCallFormat* tool_call_format_for(std::string_view template_text);
// Hermes / Qwen: <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>.
const ToolCallFormat& hermes_tool_call_format();

}  // namespace flashrt::server
