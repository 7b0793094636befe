#include "engine/grammar.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <utility>

#include "core/error.h"

namespace flashrt {
namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();
// Bounds that keep a hostile grammar (a request can carry one) from taking unbounded memory.
constexpr uint32_t kMaxRepeat = 10000;
constexpr size_t kMaxElements = size_t{1} << 20;
constexpr int kMaxNesting = 200;  // parentheses (the parser recurses on them)
constexpr size_t kNone = std::numeric_limits<size_t>::max();
constexpr uint32_t kNoChain = 0xFFFFFFFFu;

bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

GrammarElement ref(uint32_t rule) {
  return {GrammarElement::kRuleRef, rule, 0};
}

}  // namespace

// Recursive descent over the GBNF text into per-rule element runs, then the checks and the
// flattening into a Grammar.
class GrammarBuilder {
 public:
  explicit GrammarBuilder(std::string_view src) : src_(src) {}

  std::shared_ptr<const Grammar> build() {
    skip_space();
    while (pos_ < src_.size()) {
      const size_t at = pos_;
      const std::string_view name = parse_name();
      if (name.empty()) error_at(at, "expected a rule name, found '{}'", src_[at]);
      skip_inline_space();
      if (src_.substr(pos_, 3) != "::=")
        error_at(pos_, "expected '::=' after rule name '{}'", name);
      pos_ += 3;
      const uint32_t id = symbol(name, at, true);
      parse_alternates(id, id, false);
      skip_space();
      if (pos_ < src_.size() && !at_rule_start())
        error_at(pos_, "unexpected '{}' in rule '{}'", src_[pos_], name);
    }
    for (uint32_t r = 0; r < rules_.size(); ++r)
      if (def_at_[r] == kNone) error_at(ref_at_[r], "undefined rule '{}'", names_[r]);
    const auto root = ids_.find("root");
    if (root == ids_.end()) fail("grammar: there is no rule named 'root'");
    check_left_recursion();
    check_productive();
    return finish(root->second);
  }

