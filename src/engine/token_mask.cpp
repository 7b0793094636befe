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
  // kMore | kPure | below << 20 | depth << 8 | the byte on the edge into the node. below: how
  // much longer than the node its longest token in the subtree is; kPure: only plain bytes
  // (is_plain) below the node.
  uint32_t depth_byte;
  // The token whose bytes end here, or the spare bit past the vocabulary (so that marking it is
  // branch-free: walks write masks one word longer). With kMore, other tokens with the same
  // bytes follow it in Trie::order.
  uint32_t tok;
};
constexpr uint32_t kMore = 1u << 31;
constexpr uint32_t kPure = 1u << 30;
// Longer tokens are left out of the tries (never allowed); larger heights are stored as kMaxBelow.
constexpr uint32_t kMaxTokenBytes = 0xFFF;
constexpr uint32_t kMaxBelow = 0x3FF;
inline uint32_t depth_of(uint32_t x) {
  return x >> 8 & 0xFFF;
}
inline uint32_t below_of(uint32_t x) {
  return x >> 20 & 0x3FF;
}
// Printable ASCII but the quote and backslash: what strings, comments and free text take byte
// after byte. A state that takes any run of these (a JSON string, a counter with room) accepts a
// trie subtree holding only them without walking it.
constexpr bool is_plain(uint32_t b) {
  return b >= 0x20 && b < 0x7F && b != '"' && b != '\\';
}
constexpr int16_t kEndlessRun = 0x7FFF;

struct Trie {
  std::vector<Node> nodes;
  // Every token in node preorder; first[i]: where node i's tokens start (first[nodes]: the end).
  std::vector<int32_t> order;
  std::vector<uint32_t> first;
  // Marks every token below node i (not its own).
  void mark_below(uint32_t i, uint64_t* bits) const {
    for (uint32_t k = first[i + 1], e = first[nodes[i].end]; k < e; ++k)
      bits[static_cast<uint32_t>(order[k]) / 64] |= uint64_t{1} << (order[k] % 64);
  }
  uint32_t max_depth = 0;
  void build(const std::vector<std::string>& bytes, std::vector<int32_t> ids);
  void mark(uint32_t i, uint64_t* bits) const {
    const Node& n = nodes[i];
    bits[n.tok / 64] |= uint64_t{1} << (n.tok % 64);
    if (n.depth_byte & kMore) [[unlikely]]
      for (uint32_t k = first[i] + 1; k < first[i + 1]; ++k)
        bits[static_cast<uint32_t>(order[k]) / 64] |= uint64_t{1} << (order[k] % 64);
  }
};

// Values by state id, least recently used dropped beyond a bound.
template <class V>
class LruCache {
 public:
  const V* find(int32_t s) {
    auto it = entries_.find(s);
    if (it == entries_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second.at);
    return &it->second.value;
  }
  const V* put(int32_t s, V value, size_t bound) {
    if (bound == 0) return nullptr;
    if (entries_.size() >= bound) {
      entries_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(s);
    return &entries_.emplace(s, Entry{std::move(value), lru_.begin()}).first->second.value;
  }
  size_t size() const { return entries_.size(); }
  void clear() {
    lru_.clear();
    entries_.clear();
  }

 private:
  struct Entry {
    V value;
    std::list<int32_t>::iterator at;
  };
  std::list<int32_t> lru_;  // most recent first
  std::unordered_map<int32_t, Entry> entries_;
};

// The short-token walk from a view: the tokens it accepts (accepted from every state with that
// view), and the subtrees it could not decide because the view returned into the context it
// leaves out; those are walked from the state itself.
struct ViewMask {
  struct Open {
    uint32_t node;  // subtree root in the short trie
    uint8_t depth;  // its depth; the bytes above it follow
    uint8_t bytes[kHorizon];
  };
  std::vector<uint64_t> bits;
  std::vector<Open> open;
  bool mostly_open = false;  // the open subtrees hold over a quarter of the trie
};

// Everything cached for one grammar: interned states, their transitions, whole masks by state
// and short-trie masks by horizon view.
struct GrammarCache {
  std::shared_ptr<const Grammar> grammar;
  std::vector<GrammarMatcher::State> states;
  std::vector<uint8_t> can_end;
  std::vector<int16_t> run;       // plain bytes taken in any order (Impl::run_of; -1: not known)
  std::vector<uint8_t> returned;  // some stack is empty: a view returned into its context
  std::vector<int32_t> trans;     // 256 per state
  std::vector<uint8_t> ascii_peers[0x80];  // per ASCII byte: those of its character class
  std::unordered_multimap<uint64_t, int32_t> index;
  LruCache<std::vector<uint64_t>> masks;
  LruCache<ViewMask> short_masks;
  uint64_t used = 0;

