// Token masks against brute force: for matcher states reached by feeding prefixes, a token is
// allowed iff a copy of the matcher accepts its bytes — exhaustively over the real 8192-token
// vocabulary, through the cached path (cold and warm), the uncached walk and accept_token.
#include "engine/token_mask.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "engine/grammar.h"
#include "engine/grammar_matcher.h"
#include "engine/json_schema.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"

namespace flashrt {
namespace {

const Tokenizer& pycoder() {
  static const Tokenizer t =
      Tokenizer::from_hf_dir_or_file(shared_dir() + "/models/pycoder-hybrid-12m/tokenizer.json");
  return t;
}

std::vector<uint64_t> brute_force(const Tokenizer& tok, const GrammarMatcher& m,
                                  const std::vector<int32_t>& ends) {
  std::vector<uint64_t> bits((static_cast<size_t>(tok.vocab_size()) + 63) / 64, 0);
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    bool ok;
    if (std::find(ends.begin(), ends.end(), id) != ends.end()) {
      ok = m.can_end();
    } else if (tok.token_type(id) == kTokenControl || tok.token_bytes(id).empty()) {
      ok = false;
    } else {
      GrammarMatcher copy = m;
      ok = copy.accept_bytes(tok.token_bytes(id));
    }
    if (ok) bits[static_cast<size_t>(id) / 64] |= uint64_t{1} << (id % 64);
  }
  return bits;
}

size_t popcount(const std::vector<uint64_t>& bits) {
  size_t n = 0;
  for (const uint64_t w : bits) n += static_cast<size_t>(__builtin_popcountll(w));
  return n;
}

struct Case {
  std::string gbnf;
  std::vector<std::string> prefixes;
};

TEST(TokenMask, ExhaustiveAgainstBruteForceOnRealVocabulary) {
  const Tokenizer& tok = pycoder();
  const std::vector<int32_t> ends = tok.stop_ids();
  ASSERT_FALSE(ends.empty());
  TokenMasker masker(tok, ends);
  const std::vector<Case> cases = {
      {json_object_gbnf(),
       {"", "{", "{\"", "{\"a", "{\"key\": ", "{\"k\":[1, tr", "{\"k\":\"x\"}", "{\"k\":-0.5e",
        "{\"k\":\"\xC3", "{\"\xE4\xB8"}},
      {json_schema_to_gbnf(nlohmann::ordered_json::parse(
           R"({"type":"object","properties":{"name":{"type":"string","maxLength":3},
               "n":{"type":"integer","minimum":-5,"maximum":300},"e":{"enum":["def","class"]}},
               "required":["name"]})")),
       {"", "{\"name\":\"ab", "{\"name\":\"abc\"", "{\"name\":\"\",\"n\":2",
        "{\"name\":\"\",\"e\":\"d"}},
      {R"(root ::= "def " [a-z_]+ "(" [a-z, ]* "):\n    return " [a-z0-9 +*]+)",
       {"", "def", "def f", "def foo(a, b", "def f():\n    return x"}},
      {R"(root ::= ([一-鿿] | [a-c] | "déf" | "\U0001F600")+ "!"?)",
       {"", "a", "\xE4", "\xE4\xB8", "\xE4\xB8\xAD", "d\xC3", "\xF0\x9F", "ab!"}},
  };
  std::vector<uint64_t> cold, warm, uncached;
  for (const Case& c : cases) {
    const auto g = Grammar::parse(c.gbnf);
    for (const std::string& p : c.prefixes) {
      GrammarMatcher m(g);
      ASSERT_TRUE(m.accept_bytes(p)) << p;
      const std::vector<uint64_t> want = brute_force(tok, m, ends);
      masker.fill(m, cold);
      masker.fill(m, warm);
      masker.fill_uncached(m, uncached);
      EXPECT_EQ(cold, want) << "cold, prefix " << p;
      EXPECT_EQ(warm, want) << "warm, prefix " << p;
      EXPECT_EQ(uncached, want) << "uncached, prefix " << p;
      EXPECT_GT(popcount(want), 0u) << p;
      // accept_token agrees with accept_bytes on every allowed token, and refuses the others.
      for (int32_t id = 0; id < tok.vocab_size(); id += 7) {
        GrammarMatcher a = m, b = m;
        const bool allowed = TokenMasker::allowed(want, id);
        EXPECT_EQ(masker.accept_token(a, id), allowed) << id;
        if (allowed && std::find(ends.begin(), ends.end(), id) == ends.end()) {
          ASSERT_TRUE(b.accept_bytes(tok.token_bytes(id)));
          EXPECT_TRUE(a == b) << id;
        } else {
          EXPECT_TRUE(a == m) << id;
        }
      }
    }
  }
  const TokenMasker::Stats s = masker.stats();
  EXPECT_GT(s.hits, 0u);
  EXPECT_GT(s.states, 0u);
}

