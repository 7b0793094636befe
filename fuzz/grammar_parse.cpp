// libFuzzer target for GBNF grammars (a request can carry one). The input is grammar text, then
// optionally "\n%%\n" and bytes to feed a matcher in small pieces. Parsing either succeeds or
// throws flashrt::Error; a matcher accepts or refuses each piece, leaving its state unchanged on
// a refusal; exhausted() implies can_end() and refuses every further byte. An Error from the
// matcher (a grammar too ambiguous to match) is a correct answer too.
//
// Built as fuzz_grammar_parse by -DFLASHRT_FUZZ=ON; tests/fuzz_smoke_test.cpp runs it as well.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "engine/grammar.h"
#include "engine/grammar_matcher.h"

#include "fuzz_target.h"

extern "C" int FLASHRT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t cut = in.find("\n%%\n");
  const std::string_view text = in.substr(0, cut);
  const std::string_view feed = cut == std::string_view::npos ? "" : in.substr(cut + 4);
  try {
    flashrt::GrammarMatcher m(flashrt::Grammar::parse(text));
    for (size_t i = 0; i < feed.size();) {
      const size_t n = 1 + static_cast<uint8_t>(feed[i]) % 4;  // pieces of 1..4 bytes
      const std::string_view piece = feed.substr(i, n);
      const flashrt::GrammarMatcher before = m;
      if (!m.accept_bytes(piece)) FLASHRT_FUZZ_REQUIRE(m == before && m.hash() == before.hash());
      FLASHRT_FUZZ_REQUIRE(!m.exhausted() || m.can_end());
      if (m.exhausted()) {
        for (const char* b : {"a", "\x80", "\xC3", " "}) {
          flashrt::GrammarMatcher copy = m;
          FLASHRT_FUZZ_REQUIRE(!copy.accept_bytes(b));
        }
      }
      i += n;
    }
  } catch (const flashrt::Error&) {
  }
  return 0;
}
