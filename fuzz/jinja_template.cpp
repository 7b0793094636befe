// libFuzzer entry: an untrusted chat template (the text of a model's tokenizer_config.json) parsed
// and rendered by the Jinja renderer. The input is the template, optionally followed by a NUL byte
// and a JSON object to render it with (otherwise an agent conversation with tools). Invariants:
// parsing and rendering fail only with flashrt::Error (a crash, a sanitizer report, a hang or
// another exception is a bug), the output stays within the renderer's 64 MiB bound, and rendering
// is deterministic. tests/fuzz_smoke_test.cpp runs the seeds in fuzz/corpus/jinja_template and
// their mutants in every test run.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.h"
#include "fuzz_target.h"
#include "tokenizer/jinja.h"

namespace flashrt_fuzz_jinja {

const nlohmann::ordered_json& default_context() {
  static const nlohmann::ordered_json ctx = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are terse."},
      {"role": "user", "content": "Weather in Paris? \u00fc\u4e2d"},
      {"role": "assistant", "content": "<think>\nlook it up\n</think>\n\nChecking.",
       "tool_calls": [{"id": "c0", "type": "function",
                       "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]},
      {"role": "tool", "tool_call_id": "c0", "name": "get_weather", "content": "{\"temp\": 18.5}"},
      {"role": "assistant", "content": "18.5 \u00b0C", "reasoning_content": "easy"}
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather.",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"},
               "days": {"type": "integer", "minimum": 1}}, "required": ["city"]}}}],
    "add_generation_prompt": true, "enable_thinking": false,
    "bos_token": "<s>", "eos_token": "</s>"
  })");
  return ctx;
}

}  // namespace flashrt_fuzz_jinja

extern "C" int FLASHRT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string_view source = in.substr(0, nul);
  nlohmann::ordered_json context = flashrt_fuzz_jinja::default_context();
  if (nul != std::string_view::npos) {
    auto j = nlohmann::ordered_json::parse(in.substr(nul + 1), nullptr, false);
    if (!j.is_discarded() && j.is_object()) context = std::move(j);
  }
  flashrt::jinja::RenderOptions options;
  options.strftime_now = [](const char* f) { return std::string("26 Jul 2024 ") + f; };
  std::unique_ptr<flashrt::jinja::Template> tpl;
  try {
    tpl = std::make_unique<flashrt::jinja::Template>(source);
  } catch (const flashrt::Error&) {
    return 0;  // a syntax error: a correct answer
  }
  std::string first, second;
  bool first_failed = false, second_failed = false;
  try {
    first = tpl->render(context, options);
  } catch (const flashrt::Error&) {
    first_failed = true;
  }
  FLASHRT_FUZZ_REQUIRE(first.size() <= (size_t{64} << 20));
  try {
    second = tpl->render(context, options);
  } catch (const flashrt::Error&) {
    second_failed = true;
  }
  FLASHRT_FUZZ_REQUIRE(first_failed == second_failed && first == second);
  return 0;
}