TEST(TokenMask, CounterStatesShareShortMasksAndStayExact) {
  // Every position of long counters (string lengths, runs of copies, whitespace runs that the
  // vocabulary's long indentation tokens cross): the mask equals brute force, and positions far
  // from a counter's limit share the short-token mask.
  const Tokenizer& tok = pycoder();
  const std::vector<int32_t> ends = tok.stop_ids();
  TokenMasker masker(tok, ends);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(root ::= "\"" [a-z ]{0,40} "\"")", "\"" + std::string(40, 'q') + "\""},
      {R"(root ::= [a-z_]{30} "(")", std::string(30, 'a') + "("},
      {R"g(root ::= ("def" | " "){2,24} ":" [ ]{0,50} "x")g",
       "def def  def" + std::string(12, ' ') + ":" + std::string(50, ' ') + "x"},
  };
  std::vector<uint64_t> bits;
  for (const auto& [gbnf, text] : cases) {
    const auto g = Grammar::parse(gbnf);
    masker.clear_cache();
    GrammarMatcher m(g);
    size_t states = 0;
    for (size_t i = 0; i <= text.size(); ++i) {
      masker.fill(m, bits);
      ASSERT_EQ(bits, brute_force(tok, m, ends)) << gbnf << " after " << text.substr(0, i);
      ++states;
      if (i == text.size()) break;
      ASSERT_TRUE(m.accept_bytes(text.substr(i, 1))) << gbnf << " at " << i;
    }
    const TokenMasker::Stats st = masker.stats();
    EXPECT_LT(st.short_masks, states) << gbnf;
  }
}

TEST(TokenMask, ConstructsShareMasksAcrossContextsAndStayExact) {
  // Strings, numbers and whitespace at several depths of free JSON: a state's view leaves out
  // the context below the construct it is in, so they share short-token masks; the tokens that
  // leave the construct (a closing quote and what follows) are decided by the state itself.
  const Tokenizer& tok = pycoder();
  const std::vector<int32_t> ends = tok.stop_ids();
  TokenMasker masker(tok, ends);
  const auto g = Grammar::parse(json_object_gbnf());
  const std::string doc =
      R"({"a": "x y", "list": ["p\"q", {"deep": ["z", 12.5e-3]}], "s": "tail\n", "n": null})";
  GrammarMatcher m(g);
  std::vector<uint64_t> bits;
  size_t states = 0;
  for (size_t i = 0; i <= doc.size(); ++i) {
    masker.fill(m, bits);
    ASSERT_EQ(bits, brute_force(tok, m, ends)) << "after " << doc.substr(0, i);
    ++states;
    if (i < doc.size()) {
      ASSERT_TRUE(m.accept_bytes(doc.substr(i, 1))) << i;
    }
  }
  EXPECT_LT(masker.stats().short_masks, states / 2);
  // Tokens with equal bytes are all marked (a trie node holding several).
  const std::vector<std::string> vocab = {"ab", "a", "ab", "b", "ab", "c"};
  TokenMasker dup(vocab, {}, {});
  GrammarMatcher d(Grammar::parse(R"(root ::= "a" "b"?)"));
  dup.fill(d, bits);
  EXPECT_EQ(bits, std::vector<uint64_t>{0b10111});
  dup.fill_uncached(d, bits);
  EXPECT_EQ(bits, std::vector<uint64_t>{0b10111});
}

