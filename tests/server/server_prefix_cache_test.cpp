// The prefix-capsule cache: a repeated long prompt restores instead of prefilling (asserted on the
// counters, never on time), a longer prompt restores the cached part and prefills the rest with
// the same tokens as a cold prefill (any token boundary of a hybrid model), chat turns reuse the
// conversation so far, and the cache stays within its byte budget.
#include <gtest/gtest.h>

#include "server_fixture.h"

namespace flashrt::testing {
namespace {

std::vector<int32_t> long_prompt_ids(const TestServer&, int n) {
  // Token ids of a long stretch of Python (tokenized once through the server's own endpoint is
  // not needed: any ids in the vocabulary make a prompt).
  std::vector<int32_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(100 + (i * 37) % 4000);
  return ids;
}

json completion(httplib::Client& c, const json& prompt, int max_tokens = 8) {
  auto r = post_json(c, "/v1/completions",
                     {{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}});
  EXPECT_EQ(r.status, 200) << r.raw;
  return r.body;
}

TEST(ServerPrefixCache, RepeatedLongPromptRestoresInsteadOfPrefilling) {
  TestServer srv;
  auto c = srv.client();
  const auto ids = long_prompt_ids(srv, 600);
  const json first = completion(*c, ids);
  EXPECT_EQ(first["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_EQ(metric(*c, "flashrt_prefix_cache_hits_total"), 0);
  EXPECT_EQ(metric(*c, "flashrt_prefix_cache_misses_total"), 1);
  const double prefilled = metric(*c, "flashrt_prefill_tokens_total");
  EXPECT_EQ(prefilled, 600);

  const json second = completion(*c, ids);
  EXPECT_EQ(metric(*c, "flashrt_prefix_cache_hits_total"), 1);
  EXPECT_EQ(second["usage"]["prompt_tokens_details"]["cached_tokens"], 600);
  EXPECT_EQ(metric(*c, "flashrt_prefill_tokens_total"), prefilled);  // nothing re-prefilled
  EXPECT_EQ(metric(*c, "flashrt_prefix_cache_reused_tokens_total"), 600);
  EXPECT_EQ(second["choices"][0]["text"], first["choices"][0]["text"]);
  EXPECT_GT(metric(*c, "flashrt_prefix_cache_bytes"), 0);
  EXPECT_GE(metric(*c, "flashrt_prefix_cache_entries"), 2);  // the prompt, and prompt + reply
}

TEST(ServerPrefixCache, LongerPromptRestoresTheCachedPartAndMatchesAColdPrefill) {
  auto nocache = test_server_options();
  nocache.scheduler.cache_bytes = 0;
  TestServer cold(nocache);
  TestServer srv;
  auto c = srv.client();
  auto cc = cold.client();
  auto ids = long_prompt_ids(srv, 300);
  completion(*c, ids);
  // Extend at a boundary that is not a multiple of anything in particular.
  for (int extra : {1, 37}) {
    auto longer = ids;
    for (int i = 0; i < extra; ++i) longer.push_back(500 + i);
    const json warm = completion(*c, longer, 12);
    EXPECT_GE(warm["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 300);
    const json ref = completion(*cc, longer, 12);
    EXPECT_EQ(ref["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    EXPECT_EQ(warm["choices"][0]["text"], ref["choices"][0]["text"]) << "extra=" << extra;
  }
}

TEST(ServerPrefixCache, ChatTurnsReuseTheConversationSoFar) {
  auto nocache = test_server_options();
  nocache.scheduler.cache_bytes = 0;
  TestServer cold(nocache);
  TestServer srv;
  auto c = srv.client();
  auto cc = cold.client();
  json messages = {{{"role", "system"}, {"content", "You are a careful Python programmer."}},
                   {{"role", "user"}, {"content", "def parse(line):"}}};
  auto chat = [](httplib::Client& cl, const json& m) {
    auto r = post_json(cl, "/v1/chat/completions",
                       {{"messages", m}, {"max_tokens", 10}, {"temperature", 0}});
    EXPECT_EQ(r.status, 200) << r.raw;
    return r.body;
  };
  const json t1 = chat(*c, messages);
  messages.push_back({{"role", "assistant"}, {"content", t1["choices"][0]["message"]["content"]}});
  messages.push_back({{"role", "user"}, {"content", "def render(table):"}});
  const json t2 = chat(*c, messages);
  EXPECT_EQ(metric(*c, "flashrt_prefix_cache_hits_total"), 1);
  // At least the system turn, which ends at a special token, is a token-exact prefix.
  EXPECT_GE(t2["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 8);
  EXPECT_EQ(t2["choices"][0]["message"]["content"],
            chat(*cc, messages)["choices"][0]["message"]["content"]);
  // The third turn finds the whole second-turn history cached.
  messages.push_back({{"role", "assistant"}, {"content", t2["choices"][0]["message"]["content"]}});
  messages.push_back({{"role", "user"}, {"content", "class Table:"}});
  const json t3 = chat(*c, messages);
  EXPECT_GT(t3["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(),
            t2["usage"]["prompt_tokens"].get<int>() - 10);
  EXPECT_EQ(t3["choices"][0]["message"]["content"],
            chat(*cc, messages)["choices"][0]["message"]["content"]);
}

TEST(ServerPrefixCache, StaysWithinItsByteBudgetEvictingLeastRecentlyUsed) {
  auto o = test_server_options();
  o.scheduler.cache_bytes = 1 << 20;  // a few boundaries of this model (~0.3 MB each)
  TestServer srv(o);
  auto c = srv.client();
  std::vector<std::vector<int32_t>> prompts;
  for (int p = 0; p < 6; ++p) {
    std::vector<int32_t> ids;
    for (int i = 0; i < 20; ++i) ids.push_back(200 + p * 50 + i);
    prompts.push_back(ids);
    completion(*c, ids, 1);
  }
  EXPECT_LE(metric(*c, "flashrt_prefix_cache_bytes"), 1 << 20);
  EXPECT_GT(metric(*c, "flashrt_prefix_cache_evictions_total"), 0);
  EXPECT_EQ(metric(*c, "flashrt_prefix_cache_max_bytes"), 1 << 20);
  // The most recent prompt is still cached; the first was evicted.
  EXPECT_EQ(completion(*c, prompts.back(), 1)["usage"]["prompt_tokens_details"]["cached_tokens"],
            20);
  EXPECT_EQ(completion(*c, prompts.front(), 1)["usage"]["prompt_tokens_details"]["cached_tokens"],
            0);
}

}  // namespace
}  // namespace flashrt::testing
