#include "tokenizer/added_tokens.h"

#include <utf8proc.h>

#include <algorithm>

#include "tokenizer/utf8.h"

namespace flashrt {
namespace {

bool is_word_char(char32_t cp) {
  if (cp == '_') return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  std::erase_if(tokens_, [](const AddedToken& t) { return t.content.empty(); });
  std::stable_sort(tokens_.begin(), tokens_.end(), [](const AddedToken& a, const AddedToken& b) {
    return a.content.size() > b.content.size();
  });
  for (size_t i = 0; i < tokens_.size(); ++i) {
    by_first_byte_[static_cast<uint8_t>(tokens_[i].content[0])].push_back(static_cast<uint32_t>(i));
  }
}

std::optional<AddedTokenMatcher::Match> AddedTokenMatcher::find(std::string_view text, size_t from,
                                                                bool parse_special) const {
  if (tokens_.empty()) return std::nullopt;
  for (size_t i = from; i < text.size(); ++i) {
    const auto& candidates = by_first_byte_[static_cast<uint8_t>(text[i])];
    if (candidates.empty()) continue;
    // Tokens start on character boundaries only (contents are valid UTF-8, so a token starting
    // with a continuation byte cannot exist).
    for (uint32_t idx : candidates) {
      const AddedToken& t = tokens_[idx];
      if (t.special && !parse_special) continue;
      if (text.compare(i, t.content.size(), t.content) != 0) continue;
      size_t begin = i, end = i + t.content.size();
      if (t.single_word) {
        size_t unused;
        const bool word_before = begin > 0 && is_word_char(utf8::prev(text, begin, unused));
        size_t j = end;
        const bool word_after = end < text.size() && is_word_char(utf8::next(text, j));
        // HF takes the longest token at a position and drops it if it fails this test.
        if (word_before || word_after) break;
      }
      if (t.lstrip) {
        while (begin > from) {
          size_t start;
          if (!utf8::is_white_space(utf8::prev(text, begin, start))) break;
          begin = start;
        }
      }
      if (t.rstrip) {
        while (end < text.size()) {
          size_t j = end;
          if (!utf8::is_white_space(utf8::next(text, j))) break;
          end = j;
        }
      }
      return Match{begin, end, t.id};
    }
  }
  return std::nullopt;
}

}  // namespace flashrt
