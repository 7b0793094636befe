// The scheduler's parts that need no model: stop strings on streamed text, and the prefix cache's
// longest-prefix lookup and LRU budget.
#include <gtest/gtest.h>

#include "engine/prefix_cache.h"
#include "engine/stop_matcher.h"

namespace flashrt::testing {
namespace {

std::string feed(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += m.push(p);
  return out;
}

TEST(EngineStopMatcher, HoldsBackPartialStopsAndCutsAtTheFirstMatch) {
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

TEST(EnginePrefixCache, FindsTheLongestCachedPrefix) {
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

TEST(EnginePrefixCache, EvictsLeastRecentlyUsedWithinBudget) {
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

}  // namespace
}  // namespace flashrt::testing
