#include "engine/token_mask.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <list>
#include <mutex>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace flashrt {
namespace {

constexpr int32_t kUnknown = -2;  // transition not computed yet
constexpr int32_t kReject = -1;
// Tokens up to this many bytes form the short trie, whose masks depend only on what a state
// accepts within the horizon, so states that differ only in a counter far from its limit (a
// string's maxLength, a run of copies) share one; the few longer tokens (about 1% of a 150k
// vocabulary) are walked per state.
constexpr uint32_t kHorizon = 16;

// A trie node in preorder: its subtree is [index, end), so a refused prefix skips to `end`.
struct Node {
  uint32_t end;
  uint32_t tok_begin, tok_end;  // the tokens whose bytes end here (into Impl::node_tokens)
  uint32_t depth_byte;          // depth << 8 | the byte on the edge into the node
};

struct Trie {
  std::vector<Node> nodes;
  std::vector<int32_t> node_tokens;
  uint32_t max_depth = 0;
  void build(const std::vector<std::string>& bytes, std::vector<int32_t> ids);
};

// Masks by state id, least recently used dropped beyond a bound.
class MaskCache {
 public:
  const std::vector<uint64_t>* find(int32_t s) {
    auto it = masks_.find(s);
    if (it == masks_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second.at);
    return &it->second.bits;
  }
  void put(int32_t s, const std::vector<uint64_t>& bits, size_t bound) {
    if (bound == 0) return;
    if (masks_.size() >= bound) {
      masks_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(s);
    masks_.emplace(s, Mask{bits, lru_.begin()});
  }
  size_t size() const { return masks_.size(); }
  void clear() {
    lru_.clear();
    masks_.clear();
  }

 private:
  struct Mask {
    std::vector<uint64_t> bits;
    std::list<int32_t>::iterator at;
  };
  std::list<int32_t> lru_;  // most recent first
  std::unordered_map<int32_t, Mask> masks_;
};

// Everything cached for one grammar: interned states, their transitions, whole masks by state
// and short-trie masks by horizon view.
struct GrammarCache {
  std::shared_ptr<const Grammar> grammar;
  std::vector<GrammarMatcher::State> states;
  std::vector<uint8_t> can_end;
  std::vector<int32_t> trans;  // 256 per state
  std::unordered_multimap<uint64_t, int32_t> index;
  MaskCache masks, short_masks;
  uint64_t used = 0;

  void reset() {
    states.clear();
    can_end.clear();
    trans.clear();
    index.clear();
    masks.clear();
    short_masks.clear();
  }

  int32_t intern(const GrammarMatcher::State& s) {
    const uint64_t h = s.hash();
    for (auto [it, e] = index.equal_range(h); it != e; ++it)
      if (states[static_cast<size_t>(it->second)] == s) return it->second;
    const auto id = static_cast<int32_t>(states.size());
    states.push_back(s);
    can_end.push_back(GrammarMatcher::can_end(s));
    trans.resize(trans.size() + 256, kUnknown);
    index.emplace(h, id);
    return id;
  }
};

}  // namespace

struct TokenMasker::Impl {
  Options opt;
  std::vector<std::string> bytes;
  std::vector<uint8_t> kind;  // 0 never allowed, 1 normal (in the trie), 2 end of generation
  std::vector<int32_t> end_ids;
  Trie short_trie, long_trie;  // tokens of up to kHorizon bytes, and the longer ones

  mutable std::mutex mu;
  std::vector<std::unique_ptr<GrammarCache>> caches;
  uint64_t tick = 0;
  uint64_t fills = 0, hits = 0, transitions = 0;

