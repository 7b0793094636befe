// GBNF parsing (syntax, errors with line:column) and the matcher (literals, classes, repetition
// bounds, UTF-8 split across feeds, can_end/exhausted, canonical state).
#include "engine/grammar.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "engine/grammar_matcher.h"

namespace flashrt {
namespace {

GrammarMatcher matcher(const std::string& gbnf) {
  return GrammarMatcher(Grammar::parse(gbnf));
}

// Whether the whole string is a sentence of the grammar.
bool full(const std::string& gbnf, const std::string& text) {
  GrammarMatcher m = matcher(gbnf);
  return m.accept_bytes(text) && m.can_end();
}

// Whether the string is a prefix of some sentence.
bool prefix(const std::string& gbnf, const std::string& text) {
  GrammarMatcher m = matcher(gbnf);
  return m.accept_bytes(text);
}

std::string parse_error(const std::string& gbnf) {
  try {
    Grammar::parse(gbnf);
  } catch (const Error& e) {
    return e.what();
  }
  return "(parsed)";
}

TEST(Grammar, ParseErrorsNameLineColumnAndProblem) {
  const std::string cases[][2] = {
      {"root ::= foo", "line 1, column 10: undefined rule 'foo'"},
      {"a ::= \"x\"", "no rule named 'root'"},
      {"", "no rule named 'root'"},
      {"root ::= \"abc", "line 1, column 10: unterminated string literal"},
      {"root ::= [a-z", "line 1, column 10: unterminated character class"},
      {"root ::= \"a\"{3,2}", "line 1, column 13: bad repetition bounds {3,2}"},
      {"root ::= \"a\"{2", "expected '}' to close '{'"},
      {"root ::= \"a\"{99999}", "above the limit"},
      {"root ::= *", "'*' has nothing before it to repeat"},
      {"root ::= ( \"a\" ", "unclosed '('"},
      {"root ::= \"a\" )", "line 1, column 14: unexpected ')'"},
      {"root ::= [z-a]", "backwards"},
      {"root ::= []", "empty character class"},
      {"root ::= \"\\q\"", "unknown escape '\\q'"},
      {"root ::= \"\\uD800\"", "not a Unicode scalar value"},
      {"root ::= \"x\"\nroot ::= \"y\"", "line 2, column 1: rule 'root' is defined twice"},
      {"root ::= expr\nexpr ::= expr \"+\" term | term\nterm ::= [0-9]",
       "line 2, column 1: rule 'expr' is left-recursive (expr -> expr)"},
      {"root ::= a\na ::= b \"x\"\nb ::= c? a\nc ::= \"c\"", "left-recursive (a -> b -> a)"},
      {"root ::= \"x\" root", "rule 'root' can never finish"},
      {"root = \"x\"", "expected '::=' after rule name 'root'"},
      {"root ::= \"a\"\n\n  bad", "line 3, column 3: undefined rule 'bad'"},
  };
  for (const auto& [gbnf, want] : cases) {
    const std::string got = parse_error(gbnf);
    EXPECT_NE(got.find(want), std::string::npos) << gbnf << "\n  got: " << got;
  }
}

TEST(Grammar, SyntaxCoversLlamaCppForms) {
  const std::string g = R"(# a comment
root   ::= "{" ws pair ("," ws pair)* "}"   # trailing comment
pair   ::= key ws ":" ws value
key    ::= [a-z_] [a-z0-9_-]*
value  ::= "\"" [^"\\]* "\"" | [0-9]{1,3} | "t" "rue"? | any-char
any-char ::= "<" . ">"
ws     ::= [ \t\n]{0,2}
)";
  EXPECT_TRUE(full(g, "{a:1}"));
  EXPECT_TRUE(full(g, "{a: \"x y\",\n b_2 : 123,c:t,d:true,e:<\xC3\xA9>}"));
  EXPECT_FALSE(full(g, "{a:1234}"));
  EXPECT_FALSE(full(g, "{a:   1}"));  // ws is at most two characters
  EXPECT_FALSE(full(g, "{A:1}"));
  EXPECT_TRUE(prefix(g, "{a: \"unfinished"));
  EXPECT_FALSE(prefix(g, "}"));
  // Multi-line rules: a rule runs until the next `name ::=`.
  EXPECT_TRUE(full("root ::= \"a\"\n  \"b\"\n  | \"c\"\nx ::= \"y\"", "ab"));
  EXPECT_TRUE(full("root ::= \"a\"\n  \"b\"\n  | \"c\"\nx ::= \"y\"", "c"));
  // Escapes in literals and classes.
  EXPECT_TRUE(
      full(R"(root ::= "\x41\u00e9\U0001F600\n\t\"\\")", "A\xC3\xA9\xF0\x9F\x98\x80\n\t\"\\"));
  EXPECT_TRUE(full(R"(root ::= [\]\-\\]+)", "]-\\"));
  EXPECT_TRUE(full(R"(root ::= [^\x00-\x40]+)", "AZ\xE2\x82\xAC"));
  EXPECT_FALSE(full(R"(root ::= [^\x00-\x40]+)", "@"));
  // Postfix on a whole literal, on groups, nested.
  EXPECT_TRUE(full(R"(root ::= "ab"+)", "ababab"));
  EXPECT_FALSE(full(R"(root ::= "ab"+)", "aba"));
  EXPECT_TRUE(full(R"g(root ::= ("a" | "b" "c")* "d")g", "abcbcad"));
  EXPECT_TRUE(full(R"(root ::= "x"?)", ""));
  EXPECT_TRUE(full(R"(root ::= "x"{0})", ""));
  EXPECT_FALSE(full(R"(root ::= "x"{0})", "x"));
}

TEST(Grammar, RepetitionBounds) {
  for (int n = 0; n <= 6; ++n) {
    const std::string s(static_cast<size_t>(n), 'a');
    EXPECT_EQ(full(R"(root ::= "a"{2,4})", s), n >= 2 && n <= 4) << n;
    EXPECT_EQ(full(R"(root ::= "a"{3})", s), n == 3) << n;
    EXPECT_EQ(full(R"(root ::= "a"{2,})", s), n >= 2) << n;
    EXPECT_EQ(full(R"(root ::= "a"{0,2} "b")", s + "b"), n <= 2) << n;
    EXPECT_EQ(full(R"(root ::= "a"+)", s), n >= 1) << n;
    EXPECT_EQ(full(R"(root ::= "a"*)", s), true) << n;
  }
  // Bounds with spaces, and a repeated group with its own repetition.
  EXPECT_TRUE(full(R"g(root ::= ("x" [0-9]{1, 2}){ 2 , 3 })g", "x1x22"));
  EXPECT_FALSE(full(R"g(root ::= ("x" [0-9]{1, 2}){ 2 , 3 })g", "x1"));
}

TEST(Grammar, LongCountersAndTheirHorizonView) {
  // Counts above the horizon, mandatory and optional, single- and multi-character items.
  for (int n = 0; n <= 45; ++n) {
    const std::string a(static_cast<size_t>(n), 'a');
    EXPECT_EQ(full(R"(root ::= "a"{30})", a), n == 30) << n;
    EXPECT_EQ(full(R"(root ::= "a"{5,40} "b")", a + "b"), n >= 5 && n <= 40) << n;
    EXPECT_EQ(full(R"(root ::= "a"{20,})", a), n >= 20) << n;
    std::string ab;
    for (int i = 0; i < n; ++i) ab += i % 2 ? "ab" : "c";
    EXPECT_EQ(full(R"g(root ::= ("ab" | "c"){3,25})g", ab), n >= 3 && n <= 25) << n;
  }
  // The view of a state accepts the same inputs up to the horizon: compared on every input of up
  // to 5 bytes over {a, b}, from every position of nested counters.
  const auto g = Grammar::parse(R"g(root ::= ("[" [a]{2,20} "]"){0,12} "b"{9})g");
  const uint32_t horizon = 5;
  std::vector<std::string> inputs = {""};
  for (size_t i = 0; i < inputs.size() && inputs[i].size() < horizon; ++i)
    for (const char c : std::string("a[]b")) inputs.push_back(inputs[i] + c);
  int clamped = 0;
  std::string path;
  for (int item = 0; item < 7; ++item)
    path += "[" + std::string(static_cast<size_t>(item % 4 == 0 ? 19 : 3), 'a') + "]";
  path += std::string(9, 'b');
  for (size_t cut = 0; cut <= path.size(); ++cut) {
    GrammarMatcher m(g);
    ASSERT_TRUE(m.accept_bytes(path.substr(0, cut))) << cut;
    const GrammarMatcher::State view = GrammarMatcher::horizon_view(*g, m.state(), horizon);
    clamped += view == m.state() ? 0 : 1;
    for (const std::string& in : inputs) {
      GrammarMatcher::State a = m.state(), b = view;
      bool ok_a = true, ok_b = true;
      for (const char c : in) {
        ok_a = ok_a && GrammarMatcher::step(*g, a, static_cast<uint8_t>(c), &a);
        ok_b = ok_b && GrammarMatcher::step(*g, b, static_cast<uint8_t>(c), &b);
      }
      ASSERT_EQ(ok_a, ok_b) << "after " << path.substr(0, cut) << " then " << in;
    }
  }
  EXPECT_GT(clamped, 20);  // most positions of the long counters have a smaller view
}

TEST(GrammarMatcher, Utf8SplitAcrossFeeds) {
  const std::string g = "root ::= \"\xE2\x82\xAC\" [\\u4e00-\\u9fff]+ \"\xF0\x9F\x98\x80\"";
  const std::string text = "\xE2\x82\xAC\xE4\xB8\xAD\xE6\x96\x87\xF0\x9F\x98\x80";
  // Every split of the text into two feeds, and byte by byte.
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    GrammarMatcher m = matcher(g);
    ASSERT_TRUE(m.accept_bytes(text.substr(0, cut))) << cut;
    EXPECT_EQ(m.can_end(), cut == text.size());
    ASSERT_TRUE(m.accept_bytes(text.substr(cut))) << cut;
    EXPECT_TRUE(m.can_end());
    EXPECT_TRUE(m.exhausted());
  }
  GrammarMatcher m = matcher(g);
  ASSERT_TRUE(m.accept_bytes("\xE2\x82"));
  EXPECT_FALSE(m.can_end());             // half a character pending
  EXPECT_FALSE(m.accept_bytes("\x81"));  // U+2081, not the euro sign
  EXPECT_FALSE(m.accept_bytes("A"));     // not a continuation byte
  EXPECT_TRUE(m.accept_bytes("\xAC"));
  // A lead byte is refused when no character it starts can follow: after the euro sign come CJK
  // ideographs, which are three bytes starting E4..E9.
  EXPECT_FALSE(GrammarMatcher(m).accept_bytes("\xC3"));
  EXPECT_FALSE(GrammarMatcher(m).accept_bytes("\xEA"));
  EXPECT_TRUE(GrammarMatcher(m).accept_bytes("\xE4"));
  // Invalid UTF-8 is refused even where `.` takes anything: overlong, surrogates, past U+10FFFF,
  // a stray continuation byte.
  for (const char* bad : {"\xC0\x80", "\xE0\x80\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\x80",
                          "\xFF", "\xC3\xC3"}) {
    EXPECT_FALSE(prefix("root ::= .*", bad)) << bad;
  }
  EXPECT_TRUE(full("root ::= .*", "a\xC3\xA9\xED\x9F\xBF\xF4\x8F\xBF\xBF"));
}