  void reset() {
    states.clear();
    can_end.clear();
    returned.clear();
    run.clear();
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
    returned.push_back(!s.stacks.empty() && s.stacks[0] == 0);
    run.push_back(-1);
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
  // Walks the subtree rooted at `begin` (the whole trie: 1) from state `start` above it.
  void walk(GrammarCache& c, const Trie& trie, uint32_t begin, int32_t start, uint64_t* bits);
  ViewMask walk_view(GrammarCache& c, int32_t view);
  // How many plain bytes in a row the state takes, whichever they are (kEndlessRun: any number).
  int32_t run_of(GrammarCache& c, int32_t t);
  // After accepting node i in state t: its whole subtree is accepted (and marked).
  bool accepts_below(GrammarCache& c, const Trie& trie, uint32_t i, int32_t t, uint64_t* bits) {
    const uint32_t x = trie.nodes[i].depth_byte;
    if (!(x & kPure) || below_of(x) == 0) return false;
    const int32_t r = c.run[static_cast<size_t>(t)];
    if ((r >= 0 ? r : run_of(c, t)) < static_cast<int32_t>(below_of(x))) return false;
    trie.mark_below(i, bits);
    return true;
  }
  std::vector<int32_t> run_chain;
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
    if (kind[static_cast<size_t>(i)] == 1 && len > 0 && len <= kMaxTokenBytes)
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
  const auto spare = static_cast<uint32_t>((bytes.size() + 63) / 64 * 64);
  nodes.push_back({0, 0, spare});
  std::vector<uint32_t> path = {0}, height = {0}, parent = {0};
  std::vector<std::pair<uint32_t, int32_t>> more;  // (node, token) past a node's first, in order
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
      parent.push_back(path.back());
      path.push_back(static_cast<uint32_t>(nodes.size()));
      nodes.push_back({0, static_cast<uint32_t>(d) << 8 | static_cast<uint8_t>(s[d - 1]), spare});
      height.push_back(0);
    }
    for (const uint32_t p : path) height[p] = std::max(height[p], static_cast<uint32_t>(s.size()));
    Node& leaf = nodes[path.back()];
    if (leaf.tok == spare) {
      leaf.tok = static_cast<uint32_t>(id);
    } else {
      leaf.depth_byte |= kMore;
      more.emplace_back(path.back(), id);  // nodes come in preorder: sorted
    }
    max_depth = std::max(max_depth, static_cast<uint32_t>(s.size()));
    prev = s;
  }
  for (const uint32_t p : path) nodes[p].end = static_cast<uint32_t>(nodes.size());
  // Children come after their parent: a reverse sweep settles which subtrees are plain.
  std::vector<uint8_t> mixed(nodes.size(), 0);
  for (size_t i = nodes.size(); i-- > 1;)
    if (mixed[i] || !is_plain(nodes[i].depth_byte & 0xFF)) mixed[parent[i]] = 1;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const uint32_t below = height[i] - depth_of(nodes[i].depth_byte);
    nodes[i].depth_byte |= std::min(below, kMaxBelow) << 20 | (mixed[i] ? 0 : kPure);
  }
  first.assign(nodes.size() + 1, 0);
  size_t m = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    first[i] = static_cast<uint32_t>(order.size());
    if (nodes[i].tok != spare) order.push_back(static_cast<int32_t>(nodes[i].tok));
    for (; m < more.size() && more[m].first == i; ++m) order.push_back(more[m].second);
  }
  first[nodes.size()] = static_cast<uint32_t>(order.size());
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
    for (int b = 0; b < 0x80; ++b)
      for (int x = 0; x < 0x80; ++x)
        if (g->char_class(static_cast<uint32_t>(x)) == g->char_class(static_cast<uint32_t>(b)))
          found->ascii_peers[b].push_back(static_cast<uint8_t>(x));
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
  const GrammarMatcher::State& from = c.states[static_cast<size_t>(s)];
  const bool ok = GrammarMatcher::step(*c.grammar, from, b, &out);
  // Bytes the grammar cannot tell apart go the same way: ASCII of one character class on a
  // character boundary, and any continuation byte of a character known only by its class.
  const bool ascii = from.partial_need == 0 && b < 0x80;
  const bool any_cont = from.partial_len == GrammarMatcher::kAnyOf && (b & 0xC0) == 0x80;
  const int32_t t = ok ? c.intern(out) : kReject;  // may move c.states: `from` is not used after
  int32_t* row = &c.trans[static_cast<size_t>(s) * 256];
  if (ascii) {
    for (const uint8_t x : c.ascii_peers[b]) row[x] = t;
  } else if (any_cont) {
    std::fill(row + 0x80, row + 0xC0, t);
  }
  row[b] = t;
  return t;
}

