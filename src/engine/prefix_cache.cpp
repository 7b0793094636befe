#include "engine/prefix_cache.h"

#include <algorithm>

namespace flashrt {

// A polynomial hash over the ids, so the hash of every prefix of a prompt comes out of one pass.
// Collisions are harmless: entries are compared token by token before use.
uint64_t PrefixCache::extend(uint64_t h, int32_t id) {
  return h * 0x9E3779B97F4A7C15ull + static_cast<uint32_t>(id) + 1;
}

PrefixCache::Lru::iterator PrefixCache::find(std::span<const int32_t> ids, uint64_t hash) const {
  auto [b, e] = by_hash_.equal_range(hash);
  for (auto it = b; it != e; ++it) {
    const auto& ent = *it->second;
    if (ent.ids.size() == ids.size() && std::equal(ids.begin(), ids.end(), ent.ids.begin()))
      return it->second;
  }
  return lru_.end();
}

std::optional<PrefixCache::Hit> PrefixCache::lookup(std::span<const int32_t> ids) {
  if (lru_.empty() || ids.empty()) return std::nullopt;
  std::vector<uint64_t> prefix(ids.size() + 1, 0);
  for (size_t i = 0; i < ids.size(); ++i) prefix[i + 1] = extend(prefix[i], ids[i]);
  // Only the lengths some entry has are worth probing; longest first.
  std::vector<size_t> lens;
  for (const auto& [len, n] : lengths_)
    if (n && len <= ids.size()) lens.push_back(len);
  std::sort(lens.rbegin(), lens.rend());
  for (size_t len : lens) {
    auto it = find(ids.first(len), prefix[len]);
    if (it == lru_.end()) continue;
    lru_.splice(lru_.begin(), lru_, it);
    return Hit{it->capsule, len};
  }
  return std::nullopt;
}

bool PrefixCache::contains(std::span<const int32_t> ids) const {
  uint64_t h = 0;
  for (int32_t id : ids) h = extend(h, id);
  return find(ids, h) != lru_.end();
}

bool PrefixCache::insert(std::span<const int32_t> ids, const Capsule& c) {
  if (ids.empty()) return false;
  uint64_t h = 0;
  for (int32_t id : ids) h = extend(h, id);
  if (auto it = find(ids, h); it != lru_.end()) {
    lru_.splice(lru_.begin(), lru_, it);
    return true;
  }
  const size_t bytes = c.payload_bytes() + ids.size() * sizeof(int32_t);
  if (bytes > max_bytes_) return false;
  while (bytes_ + bytes > max_bytes_ && !lru_.empty()) {
    erase(std::prev(lru_.end()));
    ++evictions_;
  }
  lru_.push_front(Entry{std::vector<int32_t>(ids.begin(), ids.end()), h, c, bytes});
  by_hash_.emplace(h, lru_.begin());
  ++lengths_[ids.size()];
  bytes_ += bytes;
  return true;
}

void PrefixCache::erase(Lru::iterator it) {
  auto [b, e] = by_hash_.equal_range(it->hash);
  for (auto h = b; h != e; ++h)
    if (h->second == it) {
      by_hash_.erase(h);
      break;
    }
  if (--lengths_[it->ids.size()] == 0) lengths_.erase(it->ids.size());
  bytes_ -= it->bytes;
  lru_.erase(it);
}

void PrefixCache::clear() {
  while (!lru_.empty()) erase(lru_.begin());
}

}  // namespace flashrt