TEST(TokenMask, SpecialEndAndEmptyTokens) {
  // 0 "a", 1 "b", 2 "ab", 3 "<s>" (special), 4 "" (empty), 5 "\xC3", 6 "\xA9", 7 "</s>" (end),
  // 8 "a\xC3", 9 "\xC3\xA9".
  const std::vector<std::string> vocab = {"a",    "b",    "ab",   "<s>",   "",
                                          "\xC3", "\xA9", "</s>", "a\xC3", "\xC3\xA9"};
  TokenMasker masker(vocab, {3}, {7});
  const auto g = Grammar::parse(R"(root ::= "a" "é"? | "<s>")");
  GrammarMatcher m(g);
  std::vector<uint64_t> bits;
  auto allowed = [&] {
    masker.fill(m, bits);
    std::vector<int> ids;
    for (int i = 0; i < 10; ++i)
      if (TokenMasker::allowed(bits, i)) ids.push_back(i);
    return ids;
  };
  EXPECT_EQ(allowed(), (std::vector<int>{0, 8}));  // never the special "<s>" or the empty token
  ASSERT_TRUE(masker.accept_token(m, 0));
  EXPECT_EQ(allowed(), (std::vector<int>{5, 7, 9}));  // can end: the end token too
  EXPECT_TRUE(masker.accept_token(m, 7));             // the end leaves the state alone
  ASSERT_TRUE(masker.accept_token(m, 5));
  EXPECT_EQ(allowed(), (std::vector<int>{6}));  // mid-character: only the continuation
  EXPECT_FALSE(m.can_end());
  ASSERT_TRUE(masker.accept_token(m, 6));
  EXPECT_EQ(allowed(), (std::vector<int>{7}));
  EXPECT_TRUE(m.exhausted());
  EXPECT_FALSE(masker.accept_token(m, 3));
  EXPECT_FALSE(masker.accept_token(m, 4));
  EXPECT_FALSE(masker.accept_token(m, 99));
  EXPECT_THROW(TokenMasker(vocab, {10}, {7}), Error);
}

TEST(TokenMask, ApplySetsDisallowedLogitsToMinusInfinity) {
  std::vector<uint64_t> bits(2, 0);
  bits[0] = (uint64_t{1} << 3) | (uint64_t{1} << 63);
  bits[1] = ~uint64_t{0};
  std::vector<float> logits(140, 1.0f);
  TokenMasker::apply(logits, bits);
  for (size_t i = 0; i < logits.size(); ++i) {
    const bool keep = i == 3 || i == 63 || (i >= 64 && i < 128);
    EXPECT_EQ(std::isinf(logits[i]) && logits[i] < 0, !keep) << i;  // past the mask: disallowed
  }
}

TEST(TokenMask, BoundedCachesStayCorrect) {
  const Tokenizer& tok = pycoder();
  const std::vector<int32_t> ends = tok.stop_ids();
  TokenMasker::Options o;
  o.max_cached_masks = 2;
  o.max_states = 8;
  o.max_grammars = 1;
  TokenMasker masker(tok, ends, o);
  const auto a = Grammar::parse(json_object_gbnf());
  const auto b = Grammar::parse(R"(root ::= [a-z]{1,40})");
  std::vector<uint64_t> bits, want;
  for (int round = 0; round < 3; ++round) {
    for (const char* p : {"{", "{\"x", "{\"x\":", "{\"x\":1"}) {
      GrammarMatcher m(a);
      ASSERT_TRUE(m.accept_bytes(p));
      masker.fill(m, bits);
      masker.fill_uncached(m, want);
      EXPECT_EQ(bits, want) << p;
      GrammarMatcher n(b);
      ASSERT_TRUE(n.accept_bytes(std::string(static_cast<size_t>(round * 13), 'q')));
      masker.fill(n, bits);
      masker.fill_uncached(n, want);
      EXPECT_EQ(bits, want) << round;
    }
  }
  const TokenMasker::Stats s = masker.stats();
  EXPECT_LE(s.masks, 2u);
  EXPECT_EQ(s.grammars, 1u);
  // A grammar compiled twice shares one cache.
  TokenMasker shared(tok, ends);
  GrammarMatcher x(Grammar::parse(json_object_gbnf())), y(Grammar::parse(json_object_gbnf()));
  shared.fill(x, bits);
  shared.fill(y, bits);
  EXPECT_EQ(shared.stats().grammars, 1u);
  EXPECT_EQ(shared.stats().hits, 1u);
  shared.clear_cache();
  EXPECT_EQ(shared.stats().states, 0u);
}

TEST(TokenMask, ConcurrentFillsAgree) {
  const Tokenizer& tok = pycoder();
  TokenMasker masker(tok, tok.stop_ids());
  const auto g = Grammar::parse(json_object_gbnf());
  const std::vector<std::string> prefixes = {"{", "{\"a\":", "{\"a\":[", "{\"a\":\"b", "{\"a\":1"};
  std::vector<std::vector<uint64_t>> want(prefixes.size());
  for (size_t i = 0; i < prefixes.size(); ++i) {
    GrammarMatcher m(g);
    ASSERT_TRUE(m.accept_bytes(prefixes[i]));
    masker.fill_uncached(m, want[i]);
  }
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint64_t> bits;
      for (int k = 0; k < 20; ++k) {
        const size_t i = static_cast<size_t>(t + k) % prefixes.size();
        GrammarMatcher m(g);
        if (!m.accept_bytes(prefixes[i])) ++bad;
        masker.fill(m, bits);
        if (bits != want[i]) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace flashrt
