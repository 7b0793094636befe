// The tokenizer's parts on their own: UTF-8 repair, the byte-level alphabet, the regex rewrite,
// NFC, and the added-token flags (lstrip, rstrip, single_word, normalized).
#include <gtest/gtest.h>

#include <random>

#include "tokenizer/byte_level.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/utf8.h"
#include "tokenizer_fixtures.h"

namespace flashrt {
namespace {

using namespace tokenizer_test;

std::string lossy(std::string_view s) {
  std::string out;
  utf8::append_lossy(out, s, true);
  return out;
}

TEST(TokenizerUtf8, LossyRepairReplacesMaximalSubparts) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(lossy("abc"), "abc");
  EXPECT_EQ(lossy("a\xff"
                  "b"),
            "a" + r + "b");
  EXPECT_EQ(lossy("\xE2\x82"
                  "A"),
            r + "A");                           // truncated 3-byte sequence: one U+FFFD
  EXPECT_EQ(lossy("\xF0\x80\x80"), r + r + r);  // F0 80 is not a valid start
  EXPECT_EQ(lossy("\xED\xA0\x80"), r + r + r);  // surrogate
  EXPECT_EQ(lossy("\xF0\x9F\x91"), r);          // incomplete at the end
  std::string out;
  EXPECT_EQ(utf8::append_lossy(out, "ab\xF0\x9F\x91", false), 2u);  // held back when not final
  EXPECT_EQ(out, "ab");
}

TEST(TokenizerByteLevel, AlphabetRoundTrips) {
  EXPECT_EQ(byte_level::encode(" hi\n"), "ĠhiĊ");
  EXPECT_EQ(byte_level::byte_to_codepoint(0x20), 0x120u);
  EXPECT_EQ(byte_level::byte_to_codepoint('a'), static_cast<char32_t>('a'));
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(byte_level::decode(byte_level::encode(all)), all);
  EXPECT_FALSE(byte_level::decode("中"));  // outside the alphabet
}

TEST(TokenizerPretokenize, WhiteSpaceIsUnicodeWhiteSpace) {
  const std::string p = white_space_to_explicit_class(R"([^\s\p{L}]|\s+(?!\S)|a\\s)");
  EXPECT_EQ(p.find("\\s+"), std::string::npos);
  EXPECT_EQ(p.find("[^\\s"), std::string::npos);
  EXPECT_NE(p.find("\\\\s"), std::string::npos);  // an escaped backslash followed by s stays
  // U+180E is \s to PCRE2 but not to Oniguruma/HF: it must not split like white space.
  SplitRegex re(R"(\s+|\S+)", "test");
  std::vector<std::pair<uint32_t, uint32_t>> pieces;
  re.split("a\u180Eb c", pieces);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0], (std::pair<uint32_t, uint32_t>{0, 5}));
}

TEST(TokenizerPretokenize, NfcComposes) {
  EXPECT_EQ(nfc("e\u0301"), "\u00e9");
  EXPECT_EQ(nfc("plain ascii"), "plain ascii");
  EXPECT_EQ(nfc("\u212B"), "\u00C5");        // Angstrom sign -> A with ring
  EXPECT_EQ(nfc("\u1100\u1161"), "\uAC00");  // Hangul jamo compose
}

TEST(TokenizerPretokenize, Qwen35RegexKeepsMarksWithLetters) {
  SplitRegex q2(std::string(kQwen2SplitRegex), "qwen2"),
      q35(std::string(kQwen35SplitRegex), "qwen35");
  std::vector<std::pair<uint32_t, uint32_t>> a, b;
  const std::string text = "नमस्ते";  // Devanagari: letters and combining marks
  q2.split(text, a);
  q35.split(text, b);
  EXPECT_GT(a.size(), 1u);
  EXPECT_EQ(b.size(), 1u);
}

// The pycoder tokenizer with extra added tokens that use every flag.
Tokenizer flagged_tokenizer() {
  auto j = read_json(shared_dir() + "/models/pycoder-hybrid-12m/tokenizer.json");
  auto add = [&](int id, const char* content, bool special, bool lstrip, bool rstrip, bool single,
                 bool normalized) {
    j["added_tokens"].push_back({{"id", id},
                                 {"content", content},
                                 {"special", special},
                                 {"lstrip", lstrip},
                                 {"rstrip", rstrip},
                                 {"single_word", single},
                                 {"normalized", normalized}});
  };
  add(8192, "<L>", true, true, false, false, false);
  add(8193, "<R>", true, false, true, false, false);
  add(8194, "word", false, false, false, true, false);
  add(8195, "\u00e9t\u00e9", false, false, false, false, true);
  add(8196, "<longer>", true, false, false, false, false);
  add(8197, "<long", true, false, false, false, false);
  return Tokenizer::from_hf_json(j.dump());
}