 private:
  template <class... Args>
  [[noreturn]] void error_at(size_t off, fmt::format_string<Args...> f, Args&&... args) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < off && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    fail("grammar: line {}, column {}: {}", line, col, fmt::format(f, std::forward<Args>(args)...));
  }

  uint32_t new_rule(std::string name, uint32_t owner) {
    const auto id = static_cast<uint32_t>(rules_.size());
    rules_.emplace_back();
    names_.push_back(std::move(name));
    owner_.push_back(owner == kUnbounded ? id : owner);
    def_at_.push_back(kNone);
    ref_at_.push_back(kNone);
    links_.emplace_back();
    return id;
  }

  uint32_t symbol(std::string_view name, size_t at, bool define) {
    auto [it, added] = ids_.try_emplace(std::string(name), 0);
    if (added) it->second = new_rule(std::string(name), kUnbounded);
    const uint32_t id = it->second;
    if (define) {
      if (def_at_[id] != kNone) error_at(at, "rule '{}' is defined twice", name);
      def_at_[id] = at;
    } else if (ref_at_[id] == kNone) {
      ref_at_[id] = at;
    }
    return id;
  }

  // Helper rules (groups, repetitions) get their names at the end, once every user name is known.
  uint32_t helper(uint32_t owner, size_t at) {
    const uint32_t id = new_rule("", owner);
    def_at_[id] = at;
    return id;
  }

  void grow(size_t n, size_t at) {
    total_ += n;
    if (total_ > kMaxElements)
      error_at(at, "grammar is too large (over {} elements)", kMaxElements);
  }

  void skip_inline_space() {
    while (pos_ < src_.size() && (src_[pos_] == ' ' || src_[pos_] == '\t')) ++pos_;
  }

  void skip_space() {
    while (pos_ < src_.size()) {
      const char c = src_[pos_];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  std::string_view parse_name() {
    const size_t start = pos_;
    while (pos_ < src_.size() && is_word_char(src_[pos_])) ++pos_;
    return src_.substr(start, pos_ - start);
  }

  // `name ::=` ahead: the current rule ends here.
  bool at_rule_start() const {
    size_t p = pos_;
    while (p < src_.size() && is_word_char(src_[p])) ++p;
    if (p == pos_) return false;
    while (p < src_.size() && (src_[p] == ' ' || src_[p] == '\t')) ++p;
    return src_.substr(p, 3) == "::=";
  }

  uint32_t parse_hex(size_t digits, size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < digits; ++i) {
      const int h = pos_ < src_.size() ? hex_value(src_[pos_]) : -1;
      if (h < 0) error_at(at, "escape needs {} hex digits", digits);
      v = v * 16 + static_cast<uint32_t>(h);
      ++pos_;
    }
    if (v > kMaxCodePoint || (v >= 0xD800 && v <= 0xDFFF))
      error_at(at, "escape U+{:X} is not a Unicode scalar value", v);
    return v;
  }

  // One code point of a literal or class: an escape or a UTF-8 character.
  uint32_t parse_char() {
    const size_t at = pos_;
    const auto c = static_cast<unsigned char>(src_[pos_++]);
    if (c == '\\') {
      if (pos_ >= src_.size()) error_at(at, "unterminated escape");
      const char e = src_[pos_++];
      switch (e) {
        case 'n':
          return '\n';
        case 't':
          return '\t';
        case 'r':
          return '\r';
        case 'x':
          return parse_hex(2, at);
        case 'u':
          return parse_hex(4, at);
        case 'U':
          return parse_hex(8, at);
        default:
          if (std::strchr("\\\"'[]-^/.*+?(){}|", e) && e != '\0') return static_cast<uint32_t>(e);
          error_at(at, "unknown escape '\\{}'", e);
      }
    }
    if (c < 0x80) return c;
    if (c > 0xF4 || c < 0xC2) error_at(at, "invalid UTF-8");
    const int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    uint32_t cp = c & (0x3F >> (len - 1));
    for (int i = 1; i < len; ++i) {
      if (pos_ >= src_.size() || (static_cast<unsigned char>(src_[pos_]) & 0xC0) != 0x80)
        error_at(at, "invalid UTF-8");
      cp = (cp << 6) | (static_cast<unsigned char>(src_[pos_++]) & 0x3F);
    }
    static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF))
      error_at(at, "invalid UTF-8");
    return cp;
  }

  GrammarElement chars(std::vector<CharRange> r, bool negate, size_t at) {
    std::sort(r.begin(), r.end(), [](CharRange a, CharRange b) { return a.lo < b.lo; });
    std::vector<CharRange> merged;
    for (const CharRange x : r) {
      if (!merged.empty() && x.lo <= merged.back().hi + 1) {
        merged.back().hi = std::max(merged.back().hi, x.hi);
      } else {
        merged.push_back(x);
      }
    }
    if (negate) {
      std::vector<CharRange> inv;
      uint32_t next = 0;
      for (const CharRange x : merged) {
        if (x.lo > next) inv.push_back({next, x.lo - 1});
        next = x.hi + 1;
      }
      if (next <= kMaxCodePoint) inv.push_back({next, kMaxCodePoint});
      merged = std::move(inv);
    }
    if (merged.empty()) error_at(at, "character class matches nothing");
    grow(merged.size(), at);
    const auto first = static_cast<uint32_t>(pool_.size());
    pool_.insert(pool_.end(), merged.begin(), merged.end());
    return {GrammarElement::kChars, first, static_cast<uint32_t>(merged.size())};
  }

  void parse_alternates(uint32_t rule, uint32_t owner, bool nested) {
    std::vector<GrammarElement> elems;
    parse_sequence(elems, owner, nested);
    while (pos_ < src_.size() && src_[pos_] == '|') {
      ++pos_;
      elems.push_back({GrammarElement::kAlt});
      parse_sequence(elems, owner, nested);
    }
    elems.push_back({GrammarElement::kEnd});
    grow(elems.size(), pos_);
    rules_[rule] = std::move(elems);
  }

  void parse_sequence(std::vector<GrammarElement>& out, uint32_t owner, bool nested) {
    size_t last = kNone;  // where the item a postfix operator repeats starts in `out`
    for (;;) {
      skip_space();
      if (pos_ >= src_.size()) break;
      const size_t at = pos_;
      const char c = src_[pos_];
      if (c == '"') {
        ++pos_;
        last = out.size();
        while (pos_ < src_.size() && src_[pos_] != '"' && src_[pos_] != '\n') {
          const uint32_t cp = parse_char();
          out.push_back(chars({{cp, cp}}, false, at));
        }
        if (pos_ >= src_.size() || src_[pos_] != '"') error_at(at, "unterminated string literal");
        ++pos_;
      } else if (c == '[') {
        ++pos_;
        const bool negate = pos_ < src_.size() && src_[pos_] == '^';
        if (negate) ++pos_;
        std::vector<CharRange> r;
        while (pos_ < src_.size() && src_[pos_] != ']' && src_[pos_] != '\n') {
          const size_t range_at = pos_;
          const uint32_t lo = parse_char();
          uint32_t hi = lo;
          if (pos_ + 1 < src_.size() && src_[pos_] == '-' && src_[pos_ + 1] != ']') {
            ++pos_;
            hi = parse_char();
            if (hi < lo)
              error_at(range_at, "character range is backwards (U+{:X} > U+{:X})", lo, hi);
          }
          r.push_back({lo, hi});
        }
        if (pos_ >= src_.size() || src_[pos_] != ']') error_at(at, "unterminated character class");
        ++pos_;
        if (r.empty() && !negate) error_at(at, "empty character class");
        last = out.size();
        out.push_back(chars(std::move(r), negate, at));
      } else if (c == '.') {
        ++pos_;
        last = out.size();
        out.push_back(chars({{0, kMaxCodePoint}}, false, at));
      } else if (is_word_char(c)) {
        if (at_rule_start()) {
          if (nested) error_at(pos_, "expected ')' before the next rule");
          break;
        }
        const std::string_view name = parse_name();
        last = out.size();
        out.push_back(ref(symbol(name, at, false)));
      } else if (c == '(') {
        ++pos_;
        if (++nesting_ > kMaxNesting) error_at(at, "groups nested deeper than {}", kMaxNesting);
        const uint32_t h = helper(owner, at);
        parse_alternates(h, owner, true);
        --nesting_;
        skip_space();
        if (pos_ >= src_.size() || src_[pos_] != ')') error_at(at, "unclosed '('");
        ++pos_;
        last = out.size();
        out.push_back(ref(h));
      } else if (c == '*' || c == '+' || c == '?') {
        ++pos_;
        repeat(out, last, c == '+' ? 1 : 0, c == '?' ? 1 : kUnbounded, owner, at);
      } else if (c == '{') {
        ++pos_;
        const uint32_t lo = parse_count(at);
        uint32_t hi = lo;
        skip_inline_space();
        if (pos_ < src_.size() && src_[pos_] == ',') {
          ++pos_;
          skip_inline_space();
          hi = pos_ < src_.size() && src_[pos_] == '}' ? kUnbounded : parse_count(at);
        }
        skip_inline_space();
        if (pos_ >= src_.size() || src_[pos_] != '}') error_at(at, "expected '}}' to close '{{'");
        ++pos_;
        if (hi < lo) error_at(at, "bad repetition bounds {{{},{}}}: minimum above maximum", lo, hi);
        repeat(out, last, lo, hi, owner, at);
      } else {
        break;  // '|', ')' or something the caller reports
      }
    }
  }

  uint32_t parse_count(size_t at) {
    skip_inline_space();
    uint64_t v = 0;
    const size_t start = pos_;
    while (pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '9') {
      v = std::min<uint64_t>(v * 10 + static_cast<uint64_t>(src_[pos_] - '0'), kMaxRepeat + 1);
      ++pos_;
    }
    if (pos_ == start) error_at(at, "expected a number in the repetition bounds");
    if (v > kMaxRepeat) error_at(at, "repetition count is above the limit of {}", kMaxRepeat);
    return static_cast<uint32_t>(v);
  }

  // S{m,n} -> M(m) where M(k) ::= S M(k-1) (k copies still required) and M(1) ::= S O(n-m);
  // O(k) ::= S O(k-1) | and O(1) ::= S | (up to k more copies). S{m,} ends in O ::= S O | .
  // One rule per count keeps the positions of a counter uniform, so clamp_counter can map one
  // count to another; m < 2 stays inline (S?, S*, S+ and S{1,n} need no mandatory chain).
  void repeat(std::vector<GrammarElement>& out, size_t last, uint32_t min, uint32_t max,
              uint32_t owner, size_t at) {
    if (last == kNone || last >= out.size())
      error_at(at, "'{}' has nothing before it to repeat", src_[at]);
    const std::vector<GrammarElement> item(out.begin() + static_cast<ptrdiff_t>(last), out.end());
    out.resize(last);
    const uint64_t n_opt = max == kUnbounded ? 1 : max - min;
    const bool chain_min = min >= 2;
    grow(item.size() * (min + n_opt) + 3 * n_opt + (chain_min ? 2 * min : 0), at);
    uint32_t prev = 0;
    const uint32_t optional = max == kUnbounded || n_opt < 2 ? kNoChain : new_chain(item.size());
    for (uint64_t i = 0; i < n_opt; ++i) {
      const uint32_t h = helper(owner, at);
      std::vector<GrammarElement> body = item;
      if (max == kUnbounded) body.push_back(ref(h));
      if (i > 0) body.push_back(ref(prev));
      body.push_back({GrammarElement::kAlt});
      body.push_back({GrammarElement::kEnd});
      rules_[h] = std::move(body);
      link(h, optional);
      prev = h;
    }
    if (!chain_min) {
      for (uint32_t i = 0; i < min; ++i) out.insert(out.end(), item.begin(), item.end());
      if (n_opt > 0) out.push_back(ref(prev));
      return;
    }
    const uint32_t required = new_chain(item.size());
    bool tail = n_opt > 0;
    for (uint32_t i = 0; i < min; ++i) {
      const uint32_t h = helper(owner, at);
      std::vector<GrammarElement> body = item;
      if (tail) body.push_back(ref(prev));
      body.push_back({GrammarElement::kEnd});
      rules_[h] = std::move(body);
      link(h, required);
      prev = h;
      tail = true;
    }
    out.push_back(ref(prev));
  }

  uint32_t new_chain(size_t item_size) {
    chains_.emplace_back();
    chain_item_size_.push_back(item_size);
    return static_cast<uint32_t>(chains_.size() - 1);
  }
  // Rules join a chain in the order of their count left (1, 2, ...).
  void link(uint32_t rule, uint32_t chain) {
    if (chain == kNoChain) return;
    chains_[chain].push_back(rule);
    links_[rule] = {chain, static_cast<uint32_t>(chains_[chain].size())};
  }

  // Calls visit(rule, alternative elements) for every alternative of every rule.
  template <class F>
  void for_each_alt(F&& visit) const {
    for (uint32_t r = 0; r < rules_.size(); ++r) {
      const auto& e = rules_[r];
      size_t start = 0;
      for (size_t i = 0; i < e.size(); ++i) {
        if (Grammar::ends_sequence(e[i])) {
          visit(r, std::span<const GrammarElement>(e.data() + start, i - start));
          start = i + 1;
        }
      }
    }
  }

  // Least fixpoint "rule r has property P" where P holds for an alternative when every element
  // has it; `chars_ok` says whether a character element has it. Linear: counts per alternative.
  std::vector<bool> fixpoint(bool chars_ok) const {
    std::vector<bool> has(rules_.size(), false);
    std::vector<uint32_t> alt_rule, missing;
    std::vector<std::vector<uint32_t>> users(rules_.size());
    std::vector<uint32_t> ready;
    for_each_alt([&](uint32_t r, std::span<const GrammarElement> alt) {
      const auto id = static_cast<uint32_t>(alt_rule.size());
      uint32_t need = 0;
      bool dead = false;
      for (const auto& el : alt) {
        if (el.kind == GrammarElement::kRuleRef) {
          users[el.a].push_back(id);
          ++need;
        } else if (!chars_ok) {
          dead = true;
        }
      }
      alt_rule.push_back(r);
      missing.push_back(dead ? kUnbounded : need);
      if (need == 0 && !dead) ready.push_back(id);
    });
    while (!ready.empty()) {
      const uint32_t r = alt_rule[ready.back()];
      ready.pop_back();
      if (has[r]) continue;
      has[r] = true;
      for (const uint32_t a : users[r])
        if (missing[a] != kUnbounded && --missing[a] == 0) ready.push_back(a);
    }
    return has;
  }

  std::string display(uint32_t r) const { return names_[owner_[r]]; }

  // A rule reachable from itself through elements that can all match nothing would make the
  // matcher expand it forever.
  void check_left_recursion() const {
    const std::vector<bool> nullable = fixpoint(false);
    std::vector<std::vector<uint32_t>> edges(rules_.size());
    for_each_alt([&](uint32_t r, std::span<const GrammarElement> alt) {
      for (const auto& el : alt) {
        if (el.kind != GrammarElement::kRuleRef) break;
        edges[r].push_back(el.a);
        if (!nullable[el.a]) break;
      }
    });
    // Iterative depth-first search (helper chains can be thousands of rules deep).
    std::vector<uint8_t> color(rules_.size(), 0);  // 0 new, 1 on the path, 2 done
    std::vector<std::pair<uint32_t, size_t>> path;
    for (uint32_t s = 0; s < rules_.size(); ++s) {
      if (color[s]) continue;
      path.push_back({s, 0});
      color[s] = 1;
      while (!path.empty()) {
        auto& [r, next] = path.back();
        if (next == edges[r].size()) {
          color[r] = 2;
          path.pop_back();
          continue;
        }
        const uint32_t t = edges[r][next++];
        if (color[t] == 1) {
          std::string cycle;
          std::string prev;
          bool on = false;
          for (const auto& [p, unused] : path) {
            on = on || p == t;
            if (!on || display(p) == prev) continue;
            prev = display(p);
            cycle += (cycle.empty() ? "" : " -> ") + prev;
          }
          cycle += " -> " + display(t);
          error_at(def_at_[owner_[t]],
                   "rule '{}' is left-recursive ({}): it would recurse forever without reading "
                   "input; use repetition instead",
                   display(t), cycle);
        }
        if (color[t] == 0) {
          color[t] = 1;
          path.push_back({t, 0});
        }
      }
    }
  }

  void check_productive() const {
    const std::vector<bool> productive = fixpoint(true);
    for (uint32_t r = 0; r < rules_.size(); ++r)
      if (!productive[r])
        error_at(def_at_[owner_[r]],
                 "rule '{}' can never finish: every alternative recurses without end", display(r));
  }

  std::shared_ptr<const Grammar> finish(uint32_t root) {
    // Helper names: owner_N, skipping names the user took.
    std::unordered_map<uint32_t, uint32_t> counters;
    for (uint32_t r = 0; r < rules_.size(); ++r) {
      if (!names_[r].empty()) continue;
      std::string name;
      do {
        name = fmt::format("{}_{}", names_[owner_[r]], ++counters[owner_[r]]);
      } while (ids_.count(name));
      names_[r] = name;
    }
    std::shared_ptr<Grammar> g(new Grammar());
    g->root_ = root;
    g->names_ = std::move(names_);
    g->ranges_ = std::move(pool_);
    g->alt_offsets_.push_back(0);
    for (const auto& rule : rules_) {
      const auto start = static_cast<uint32_t>(g->elements_.size());
      g->rule_start_.push_back(start);
      g->alts_.push_back(start);
      for (size_t i = 0; i < rule.size(); ++i) {
        g->elements_.push_back(rule[i]);
        if (rule[i].kind == GrammarElement::kAlt) g->alts_.push_back(start + uint32_t(i) + 1);
      }
      g->alt_offsets_.push_back(static_cast<uint32_t>(g->alts_.size()));
    }
    g->class_starts_ = {0, 0x80, 0x800, 0x10000, 0xD800, 0xE000, kMaxCodePoint + 1};
    for (const CharRange r : g->ranges_)
      g->class_starts_.insert(g->class_starts_.end(), {r.lo, r.hi + 1});
    std::sort(g->class_starts_.begin(), g->class_starts_.end());
    g->class_starts_.erase(std::unique(g->class_starts_.begin(), g->class_starts_.end()),
                           g->class_starts_.end());
    // Counters whose item can match nothing may advance without input: not clamped.
    const std::vector<bool> nullable = fixpoint(false);
    for (uint32_t c = 0; c < chains_.size(); ++c) {
      const auto& body = rules_[chains_[c][0]];
      bool empty_item = true;
      for (size_t i = 0; i < chain_item_size_[c]; ++i)
        empty_item = empty_item && body[i].kind == GrammarElement::kRuleRef && nullable[body[i].a];
      if (empty_item)
        for (const uint32_t r : chains_[c]) links_[r] = {};
    }
    g->links_ = std::move(links_);
    g->chains_ = std::move(chains_);
    g->element_rule_.resize(g->elements_.size());
    for (uint32_t r = 0; r < g->rule_start_.size(); ++r) {
      const uint32_t end =
          r + 1 < g->rule_start_.size() ? g->rule_start_[r + 1] : uint32_t(g->elements_.size());
      std::fill(g->element_rule_.begin() + g->rule_start_[r], g->element_rule_.begin() + end, r);
    }
    std::vector<uint32_t> words = {root};
    for (const auto& e : g->elements_) words.insert(words.end(), {uint32_t(e.kind), e.a, e.n});
    for (const auto& r : g->ranges_) words.insert(words.end(), {r.lo, r.hi});
    words.insert(words.end(), g->rule_start_.begin(), g->rule_start_.end());
    g->fingerprint_ = XXH3_64bits(words.data(), words.size() * sizeof(uint32_t));
    return g;
  }

  std::string_view src_;
  size_t pos_ = 0;
  std::vector<std::vector<GrammarElement>> rules_;
  std::vector<std::string> names_;  // empty for helpers until finish()
  std::vector<uint32_t> owner_;     // the user rule a helper belongs to (itself for user rules)
  std::vector<size_t> def_at_, ref_at_;
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<CharRange> pool_;
  std::vector<Grammar::ChainLink> links_;      // per rule
  std::vector<std::vector<uint32_t>> chains_;  // rules by count left - 1
  std::vector<size_t> chain_item_size_;        // elements of the repeated item
  size_t total_ = 0;
  int nesting_ = 0;
};