int32_t TokenMasker::Impl::run_of(GrammarCache& c, int32_t t) {
  // Follow the state every plain byte leads to, while they all lead to one.
  run_chain.clear();
  int32_t cur = t, tail = 0;
  for (;;) {
    if (c.run[static_cast<size_t>(cur)] >= 0) {
      tail = c.run[static_cast<size_t>(cur)];
      break;
    }
    if (run_chain.size() >= kMaxBelow - 1) break;  // a lower bound is safe
    int32_t u = kReject;
    for (uint32_t b = 0x20; b < 0x7F; ++b) {
      if (!is_plain(b)) continue;
      const int32_t v = next(c, cur, static_cast<uint8_t>(b));
      if (v == kReject || (u != kReject && v != u)) {
        u = kReject;
        break;
      }
      u = v;
    }
    if (u == kReject) {
      c.run[static_cast<size_t>(cur)] = 0;
      break;
    }
    if (u == cur) {
      c.run[static_cast<size_t>(cur)] = kEndlessRun;
      tail = kEndlessRun;
      break;
    }
    run_chain.push_back(cur);
    cur = u;
  }
  // Finite runs stay below kMaxBelow, so a clamped height is never taken as reached.
  for (size_t j = run_chain.size(); j-- > 0;) {
    if (tail != kEndlessRun) tail = std::min<int32_t>(tail + 1, kMaxBelow - 1);
    c.run[static_cast<size_t>(run_chain[j])] = static_cast<int16_t>(tail);
  }
  return c.run[static_cast<size_t>(t)];
}

void TokenMasker::Impl::walk(GrammarCache& c, const Trie& trie, uint32_t begin, int32_t start,
                             uint64_t* bits) {
  if (begin >= trie.nodes.size()) return;
  std::vector<int32_t> at(trie.max_depth + 1);
  const Node* nd = trie.nodes.data();
  at[depth_of(nd[begin].depth_byte) - 1] = start;
  const uint32_t n = begin == 1 ? static_cast<uint32_t>(trie.nodes.size()) : nd[begin].end;
  for (uint32_t i = begin; i < n;) {
    const uint32_t depth = depth_of(nd[i].depth_byte);
    const auto b = static_cast<uint8_t>(nd[i].depth_byte);
    // The common case is a table lookup; next() computes (and may grow the table) otherwise.
    int32_t t = c.trans[static_cast<size_t>(at[depth - 1]) * 256 + b];
    if (t == kUnknown) t = next(c, at[depth - 1], b);
    if (t == kReject) {
      i = nd[i].end;
      continue;
    }
    at[depth] = t;
    trie.mark(i, bits);
    i = accepts_below(c, trie, i, t, bits) ? nd[i].end : i + 1;
  }
}

