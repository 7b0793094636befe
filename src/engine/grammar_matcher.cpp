#include "engine/grammar_matcher.h"

#include <xxhash.h>

#include <algorithm>
#include <utility>

#include "core/error.h"

namespace flashrt {
namespace {

// Work allowed for one byte (stack elements copied while expanding rule references). Real grammars
// use a few hundred; a pathologically ambiguous one (a repeated item that can match nothing in
// several ways) would otherwise take exponential time.
constexpr size_t kMaxWork = size_t{1} << 22;

using Stack = std::vector<uint32_t>;

// Scratch reused across steps (per thread: the masker and matchers run on many threads).
struct Scratch {
  std::vector<Stack> work, out;
  size_t budget = 0;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// Expands every stack in s.work until its top is a character element (or it is empty), into s.out.
void expand(const Grammar& g, Scratch& s) {
  const auto elems = g.elements();
  while (!s.work.empty()) {
    Stack st = std::move(s.work.back());
    s.work.pop_back();
    if (st.empty() || elems[st.back()].kind == GrammarElement::kChars) {
      s.out.push_back(std::move(st));
      continue;
    }
    const uint32_t p = st.back();
    st.pop_back();
    if (!Grammar::ends_sequence(elems[p + 1])) st.push_back(p + 1);
    for (const uint32_t a : g.alternatives(elems[p].a)) {
      s.budget += st.size() + 1;
      if (s.budget > kMaxWork)
        fail("grammar matcher: the grammar is too ambiguous (its parse stacks explode)");
      Stack next = st;
      if (!Grammar::ends_sequence(elems[a])) next.push_back(a);
      s.work.push_back(std::move(next));
    }
  }
}

void canonical(Scratch& s, std::vector<uint32_t>* flat) {
  std::sort(s.out.begin(), s.out.end());
  s.out.erase(std::unique(s.out.begin(), s.out.end()), s.out.end());
  flat->clear();
  for (const Stack& st : s.out) {
    flat->push_back(static_cast<uint32_t>(st.size()));
    flat->insert(flat->end(), st.begin(), st.end());
  }
  s.out.clear();
}

// Calls f(top position) for every non-empty stack of a flat stack set.
template <class F>
void for_each_top(const std::vector<uint32_t>& flat, F&& f) {
  for (size_t i = 0; i < flat.size(); i += flat[i] + 1)
    if (flat[i] > 0) f(i + 1, flat[i]);
}

bool advance_cp(const Grammar& g, const std::vector<uint32_t>& from, uint32_t cp,
                std::vector<uint32_t>* to) {
  Scratch& s = scratch();
  s.budget = 0;
  const auto elems = g.elements();
  for_each_top(from, [&](size_t at, uint32_t depth) {
    const uint32_t top = from[at + depth - 1];
    if (!g.matches(elems[top], cp)) return;
    Stack st(from.begin() + static_cast<ptrdiff_t>(at),
             from.begin() + static_cast<ptrdiff_t>(at + depth - 1));
    if (!Grammar::ends_sequence(elems[top + 1])) st.push_back(top + 1);
    s.work.push_back(std::move(st));
    expand(g, s);
  });
  canonical(s, to);
  return !to->empty();
}

// Some stack can take a scalar value in [lo, hi] (surrogates excluded).
bool viable(const Grammar& g, const std::vector<uint32_t>& flat, uint32_t lo, uint32_t hi) {
  const auto elems = g.elements();
  bool ok = false;
  for_each_top(flat, [&](size_t at, uint32_t depth) {
    const GrammarElement& e = elems[flat[at + depth - 1]];
    ok = ok || (lo <= 0xD7FF && g.intersects(e, lo, std::min(hi, 0xD7FFu))) ||
         (hi >= 0xE000 && g.intersects(e, std::max(lo, 0xE000u), hi));
  });
  return ok;
}

constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};

}  // namespace

uint64_t GrammarMatcher::State::hash() const {
  const uint64_t partial = uint64_t{partial_cp} << 16 | uint64_t{partial_need} << 8 | partial_len;
  return XXH3_64bits_withSeed(stacks.data(), stacks.size() * sizeof(uint32_t), partial);
}

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar)
    : grammar_(std::move(grammar)) {
  FLASHRT_CHECK(grammar_ != nullptr, "grammar matcher: no grammar");
  Scratch& s = scratch();
  s.budget = 0;
  const auto elems = grammar_->elements();
  for (const uint32_t a : grammar_->alternatives(grammar_->root()))
    s.work.push_back(Grammar::ends_sequence(elems[a]) ? Stack{} : Stack{a});
  expand(*grammar_, s);
  canonical(s, &state_.stacks);
}