std::shared_ptr<const Grammar> Grammar::parse(std::string_view gbnf) {
  return GrammarBuilder(gbnf).build();
}

bool Grammar::matches(const GrammarElement& e, uint32_t cp) const {
  const CharRange* r = &ranges_[e.a];
  // Classes are short; a binary search only pays off for long ones (complemented classes).
  if (e.n <= 8) {
    for (uint32_t i = 0; i < e.n; ++i)
      if (cp >= r[i].lo && cp <= r[i].hi) return true;
    return false;
  }
  const CharRange* it =
      std::upper_bound(r, r + e.n, cp, [](uint32_t v, const CharRange& x) { return v < x.lo; });
  return it != r && cp <= (it - 1)->hi;
}

uint32_t Grammar::char_class(uint32_t cp) const {
  const auto it = std::upper_bound(class_starts_.begin(), class_starts_.end(), cp);
  return static_cast<uint32_t>(it - class_starts_.begin() - 1);
}

bool Grammar::intersects(const GrammarElement& e, uint32_t lo, uint32_t hi) const {
  const CharRange* r = &ranges_[e.a];
  for (uint32_t i = 0; i < e.n; ++i)
    if (r[i].lo <= hi && r[i].hi >= lo) return true;
  return false;
}

uint32_t Grammar::clamp_counter(uint32_t pos, uint32_t horizon) const {
  const uint32_t rule = element_rule_[pos];
  const ChainLink l = links_[rule];
  // Rules with one count left differ in shape (no link to the next); a horizon of 2 or more
  // never maps to or from them.
  if (l.chain == kNoChain || horizon < 2 || l.left <= horizon) return pos;
  return rule_start_[chains_[l.chain][horizon - 1]] + (pos - rule_start_[rule]);
}