std::vector<int32_t> cat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(TokenizerAddedTokens, StripFlagsSwallowWhiteSpace) {
  const Tokenizer t = flagged_tokenizer();
  EXPECT_EQ(t.encode("x  \t<L>y"), cat({t.encode("x"), {8192}, t.encode("y")}));
  EXPECT_EQ(t.encode("x<R> \n y"), cat({t.encode("x"), {8193}, t.encode("y")}));
  EXPECT_EQ(t.encode("x <R> y"), cat({t.encode("x "), {8193}, t.encode("y")}));
}

TEST(TokenizerAddedTokens, SingleWordOnlyOutsideWords) {
  const Tokenizer t = flagged_tokenizer();
  const auto alone = t.encode("a word b");
  EXPECT_NE(std::find(alone.begin(), alone.end(), 8194), alone.end());
  const auto inside = t.encode("swordfish");
  EXPECT_EQ(std::find(inside.begin(), inside.end(), 8194), inside.end());
}

TEST(TokenizerAddedTokens, NormalizedTokensMatchAfterNfc) {
  const Tokenizer t = flagged_tokenizer();
  EXPECT_EQ(t.encode("e\u0301te\u0301"), (std::vector<int32_t>{8195}));
  EXPECT_EQ(t.encode("\u00e9t\u00e9"), (std::vector<int32_t>{8195}));
}

TEST(TokenizerAddedTokens, LongestMatchWinsAndSpecialNeedsParsing) {
  const Tokenizer t = flagged_tokenizer();
  EXPECT_EQ(t.encode("<longer>"), (std::vector<int32_t>{8196}));
  EXPECT_EQ(t.encode("<long"), (std::vector<int32_t>{8197}));
  const auto plain = t.encode("<longer>", /*parse_special=*/false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(t.decode(plain), "<longer>");
}

TEST(TokenizerModel, ByteLevelOnlyPreTokenizerWithPrefixSpace) {
  auto j = read_json(shared_dir() + "/models/pycoder-hybrid-12m/tokenizer.json");
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  const Tokenizer t = Tokenizer::from_hf_json(j.dump());
  EXPECT_EQ(t.encode("hello world"), pycoder().encode(" hello world"));
  EXPECT_EQ(t.pre_name(), "");
}

TEST(TokenizerModel, OldStyleMergeStringsLoad) {
  auto j = read_json(shared_dir() + "/models/pycoder-hybrid-12m/tokenizer.json");
  for (auto& m : j["model"]["merges"]) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  const Tokenizer t = Tokenizer::from_hf_json(j.dump());
  const std::string text = "def fibonacci(n):\n    return n";
  EXPECT_EQ(t.encode(text), pycoder().encode(text));
}

TEST(TokenizerModel, LongWordsAndLongWhiteSpaceRuns) {
  // Long words skip the cache and exercise the heap-based merge loop; long runs of spaces stress
  // the regex's backtracking alternatives.
  const std::string word(5000, 'a');
  const std::string spaces(20000, ' ');
  const std::string text =
      word + spaces + "x" + std::string(3000, '\n') + "中文" + std::string(4000, 0x7f);
  const auto ids = qwen3().encode(text);
  EXPECT_EQ(qwen3().decode(ids), text);
}

TEST(TokenizerModel, RandomTextRoundTripsThroughNfc) {
  // decode(encode(x)) == NFC(x) for any valid text: nothing is lost or invented.
  std::mt19937 rng(1234);
  const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {0x20, 0x7E},       {0x09, 0x0D},       {0xA0, 0x2FF},    {0x300, 0x36F},
      {0x400, 0x4FF},     {0x600, 0x6FF},     {0x900, 0x97F},   {0x1100, 0x11FF},
      {0x1680, 0x1680},   {0x180E, 0x180E},   {0x2000, 0x206F}, {0x3000, 0x30FF},
      {0x4E00, 0x4FFF},   {0xAC00, 0xAD00},   {0xFE00, 0xFE0F}, {0x1F300, 0x1F6FF},
      {0x1F900, 0x1F9FF}, {0x10000, 0x10FFFF}};
  size_t failures = 0;
  for (int n = 0; n < 300; ++n) {
    std::string text;
    const int len = std::uniform_int_distribution<int>(1, 60)(rng);
    for (int i = 0; i < len; ++i) {
      const auto& [lo, hi] =
          ranges[std::uniform_int_distribution<size_t>(0, ranges.size() - 1)(rng)];
      char32_t cp = std::uniform_int_distribution<char32_t>(lo, hi)(rng);
      if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
      utf8::append(text, cp);
    }
    for (bool special : {false, true}) {
      if (qwen3().decode(qwen3().encode(text, special)) != nfc(text)) ++failures;
      if (pycoder().decode(pycoder().encode(text, special)) != nfc(text)) ++failures;
    }
  }
  EXPECT_EQ(failures, 0u);
}

}  // namespace
}  // namespace flashrt