TEST(GrammarMatcher, RejectLeavesStateUnchanged) {
  GrammarMatcher m = matcher(R"(root ::= "hello" " world"?)");
  ASSERT_TRUE(m.accept_bytes("hel"));
  const GrammarMatcher before = m;
  EXPECT_FALSE(m.accept_bytes("lx"));  // the first byte fits, the second does not
  EXPECT_TRUE(m == before);
  EXPECT_EQ(m.hash(), before.hash());
  EXPECT_TRUE(m.accept_bytes("lo"));
  EXPECT_TRUE(m.can_end());
  EXPECT_FALSE(m.exhausted());
  EXPECT_TRUE(m.accept_bytes(" world"));
  EXPECT_TRUE(m.exhausted());
  EXPECT_FALSE(m.accept_bytes("!"));
}

TEST(GrammarMatcher, CanonicalStateForCaching) {
  // Different paths to the same parse state compare and hash equal; here each item is "a" or "b"
  // and only the count of items left matters.
  const auto g = Grammar::parse(R"g(root ::= ("a" | "b"){3})g");
  GrammarMatcher x(g), y(g);
  ASSERT_TRUE(x.accept_bytes("ab"));
  ASSERT_TRUE(y.accept_bytes("ba"));
  EXPECT_TRUE(x == y);
  EXPECT_EQ(x.hash(), y.hash());
  ASSERT_TRUE(y.accept_bytes("a"));
  EXPECT_FALSE(x == y);
  // Separately compiled equal grammars: equal matchers.
  GrammarMatcher z(Grammar::parse(R"g(root ::= ("a" | "b"){3})g"));
  ASSERT_TRUE(z.accept_bytes("aa"));
  EXPECT_TRUE(x == z);
  EXPECT_TRUE(g->same_as(z.grammar()));
}

