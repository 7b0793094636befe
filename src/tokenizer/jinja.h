// A Jinja2 renderer for chat templates: the subset of the language (and the exact semantics) that
// transformers' apply_chat_template uses, that is jinja2's ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks and the loopcontrols extension, transformers' `tojson` (json.dumps
// with ensure_ascii=False) and its globals raise_exception and strftime_now. Values follow Python:
// `{{ x }}` prints str(x), truthiness, int/float arithmetic and comparisons are Python's.
//
// Templates come from untrusted model files and contexts from untrusted requests, so every failure
// is a flashrt::Error (syntax errors with line and column, render errors with the line), and
// rendering is bounded: nesting depth, loop iterations, string sizes and output size are limited,
// and the sandbox's refusals (mutating methods, oversized ranges) are errors too.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace flashrt::jinja {

struct Program;  // the parsed template (jinja_ast.h)

struct RenderOptions {
  // The template's strftime_now(fmt) global; unset means the local time now (as transformers).
  std::function<std::string(const char* fmt)> strftime_now;
};

class Template {
 public:
  // Parses once; throws flashrt::Error "chat template line L, column C: ..." on a syntax error.
  explicit Template(std::string_view source);
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Renders with the context's keys as variables (integers stay integers, floats stay floats, key
  // order is kept). Thread-safe: the parsed template is never modified. Throws flashrt::Error
  // "chat template line L: ..." for errors the template raises or causes.
  std::string render(const nlohmann::ordered_json& context,
                     const RenderOptions& options = {}) const;

 private:
  std::shared_ptr<const Program> program_;
};

}  // namespace flashrt::jinja
