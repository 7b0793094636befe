// The prefix-capsule cache: host capsules of boundaries that requests reached, keyed by the tokens
// that led there. A new prompt restores the longest cached boundary whose tokens are a prefix of
// it and prefills only the rest. A capsule is the whole state at its boundary (KV rows, recurrent
// and conv state, pending logits), so any token boundary can be cached, hybrids included: there are
// no blocks to align to. Bounded by bytes; least recently used entries go first.
// Not thread-safe: the scheduler thread owns it.
#pragma once
#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "capsule/capsule.h"

namespace flashrt {

class PrefixCache {
 public:
  explicit PrefixCache(size_t max_bytes) : max_bytes_(max_bytes) {}

  struct Hit {
    Capsule capsule;
    size_t tokens = 0;  // the boundary's length: ids[0, tokens) are restored
  };
  // The longest cached boundary whose tokens are a prefix of `ids` (marked recently used).
  std::optional<Hit> lookup(std::span<const int32_t> ids);
  // Caches `c` as the boundary after exactly `ids`. An existing entry for the same tokens is only
  // refreshed. Returns false when the capsule alone exceeds the budget.
  bool insert(std::span<const int32_t> ids, const Capsule& c);
  bool contains(std::span<const int32_t> ids) const;
  void clear();

  size_t bytes() const { return bytes_; }
  size_t max_bytes() const { return max_bytes_; }
  size_t entries() const { return lru_.size(); }
  uint64_t evictions() const { return evictions_; }

 private:
  struct Entry {
    std::vector<int32_t> ids;
    uint64_t hash = 0;
    Capsule capsule;
    size_t bytes = 0;
  };
  using Lru = std::list<Entry>;  // front = most recently used

  static uint64_t extend(uint64_t h, int32_t id);
  Lru::iterator find(std::span<const int32_t> ids, uint64_t hash) const;
  void erase(Lru::iterator it);

  size_t max_bytes_;
  size_t bytes_ = 0;
  uint64_t evictions_ = 0;
  mutable Lru lru_;
  std::unordered_multimap<uint64_t, Lru::iterator> by_hash_;
  std::unordered_map<size_t, size_t> lengths_;  // boundary length -> entries of that length
};

}  // namespace flashrt