bool GrammarMatcher::step(const Grammar& g, const State& from, uint8_t b, State* to) {
  if (from.partial_need == 0) {
    if (b < 0x80) {
      to->partial_cp = 0;
      to->partial_need = to->partial_len = 0;
      return advance_cp(g, from.stacks, b, &to->stacks);
    }
    // A lead byte: C2..DF, E0..EF, F0..F4 (C0, C1 and F5.. never occur in UTF-8).
    if (b < 0xC2 || b > 0xF4) return false;
    to->partial_len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2;
    to->partial_cp = b & (0x3Fu >> (to->partial_len - 1));
    to->partial_need = static_cast<uint8_t>(to->partial_len - 1);
  } else if (from.partial_len == kAnyOf) {
    // Every completion is a valid character of one class, which some stack takes.
    if ((b & 0xC0) != 0x80) return false;
    if (from.partial_need == 1) {
      const uint32_t cp = g.class_start(from.partial_cp);
      to->partial_cp = 0;
      to->partial_need = to->partial_len = 0;
      return advance_cp(g, from.stacks, cp, &to->stacks);
    }
    to->partial_cp = from.partial_cp;
    to->partial_len = kAnyOf;
    to->partial_need = static_cast<uint8_t>(from.partial_need - 1);
    if (&to->stacks != &from.stacks) to->stacks = from.stacks;
    return true;
  } else {
    if ((b & 0xC0) != 0x80) return false;
    to->partial_len = from.partial_len;
    to->partial_cp = from.partial_cp << 6 | (b & 0x3Fu);
    to->partial_need = static_cast<uint8_t>(from.partial_need - 1);
    if (to->partial_need == 0) {
      const uint32_t cp = to->partial_cp;
      if (cp < kMinForLength[to->partial_len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return false;
      to->partial_cp = 0;
      to->partial_len = 0;
      return advance_cp(g, from.stacks, cp, &to->stacks);
    }
  }
  // Mid-character: the stacks wait for the whole code point; the prefix must still lead to one
  // some stack can take (and to a valid, shortest-form encoding).
  const int shift = 6 * to->partial_need;
  const uint32_t first = to->partial_cp << shift, last = first | ((1u << shift) - 1);
  const uint32_t lo = std::max(first, kMinForLength[to->partial_len]);
  const uint32_t hi = std::min(last, 0x10FFFFu);
  if (lo > hi || !viable(g, from.stacks, lo, hi)) return false;
  // Equal futures, one state: when every completion is valid and in one class, the bits read no
  // longer matter.
  if (const uint32_t cls = g.char_class(first);
      first == lo && last == hi && cls == g.char_class(last)) {
    to->partial_cp = cls;
    to->partial_len = kAnyOf;
  }
  if (&to->stacks != &from.stacks) to->stacks = from.stacks;
  return true;
}

GrammarMatcher::State GrammarMatcher::top_view(const State& s) {
  // The common bottom: at most the shortest stack less its top.
  size_t n_stacks = 0, shortest = SIZE_MAX;
  for (size_t i = 0; i < s.stacks.size(); i += s.stacks[i] + 1) {
    ++n_stacks;
    shortest = std::min<size_t>(shortest, s.stacks[i]);
  }
  if (n_stacks == 0 || shortest <= 1) return s;
  size_t common = shortest - 1;
  const uint32_t* first = s.stacks.data() + 1;
  for (size_t i = 0; i < s.stacks.size() && common > 0; i += s.stacks[i] + 1) {
    size_t k = 0;
    while (k < common && s.stacks[i + 1 + k] == first[k]) ++k;
    common = k;
  }
  if (common == 0) return s;
  State v;
  v.partial_cp = s.partial_cp;
  v.partial_need = s.partial_need;
  v.partial_len = s.partial_len;
  v.stacks.reserve(s.stacks.size() - n_stacks * common);
  for (size_t i = 0; i < s.stacks.size(); i += s.stacks[i] + 1) {
    v.stacks.push_back(static_cast<uint32_t>(s.stacks[i] - common));
    v.stacks.insert(v.stacks.end(), s.stacks.begin() + static_cast<ptrdiff_t>(i + 1 + common),
                    s.stacks.begin() + static_cast<ptrdiff_t>(i + 1 + s.stacks[i]));
  }
  // Still canonical: stacks sorted by their elements stay sorted (and distinct) once the same
  // bottom is removed from each.
  return v;
}

GrammarMatcher::State GrammarMatcher::horizon_view(const Grammar& g, const State& s,
                                                   uint32_t horizon) {
  State v = s;
  if (!g.has_counters()) return v;
  bool changed = false;
  for (size_t i = 0; i < v.stacks.size(); i += v.stacks[i] + 1) {
    for (size_t k = i + 1; k <= i + v.stacks[i]; ++k) {
      const uint32_t p = g.clamp_counter(v.stacks[k], horizon);
      changed = changed || p != v.stacks[k];
      v.stacks[k] = p;
    }
  }
  if (!changed) return v;
  // Clamping can make stacks equal: canonical again.
  Scratch& sc = scratch();
  for (size_t i = 0; i < v.stacks.size(); i += v.stacks[i] + 1)
    sc.out.emplace_back(v.stacks.begin() + static_cast<ptrdiff_t>(i + 1),
                        v.stacks.begin() + static_cast<ptrdiff_t>(i + 1 + v.stacks[i]));
  canonical(sc, &v.stacks);
  return v;
}

bool GrammarMatcher::accept_bytes(std::string_view bytes) {
  if (bytes.empty()) return true;
  State a, b;
  const State* cur = &state_;
  for (const char c : bytes) {
    if (!step(*grammar_, *cur, static_cast<uint8_t>(c), &a)) return false;
    std::swap(a, b);
    cur = &b;
  }
  state_ = std::move(b);
  return true;
}

bool GrammarMatcher::operator==(const GrammarMatcher& o) const {
  return (grammar_ == o.grammar_ || grammar_->same_as(*o.grammar_)) && state_ == o.state_;
}

}  // namespace flashrt