  void build(const std::vector<int32_t>& special, std::vector<int32_t> ends);
  GrammarCache& cache_for(const std::shared_ptr<const Grammar>& g);
  int32_t next(GrammarCache& c, int32_t s, uint8_t b);
  void walk(GrammarCache& c, const Trie& trie, int32_t start, uint64_t* bits);
  void set_ends(bool can_end, uint64_t* bits) const {
    if (!can_end) return;
    for (const int32_t id : end_ids) bits[id / 64] |= uint64_t{1} << (id % 64);
  }
};

void TokenMasker::Impl::build(const std::vector<int32_t>& special, std::vector<int32_t> ends) {
  const auto n = static_cast<int32_t>(bytes.size());
  kind.assign(bytes.size(), 1);
  for (const int32_t id : special) {
    FLASHRT_CHECK(id >= 0 && id < n, "token mask: special id {} is outside the vocabulary", id);
    kind[static_cast<size_t>(id)] = 0;
  }
  for (const int32_t id : ends) {
    FLASHRT_CHECK(id >= 0 && id < n, "token mask: end id {} is outside the vocabulary", id);
    kind[static_cast<size_t>(id)] = 2;
  }
  std::sort(ends.begin(), ends.end());
  ends.erase(std::unique(ends.begin(), ends.end()), ends.end());
  end_ids = std::move(ends);

  std::vector<int32_t> short_ids, long_ids;
  for (int32_t i = 0; i < n; ++i) {
    const size_t len = bytes[static_cast<size_t>(i)].size();
    if (kind[static_cast<size_t>(i)] == 1 && len > 0)
      (len <= kHorizon ? short_ids : long_ids).push_back(i);
  }
  short_trie.build(bytes, std::move(short_ids));
  long_trie.build(bytes, std::move(long_ids));
}

void Trie::build(const std::vector<std::string>& bytes, std::vector<int32_t> ids) {
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return bytes[static_cast<size_t>(a)] < bytes[static_cast<size_t>(b)];
  });
  // Sorted order visits the trie in preorder: a token shares its prefix with the previous one.
  nodes.push_back({0, 0, 0, 0});
  std::vector<uint32_t> path = {0};
  std::string_view prev;
  for (const int32_t id : ids) {
    const std::string_view s = bytes[static_cast<size_t>(id)];
    size_t common = 0;
    while (common < prev.size() && common < s.size() && prev[common] == s[common]) ++common;
    while (path.size() > common + 1) {
      nodes[path.back()].end = static_cast<uint32_t>(nodes.size());
      path.pop_back();
    }
    for (size_t d = common + 1; d <= s.size(); ++d) {
      path.push_back(static_cast<uint32_t>(nodes.size()));
      nodes.push_back({0, 0, 0, static_cast<uint32_t>(d) << 8 | static_cast<uint8_t>(s[d - 1])});
    }
    Node& leaf = nodes[path.back()];
    if (leaf.tok_end != node_tokens.size()) {
      leaf.tok_begin = leaf.tok_end = static_cast<uint32_t>(node_tokens.size());
    }
    node_tokens.push_back(id);
    ++leaf.tok_end;
    max_depth = std::max(max_depth, static_cast<uint32_t>(s.size()));
    prev = s;
  }
  for (const uint32_t p : path) nodes[p].end = static_cast<uint32_t>(nodes.size());
}

GrammarCache& TokenMasker::Impl::cache_for(const std::shared_ptr<const Grammar>& g) {
  GrammarCache* found = nullptr;
  for (auto& c : caches)
    if (c->grammar == g ||
        (c->grammar->fingerprint() == g->fingerprint() && c->grammar->same_as(*g)))
      found = c.get();
  if (!found) {
    if (caches.size() >= std::max<size_t>(opt.max_grammars, 1)) {
      auto lru = std::min_element(caches.begin(), caches.end(),
                                  [](const auto& a, const auto& b) { return a->used < b->used; });
      caches.erase(lru);
    }
    caches.push_back(std::make_unique<GrammarCache>());
    found = caches.back().get();
    found->grammar = g;
  }
  found->used = ++tick;
  // Between walks only: state ids stay valid during one.
  if (found->states.size() > opt.max_states) found->reset();
  return *found;
}

int32_t TokenMasker::Impl::next(GrammarCache& c, int32_t s, uint8_t b) {
  const size_t slot = static_cast<size_t>(s) * 256 + b;
  if (c.trans[slot] != kUnknown) return c.trans[slot];
  ++transitions;
  GrammarMatcher::State out;
  const bool ok = GrammarMatcher::step(*c.grammar, c.states[static_cast<size_t>(s)], b, &out);
  const int32_t t = ok ? c.intern(out) : kReject;
  c.trans[slot] = t;
  return t;
}

void TokenMasker::Impl::walk(GrammarCache& c, const Trie& trie, int32_t start, uint64_t* bits) {
  std::vector<int32_t> at(trie.max_depth + 1);
  at[0] = start;
  const Node* nd = trie.nodes.data();
  const int32_t* node_tokens = trie.node_tokens.data();
  const auto n = static_cast<uint32_t>(trie.nodes.size());
  for (uint32_t i = 1; i < n;) {
    const uint32_t depth = nd[i].depth_byte >> 8;
    const auto b = static_cast<uint8_t>(nd[i].depth_byte);
    // The common case is a table lookup; next() computes (and may grow the table) otherwise.
    int32_t t = c.trans[static_cast<size_t>(at[depth - 1]) * 256 + b];
    if (t == kUnknown) t = next(c, at[depth - 1], b);
    if (t == kReject) {
      i = nd[i].end;
      continue;
    }
    at[depth] = t;
    for (uint32_t k = nd[i].tok_begin; k < nd[i].tok_end; ++k) {
      const int32_t id = node_tokens[k];
      bits[id / 64] |= uint64_t{1} << (id % 64);
    }
    ++i;
  }
}

TokenMasker::TokenMasker(const Tokenizer& tokenizer, std::vector<int32_t> end_ids, Options options)
    : impl_(std::make_unique<Impl>()) {
  impl_->opt = options;
  std::vector<int32_t> special;
  const int32_t n = tokenizer.vocab_size();
  impl_->bytes.resize(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    const TokenType t = tokenizer.token_type(i);
    if (t == kTokenControl || t == kTokenUnused || t == kTokenUnknown) {
      special.push_back(i);
    } else {
      impl_->bytes[static_cast<size_t>(i)] = std::string(tokenizer.token_bytes(i));
    }
  }
  impl_->build(special, std::move(end_ids));
}