bool Grammar::same_as(const Grammar& o) const {
  auto eq = [](const GrammarElement& a, const GrammarElement& b) {
    return a.kind == b.kind && a.a == b.a && a.n == b.n;
  };
  return fingerprint_ == o.fingerprint_ && root_ == o.root_ && rule_start_ == o.rule_start_ &&
         std::equal(elements_.begin(), elements_.end(), o.elements_.begin(), o.elements_.end(),
                    eq) &&
         std::equal(ranges_.begin(), ranges_.end(), o.ranges_.begin(), o.ranges_.end(),
                    [](CharRange a, CharRange b) { return a.lo == b.lo && a.hi == b.hi; });
}

namespace {

void append_char(std::string& out, uint32_t cp) {
  if (cp == '\n') {
    out += "\\n";
  } else if (cp == '\t') {
    out += "\\t";
  } else if (cp == '\r') {
    out += "\\r";
  } else if (cp == '\\' || cp == '"' || cp == ']' || cp == '[' || cp == '-' || cp == '^') {
    out += '\\';
    out += static_cast<char>(cp);
  } else if (cp < 0x20 || cp == 0x7F) {
    out += fmt::format("\\x{:02X}", cp);
  } else if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += cp > 0xFFFF ? fmt::format("\\U{:08X}", cp) : fmt::format("\\u{:04X}", cp);
  }
}

}  // namespace

std::string Grammar::to_gbnf() const {
  std::string out;
  for (uint32_t r = 0; r < rule_count(); ++r) {
    out += names_[r] + " ::=";
    for (uint32_t i = rule_start_[r]; elements_[i].kind != GrammarElement::kEnd; ++i) {
      const GrammarElement& e = elements_[i];
      if (e.kind == GrammarElement::kAlt) {
        out += " |";
      } else if (e.kind == GrammarElement::kRuleRef) {
        out += " " + names_[e.a];
      } else {
        out += " [";
        for (const CharRange x : ranges(e)) {
          append_char(out, x.lo);
          if (x.hi != x.lo) {
            out += '-';
            append_char(out, x.hi);
          }
        }
        out += "]";
      }
    }
    out += "\n";
  }
  return out;
}

}  // namespace flashrt
