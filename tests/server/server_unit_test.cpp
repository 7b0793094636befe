// Pieces of the server that need no HTTP: stop strings on streamed text, the prefix cache's
// longest-prefix lookup and LRU budget, request parsing.
#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/prefix_cache.h"
#include "server/requests.h"
#include "server/stop_matcher.h"

namespace flashrt::server {
namespace {

std::string feed(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += m.push(p);
  return out;
}

TEST(ServerUnit, StopMatcherHoldsBackPartialStopsAndCutsAtTheFirstMatch) {
  StopMatcher m({"###", "\n\n"});
  EXPECT_EQ(m.push("abc#"), "abc");  // '#' might start "###"
  EXPECT_EQ(m.push("#x"), "##x");    // it did not
  EXPECT_EQ(m.push("y\n"), "y");
  EXPECT_EQ(m.push("\nz"), "");  // "\n\n" matched: nothing after it
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("more"), "");
  EXPECT_EQ(m.flush(), "");

  StopMatcher n({"END"});
  EXPECT_EQ(feed(n, {"the E", "N", "d"}), "the ENd");
  EXPECT_FALSE(n.stopped());
  StopMatcher k({"END"});
  EXPECT_EQ(feed(k, {"the E", "N"}), "the ");
  EXPECT_EQ(k.flush(), "EN");  // held text comes out at the end
  StopMatcher none({});
  EXPECT_EQ(none.push("anything"), "anything");
  // Multi-byte characters are never split: the cut is where a stop string starts.
  StopMatcher u({"é!"});
  EXPECT_EQ(feed(u, {"caf", "é", "!"}), "caf");
}

Capsule fake_capsule(uint64_t bytes, int64_t pos) {
  Capsule c;
  c.pos = pos;
  c.entries.push_back(CapsuleEntry{"x", DType::U8, RegionKind::kFixed, {1}, bytes, 0, 0});
  return c;
}

TEST(ServerUnit, PrefixCacheFindsTheLongestCachedPrefix) {
  PrefixCache cache(1 << 20);
  EXPECT_FALSE(cache.lookup(std::vector<int32_t>{1, 2, 3}));
  cache.insert(std::vector<int32_t>{1, 2}, fake_capsule(100, 2));
  cache.insert(std::vector<int32_t>{1, 2, 3, 4}, fake_capsule(100, 4));
  cache.insert(std::vector<int32_t>{9}, fake_capsule(100, 1));
  auto h = cache.lookup(std::vector<int32_t>{1, 2, 3, 4, 5});
  ASSERT_TRUE(h);
  EXPECT_EQ(h->tokens, 4u);
  h = cache.lookup(std::vector<int32_t>{1, 2, 3, 7});
  ASSERT_TRUE(h);
  EXPECT_EQ(h->tokens, 2u);
  EXPECT_FALSE(cache.lookup(std::vector<int32_t>{2, 1}));
  EXPECT_EQ(cache.lookup(std::vector<int32_t>{1, 2})->tokens, 2u);  // a whole-prompt hit
  EXPECT_TRUE(cache.contains(std::vector<int32_t>{9}));
  EXPECT_EQ(cache.entries(), 3u);
}

TEST(ServerUnit, PrefixCacheEvictsLeastRecentlyUsedWithinBudget) {
  PrefixCache cache(1000);
  cache.insert(std::vector<int32_t>{1}, fake_capsule(396, 1));  // 400 bytes with its key
  cache.insert(std::vector<int32_t>{2}, fake_capsule(396, 1));
  cache.lookup(std::vector<int32_t>{1});  // 1 is now more recent than 2
  cache.insert(std::vector<int32_t>{3}, fake_capsule(396, 1));
  EXPECT_LE(cache.bytes(), 1000u);
  EXPECT_TRUE(cache.contains(std::vector<int32_t>{1}));
  EXPECT_FALSE(cache.contains(std::vector<int32_t>{2}));
  EXPECT_TRUE(cache.contains(std::vector<int32_t>{3}));
  EXPECT_EQ(cache.evictions(), 1u);
  EXPECT_FALSE(cache.insert(std::vector<int32_t>{4}, fake_capsule(5000, 1)));  // over budget
  cache.clear();
  EXPECT_EQ(cache.bytes(), 0u);
}

int status_of(const std::function<void()>& f, std::string* param = nullptr) {
  try {
    f();
  } catch (const ApiError& e) {
    if (param) *param = e.param();
    return e.status();
  }
  return 200;
}

TEST(ServerUnit, RequestParsingNamesTheBadField) {
  using nlohmann::json;
  std::string param;
  EXPECT_EQ(status_of([] { parse_body("{"); }), 400);
  EXPECT_EQ(status_of([] { parse_body("[1]"); }), 400);
  EXPECT_EQ(status_of([] { parse_body(std::string(100, '[') + std::string(100, ']')); }), 400);
  EXPECT_EQ(
      status_of([] {
        parse_body(R"({"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})");
      }),
      200);  // brackets inside strings are not nesting
  EXPECT_EQ(status_of(
                [&] {
                  parse_completion_request(json{{"prompt", "x"}, {"max_tokens", "9"}}, 10);
                },
                &param),
            400);
  EXPECT_EQ(param, "max_tokens");
  EXPECT_EQ(status_of(
                [&] {
                  parse_completion_request(json{{"prompt", {1, 99}}}, 10);
                },
                &param),
            400);
  EXPECT_EQ(param, "prompt[1]");
  EXPECT_EQ(status_of(
                [&] {
                  parse_completion_request(json{{"prompt", "x"}, {"n", 2}}, 10);
                },
                &param),
            400);
  EXPECT_EQ(param, "n");
  EXPECT_EQ(status_of(
                [&] {
                  parse_chat_request(json{{"messages", {{{"role", "robot"}}}}}, 10);
                },
                &param),
            400);
  EXPECT_EQ(param, "messages[0].role");
  EXPECT_EQ(status_of(
                [&] {
                  parse_chat_request(json{{"messages", json::array()}}, 10);
                },
                &param),
            400);
  const auto ok = parse_chat_request(
      json{
          {"messages",
           {{{"role", "user"},
             {"content", {{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}}}}}},
          {"temperature", 0},
          {"stop", "x"},
          {"logit_bias", {{"3", -100}}},
          {"max_tokens", nullptr}},
      10);
  EXPECT_EQ(ok.messages[0].content, "ab");
  EXPECT_TRUE(ok.s.params.is_greedy());
  EXPECT_EQ(ok.s.stop, std::vector<std::string>{"x"});
  EXPECT_FALSE(ok.s.max_tokens);
  ASSERT_EQ(ok.s.params.logit_bias.size(), 1u);
}

}  // namespace
}  // namespace flashrt::server