ViewMask TokenMasker::Impl::walk_view(GrammarCache& c, int32_t view) {
  ViewMask out;
  out.bits.assign((bytes.size() + 63) / 64 + 1, 0);  // the spare word: see Node::tok
  const Trie& trie = short_trie;
  std::vector<int32_t> at(trie.max_depth + 1);
  // returned[d]: on the path to depth d the view has returned into its context, so the context
  // may take what the view refuses.
  std::vector<uint8_t> returned(trie.max_depth + 1), path(trie.max_depth + 1);
  at[0] = view;
  returned[0] = c.returned[static_cast<size_t>(view)];
  const Node* nd = trie.nodes.data();
  const auto n = static_cast<uint32_t>(trie.nodes.size());
  size_t open_nodes = 0;
  for (uint32_t i = 1; i < n;) {
    const uint32_t depth = depth_of(nd[i].depth_byte);
    const auto b = static_cast<uint8_t>(nd[i].depth_byte);
    int32_t t = c.trans[static_cast<size_t>(at[depth - 1]) * 256 + b];
    if (t == kUnknown) t = next(c, at[depth - 1], b);
    if (t == kReject) {
      if (returned[depth - 1]) {
        ViewMask::Open o{i, static_cast<uint8_t>(depth), {}};
        std::copy(path.begin() + 1, path.begin() + depth, o.bytes);
        out.open.push_back(o);
        open_nodes += nd[i].end - i;
      }
      i = nd[i].end;
      continue;
    }
    at[depth] = t;
    path[depth] = b;
    returned[depth] = returned[depth - 1] | c.returned[static_cast<size_t>(t)];
    trie.mark(i, out.bits.data());
    i = accepts_below(c, trie, i, t, out.bits.data()) ? nd[i].end : i + 1;
  }
  out.mostly_open = open_nodes > n / 4;
  return out;
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
  // Short tokens from the state's view (shared by the states that differ only in the context
  // below or in counters far from their limits), the subtrees the view left open from the state
  // itself; then the long tokens and the end ids from the state.
  const GrammarMatcher::State state = c.states[static_cast<size_t>(s)];  // interning moves it
  GrammarMatcher::State top = GrammarMatcher::top_view(state);
  bool shared = top.stacks.size() != state.stacks.size();
  ViewMask local;
  const auto view_of = [&](int32_t v) {
    if (const ViewMask* vm = c.short_masks.find(v)) return vm;
    if (im.opt.max_cached_masks == 0)
      return static_cast<const ViewMask*>(&(local = im.walk_view(c, v)));
    return c.short_masks.put(v, im.walk_view(c, v), im.opt.max_cached_masks);
  };
  const ViewMask* vm = view_of(c.intern(GrammarMatcher::horizon_view(*c.grammar, top, kHorizon)));
  if (shared && vm->mostly_open) {
    // The view returns into its context within most tokens (a construct a byte or two long):
    // the state's own stacks decide instead.
    shared = false;
    vm = view_of(c.intern(GrammarMatcher::horizon_view(*c.grammar, state, kHorizon)));
  }
  bits = vm->bits;
  if (shared) {
    for (const ViewMask::Open& o : vm->open) {
      int32_t f = s;
      for (uint8_t d = 1; d < o.depth && f != kReject; ++d) f = im.next(c, f, o.bytes[d - 1]);
      if (f != kReject) im.walk(c, im.short_trie, o.node, f, bits.data());
    }
  }
  im.walk(c, im.long_trie, 1, s, bits.data());
  bits.pop_back();  // the spare word
  im.set_ends(c.can_end[static_cast<size_t>(s)] != 0, bits.data());
  c.masks.put(s, bits, im.opt.max_cached_masks);
}

void TokenMasker::fill_uncached(const GrammarMatcher& m, std::vector<uint64_t>& bits) const {
  const Impl& im = *impl_;
  bits.assign(mask_words() + 1, 0);
  const Grammar& g = m.grammar();
  for (const Trie* trie : {&im.short_trie, &im.long_trie}) {
    std::vector<GrammarMatcher::State> at(trie->max_depth + 1);
    at[0] = m.state();
    for (uint32_t i = 1; i < trie->nodes.size();) {
      const Node& nd = trie->nodes[i];
      const uint32_t depth = depth_of(nd.depth_byte);
      if (!GrammarMatcher::step(g, at[depth - 1], static_cast<uint8_t>(nd.depth_byte),
                                &at[depth])) {
        i = nd.end;
        continue;
      }
      trie->mark(i, bits.data());
      ++i;
    }
  }
  bits.pop_back();
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
