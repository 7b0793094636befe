// The byte-level BPE model: vocabulary, merge ranks, and the merge loop that turns one
// pre-tokenized word into token ids. Words seen before are answered from a cache.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace flashrt {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const;
};
using TokenIndex = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  BpeModel();
  // `vocab`: byte-level token string -> id. `merges`: pairs of token strings, rank = index; both
  // sides and their concatenation must be in the vocabulary. `ignore_merges`: a word that is a
  // token as a whole is taken as is (HF's option of that name). Errors name `origin`.
  BpeModel(TokenIndex vocab,
           const std::vector<std::pair<std::string_view, std::string_view>>& merges,
           bool ignore_merges, std::string_view origin);
  BpeModel(BpeModel&&) noexcept;
  BpeModel& operator=(BpeModel&&) noexcept;
  ~BpeModel();

  // Appends the ids of one word given as raw bytes (not yet byte-level encoded).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  const TokenIndex& vocab() const { return vocab_; }
  // The merges as (left id, right id), rank order, as loaded.
  const std::vector<std::pair<int32_t, int32_t>>& merges() const { return merge_list_; }
  bool ignore_merges() const { return ignore_merges_; }
  void clear_cache() const;

 private:
  struct Merge {
    int32_t rank;
    int32_t id;
  };
  struct Cache;

  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  const Merge* find_merge(int32_t a, int32_t b) const {
    auto it = merges_.find((static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) |
                           static_cast<uint32_t>(b));
    return it == merges_.end() ? nullptr : &it->second;
  }

  TokenIndex vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<std::pair<int32_t, int32_t>> merge_list_;
  std::array<int32_t, 256> byte_id_{};  // id of each byte's one-character token, -1 if absent
  bool ignore_merges_ = false;
  std::unique_ptr<Cache> cache_;
};

}  // namespace flashrt
