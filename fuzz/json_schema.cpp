// libFuzzer target for JSON Schema -> GBNF (response_format json_schema comes from requests):
// bytes -> JSON -> schema conversion, which either throws flashrt::Error or yields GBNF that
// parses; its matcher then takes the input's own bytes as far as they fit, and a refused piece
// leaves it unchanged.
//
// Built as fuzz_json_schema by -DFLASHRT_FUZZ=ON; tests/fuzz_smoke_test.cpp runs it as well.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "engine/grammar.h"
#include "engine/grammar_matcher.h"
#include "engine/json_schema.h"

#include "fuzz_target.h"

extern "C" int FLASHRT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(in);
  } catch (const nlohmann::ordered_json::exception&) {
    return 0;
  }
  std::string gbnf;
  try {
    gbnf = flashrt::json_schema_to_gbnf(schema, flashrt::JsonSchemaOptions{size % 2 == 1});
  } catch (const flashrt::Error&) {
    return 0;
  }
  try {
    flashrt::GrammarMatcher m(flashrt::Grammar::parse(gbnf));
    for (size_t i = 0; i < in.size() && i < 256; ++i) {
      const flashrt::GrammarMatcher before = m;
      if (!m.accept_bytes(in.substr(i, 1))) {
        FLASHRT_FUZZ_REQUIRE(m == before);
        break;
      }
    }
  } catch (const flashrt::Error& e) {
    // The converter checks its output parses; only the matcher's ambiguity limit may throw here.
    FLASHRT_FUZZ_REQUIRE(std::string_view(e.what()).find("too ambiguous") !=
                         std::string_view::npos);
  }
  return 0;
}