TEST(GrammarMatcher, AmbiguousAndNullableGrammars) {
  // Ambiguity stays bounded: the stacks are deduplicated after every character.
  EXPECT_TRUE(full(R"(root ::= [a]* [a]* [a]* "b")", std::string(200, 'a') + "b"));
  EXPECT_TRUE(full(R"(root ::= x x x
x ::= "" | "a" | "aa")",
                   "aaaa"));
  // Right recursion nests stacks as deep as the input.
  const std::string parens = R"g(root ::= "(" root ")" | "")g";
  EXPECT_TRUE(full(parens, std::string(100, '(') + std::string(100, ')')));
  EXPECT_FALSE(full(parens, "(()"));
  EXPECT_TRUE(prefix(parens, "(()"));
}

TEST(Grammar, ToGbnfReparsesToTheSameLanguage) {
  const std::string text = R"(root ::= "a"{1,3} [^x] (b | "c")*
b ::= "\u00e9")";
  const auto g = Grammar::parse(text);
  const std::string dumped = g->to_gbnf();
  for (const char* s : {"ay",
                        "aaayc\xC3\xA9"
                        "c",
                        "aaaay", "ax", "a", "ayd"})
    EXPECT_EQ(full(text, s), full(dumped, s)) << s << "\n" << dumped;
  EXPECT_TRUE(g->same_as(*Grammar::parse(text)));
  EXPECT_EQ(g->fingerprint(), Grammar::parse(text)->fingerprint());
  EXPECT_NE(g->fingerprint(), Grammar::parse("root ::= \"a\"")->fingerprint());
}

}  // namespace
}  // namespace flashrt