TokenMasker::TokenMasker(std::vector<std::string> token_bytes,
                         const std::vector<int32_t>& special_ids, std::vector<int32_t> end_ids,
                         Options options)
    : impl_(std::make_unique<Impl>()) {
  impl_->opt = options;
  impl_->bytes = std::move(token_bytes);
  impl_->build(special_ids, std::move(end_ids));
}

TokenMasker::~TokenMasker() = default;

int32_t TokenMasker::vocab_size() const {
  return static_cast<int32_t>(impl_->bytes.size());
}

void TokenMasker::fill(const GrammarMatcher& m, std::vector<uint64_t>& bits) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mu);
  ++im.fills;
  GrammarCache& c = im.cache_for(m.grammar_ptr());
  const int32_t s = c.intern(m.state());
  if (const auto* hit = c.masks.find(s)) {
    ++im.hits;
    bits = *hit;
    return;
  }
  // Short tokens: by the horizon view (often shared with other counter states); then the long
  // tokens and the end ids by the state itself.
  const int32_t v = c.intern(
      GrammarMatcher::horizon_view(*c.grammar, c.states[static_cast<size_t>(s)], kHorizon));
  if (const auto* hit = c.short_masks.find(v)) {
    bits = *hit;
  } else {
    bits.assign(mask_words(), 0);
    im.walk(c, im.short_trie, v, bits.data());
    c.short_masks.put(v, bits, im.opt.max_cached_masks);
  }
  im.walk(c, im.long_trie, s, bits.data());
  im.set_ends(c.can_end[static_cast<size_t>(s)] != 0, bits.data());
  c.masks.put(s, bits, im.opt.max_cached_masks);
}

void TokenMasker::fill_uncached(const GrammarMatcher& m, std::vector<uint64_t>& bits) const {
  const Impl& im = *impl_;
  bits.assign(mask_words(), 0);
  const Grammar& g = m.grammar();
  for (const Trie* trie : {&im.short_trie, &im.long_trie}) {
    std::vector<GrammarMatcher::State> at(trie->max_depth + 1);
    at[0] = m.state();
    for (uint32_t i = 1; i < trie->nodes.size();) {
      const Node& nd = trie->nodes[i];
      const uint32_t depth = nd.depth_byte >> 8;
      if (!GrammarMatcher::step(g, at[depth - 1], static_cast<uint8_t>(nd.depth_byte),
                                &at[depth])) {
        i = nd.end;
        continue;
      }
      for (uint32_t k = nd.tok_begin; k < nd.tok_end; ++k) {
        const int32_t id = trie->node_tokens[k];
        bits[static_cast<size_t>(id) / 64] |= uint64_t{1} << (id % 64);
      }
      ++i;
    }
  }
  im.set_ends(m.can_end(), bits.data());
}

bool TokenMasker::accept_token(GrammarMatcher& m, int32_t id) {
  if (id < 0 || id >= vocab_size()) return false;
  Impl& im = *impl_;
  const uint8_t k = im.kind[static_cast<size_t>(id)];
  if (k == 2) return m.can_end();
  const std::string& b = im.bytes[static_cast<size_t>(id)];
  if (k == 0 || b.empty()) return false;
  std::lock_guard lock(im.mu);
  GrammarCache& c = im.cache_for(m.grammar_ptr());
  int32_t s = c.intern(m.state());
  for (const char ch : b) {
    s = im.next(c, s, static_cast<uint8_t>(ch));
    if (s == kReject) return false;
  }
  m.state_ = c.states[static_cast<size_t>(s)];
  return true;
}

void TokenMasker::apply(std::span<float> logits, std::span<const uint64_t> bits) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (size_t w = 0; w * 64 < logits.size(); ++w) {
    const uint64_t word = w < bits.size() ? bits[w] : 0;
    if (word == ~uint64_t{0}) continue;
    const size_t end = std::min(logits.size(), w * 64 + 64);
    for (size_t i = w * 64; i < end; ++i)
      if (!(word >> (i % 64) & 1)) logits[i] = kNegInf;
  }
}

TokenMasker::Stats TokenMasker::stats() const {
  std::lock_guard lock(impl_->mu);
  Stats s{impl_->fills, impl_->hits, impl_->transitions, 0, 0, impl_->caches.size()};
  for (const auto& c : impl_->caches) {
    s.states += c->states.size();
    s.masks += c->masks.size() + c->short_masks.size();
    s.short_masks += c->short_masks.size();
  }
  return s;
}

void TokenMasker::clear_cache() {
  std::lock_guard lock(impl_->mu);
  impl_->caches.clear();
}

}  // namespace flashrt
