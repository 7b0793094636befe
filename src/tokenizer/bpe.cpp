#include "tokenizer/bpe.h"

#include <xxhash.h>

#include <algorithm>
#include <mutex>
#include <shared_mutex>

#include "core/error.h"
#include "tokenizer/byte_level.h"

namespace flashrt {

size_t StringHash::operator()(std::string_view s) const {
  return XXH3_64bits(s.data(), s.size());
}

// Word -> ids. Bounded: when full it is cleared, so memory stays flat on endless streams of new
// words. Words longer than kMaxWordBytes are not cached (they are rare and costly to key).
struct BpeModel::Cache {
  static constexpr size_t kMaxEntries = 1 << 17;
  static constexpr size_t kMaxWordBytes = 256;
  std::shared_mutex mutex;
  std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
};

BpeModel::BpeModel() : cache_(std::make_unique<Cache>()) {
  byte_id_.fill(-1);
}
BpeModel::BpeModel(BpeModel&&) noexcept = default;
BpeModel& BpeModel::operator=(BpeModel&&) noexcept = default;
BpeModel::~BpeModel() = default;

BpeModel::BpeModel(TokenIndex vocab,
                   const std::vector<std::pair<std::string_view, std::string_view>>& merges,
                   bool ignore_merges, std::string_view origin)
    : vocab_(std::move(vocab)), ignore_merges_(ignore_merges), cache_(std::make_unique<Cache>()) {
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(byte_level::byte_to_utf8(static_cast<uint8_t>(b)));
    byte_id_[b] = it == vocab_.end() ? -1 : it->second;
  }
  auto lookup = [&](std::string_view tok, size_t rank, std::string_view a, std::string_view b) {
    auto it = vocab_.find(tok);
    if (it == vocab_.end()) {
      fail("{}: merge #{} {:?} {:?} uses token {:?}, which is not in the vocabulary", origin, rank,
           a, b, tok);
    }
    return it->second;
  };
  merges_.reserve(merges.size());
  merge_list_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const int32_t ia = lookup(a, rank, a, b), ib = lookup(b, rank, a, b);
    joined.assign(a).append(b);
    const int32_t id = lookup(joined, rank, a, b);
    // A repeated pair keeps its last rank, as HF's HashMap collect does.
    merges_[(static_cast<uint64_t>(static_cast<uint32_t>(ia)) << 32) | static_cast<uint32_t>(ib)] =
        Merge{static_cast<int32_t>(rank), id};
    merge_list_.emplace_back(ia, ib);
  }
}

void BpeModel::clear_cache() const {
  std::unique_lock lock(cache_->mutex);
  cache_->map.clear();
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (word.size() == 1 && !ignore_merges_) {
    const int32_t id = byte_id_[static_cast<uint8_t>(word[0])];
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const bool cacheable = word.size() <= Cache::kMaxWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_->mutex);
    auto it = cache_->map.find(word);
    if (it != cache_->map.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::vector<int32_t> ids(out.begin() + static_cast<ptrdiff_t>(first), out.end());
    std::unique_lock lock(cache_->mutex);
    if (cache_->map.size() >= Cache::kMaxEntries) cache_->map.clear();
    cache_->map.emplace(std::string(word), std::move(ids));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_) {
    auto it = vocab_.find(byte_level::encode(word));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  // Symbols form a doubly linked list over the word's bytes; a merge folds the right symbol into
  // the left one. Candidate merges sit in a min-heap ordered by (rank, position), as in HF.
  struct Symbol {
    int32_t id;
    int32_t prev, next;
  };
  struct Candidate {
    int32_t rank, pos, left, right, merged;
  };
  thread_local std::vector<Symbol> syms;
  thread_local std::vector<Candidate> heap;
  syms.clear();
  heap.clear();
  const auto n = static_cast<int32_t>(word.size());
  for (int32_t i = 0; i < n; ++i) {
    const auto byte = static_cast<uint8_t>(word[static_cast<size_t>(i)]);
    const int32_t id = byte_id_[byte];
    if (id < 0) {
      fail("byte 0x{:02x} has no token in this byte-level vocabulary, so it cannot be encoded",
           byte);
    }
    syms.push_back({id, i - 1, i + 1 < n ? i + 1 : -1});
  }
  auto later = [](const Candidate& x, const Candidate& y) {
    return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos;
  };
  auto push = [&](int32_t pos) {
    const int32_t next = syms[static_cast<size_t>(pos)].next;
    if (next < 0) return;
    const int32_t l = syms[static_cast<size_t>(pos)].id, r = syms[static_cast<size_t>(next)].id;
    if (const Merge* m = find_merge(l, r)) {
      heap.push_back({m->rank, pos, l, r, m->id});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = syms[static_cast<size_t>(c.pos)];
    // Skip candidates made stale by an earlier merge of either side.
    if (left.id != c.left || left.next < 0) continue;
    Symbol& right = syms[static_cast<size_t>(left.next)];
    if (right.id != c.right) continue;
    left.id = c.merged;
    left.next = right.next;
    if (right.next >= 0) syms[static_cast<size_t>(right.next)].prev = c.pos;
    right.id = -1;  // dead
    if (left.prev >= 0) push(left.prev);
    push(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = syms[static_cast<size_t>(i)].next) {
    out.push_back(syms[static_cast<size_t>(i)].id);
  }
}

}  // namespace flashrt
