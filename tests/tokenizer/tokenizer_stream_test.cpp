// Streaming detokenization: pieces are always valid UTF-8 and add up to decode().
#include <gtest/gtest.h>

#include "tokenizer/stream_decoder.h"
#include "tokenizer/utf8.h"
#include "tokenizer_fixtures.h"

namespace flashrt {
namespace {

using namespace tokenizer_test;

std::string stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool* all_valid) {
  StreamDecoder dec(tok);
  std::string out;
  *all_valid = true;
  for (int32_t id : ids) {
    const std::string piece = dec.push(id);
    *all_valid = *all_valid && utf8::is_valid(piece);
    out += piece;
  }
  const std::string tail = dec.flush();
  *all_valid = *all_valid && utf8::is_valid(tail);
  return out + tail;
}

TEST(TokenizerStream, EveryReferenceCaseStreamsToDecode) {
  const auto& cases = qwen3_cases();
  size_t mismatches = 0, invalid = 0;
  for (const auto& ids : cases.ids) {
    bool valid;
    if (stream(qwen3(), ids, &valid) != qwen3().decode(ids)) ++mismatches;
    if (!valid) ++invalid;
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(invalid, 0u);
}

TEST(TokenizerStream, HoldsIncompleteCharacterUntilComplete) {
  // " 👍" is two byte-level tokens in Qwen3: " \xF0\x9F\x91" and "\x8D".
  const auto ids = qwen3().encode(" 👍");
  ASSERT_EQ(ids, (std::vector<int32_t>{61804, 235}));
  StreamDecoder dec(qwen3());
  EXPECT_EQ(dec.push(ids[0]), " ");
  EXPECT_EQ(dec.pending_bytes(), 3u);
  EXPECT_EQ(dec.push(ids[1]), "👍");
  EXPECT_EQ(dec.flush(), "");
}

TEST(TokenizerStream, BrokenBytesBecomeReplacementCharacters) {
  // Start a 4-byte character, then break it with a plain token: like decode(), one U+FFFD.
  const int32_t lead = qwen3().encode(" 👍")[0];
  const int32_t x = qwen3().encode("x")[0];
  const std::vector<int32_t> ids{lead, x, lead};
  bool valid;
  EXPECT_EQ(stream(qwen3(), ids, &valid), qwen3().decode(ids));
  EXPECT_TRUE(valid);
  EXPECT_EQ(qwen3().decode(ids), " \xEF\xBF\xBDx \xEF\xBF\xBD");
}

TEST(TokenizerStream, EveryPrefixOfAMultilingualTextStreams) {
  const std::string text =
      "naïve café — 中文 and emoji 👍🏽 👨‍👩‍👧 नमस्ते "
      "ٱلْعَرَبِيَّة";
  const auto ids = qwen3().encode(text);
  bool valid;
  EXPECT_EQ(stream(qwen3(), ids, &valid), text);
  EXPECT_TRUE(valid);
}

TEST(TokenizerStream, BadIdThrowsAndKeepsState) {
  StreamDecoder dec(qwen3());
  const auto ids = qwen3().encode(" 👍");
  EXPECT_EQ(dec.push(ids[0]), " ");
  expect_error([&] { dec.push(999999); }, {"999999", "151669"});
  EXPECT_EQ(dec.push(ids[1]), "👍");
}

TEST(TokenizerStream, SkipsSpecialTokensWhenAsked) {
  StreamDecoder dec(qwen3(), /*skip_special=*/true);
  std::string out;
  for (int32_t id : qwen3().encode("<|im_start|>hi<|im_end|>")) out += dec.push(id);
  EXPECT_EQ(out + dec.flush(), "hi");
}

}  // namespace
}  // namespace flashrt
