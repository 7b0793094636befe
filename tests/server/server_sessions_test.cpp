// The sessions API: snapshot/restore and fork continue token-identically (greedy and seeded
// sampling), interrupt stops within one token, more sessions than slots are suspended and resumed
// exactly, and concurrent generations sharing one slot (preemption) give the same tokens as alone.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "server_fixture.h"

namespace flashrt::testing {
namespace {

std::string create(httplib::Client& c, const json& body) {
  auto r = post_json(c, "/v1/sessions", body);
  EXPECT_EQ(r.status, 200) << r.raw;
  return r.body.value("id", "");
}

std::vector<int32_t> generate(httplib::Client& c, const std::string& id, json body) {
  auto r = post_json(c, "/v1/sessions/" + id + "/generate", body);
  EXPECT_EQ(r.status, 200) << r.raw;
  return r.body.value("token_ids", std::vector<int32_t>{});
}

const json kGreedy = {{"max_tokens", 16}, {"temperature", 0}, {"ignore_eos", true}};

TEST(ServerSessions, SnapshotRestoreContinuesTokenIdentically) {
  TestServer srv;
  auto c = srv.client();
  const std::string id = create(*c, {{"system", "You write Python."}, {"text", "import os\n"}});
  ASSERT_FALSE(id.empty());
  generate(*c, id, kGreedy);  // the snapshot is taken mid-generation (a token is pending)
  auto snap = post_json(*c, "/v1/sessions/" + id + "/snapshot", json::object());
  ASSERT_EQ(snap.status, 200) << snap.raw;
  const std::string cap = snap.body["id"];
  EXPECT_GT(snap.body["bytes"].get<int64_t>(), 0);
  const auto after = generate(*c, id, kGreedy);
  ASSERT_EQ(after.size(), 16u);

  auto r = post_json(*c, "/v1/sessions/" + id + "/restore", {{"capsule", cap}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(generate(*c, id, kGreedy), after);

  // The same boundary restored into another session continues the same way too.
  const std::string other = create(*c, json::object());
  ASSERT_EQ(post_json(*c, "/v1/sessions/" + other + "/restore", {{"capsule", cap}}).status, 200);
  EXPECT_EQ(generate(*c, other, kGreedy), after);

  // Uninterrupted: one 32-token generation equals 16 + 16 with the break in between.
  const std::string whole = create(*c, {{"system", "You write Python."}, {"text", "import os\n"}});
  auto all = generate(*c, whole, {{"max_tokens", 32}, {"temperature", 0}, {"ignore_eos", true}});
  const std::string again = create(*c, {{"system", "You write Python."}, {"text", "import os\n"}});
  auto first = generate(*c, again, kGreedy);
  auto second = generate(*c, again, kGreedy);
  first.insert(first.end(), second.begin(), second.end());
  EXPECT_EQ(all, first);
}

TEST(ServerSessions, SampledDecodingContinuesIdenticallyAfterRestore) {
  TestServer srv;
  auto c = srv.client();
  const std::string id = create(*c, {{"text", "class Stack:\n"}, {"seed", 7}});
  const json sampled = {{"max_tokens", 12}, {"temperature", 1.0}, {"ignore_eos", true}};
  generate(*c, id, sampled);
  const std::string cap =
      post_json(*c, "/v1/sessions/" + id + "/snapshot", json::object()).body["id"];
  const auto a = generate(*c, id, sampled);  // no seed: the RNG continues from the capsule
  ASSERT_EQ(post_json(*c, "/v1/sessions/" + id + "/restore", {{"capsule", cap}}).status, 200);
  EXPECT_EQ(generate(*c, id, sampled), a);
}

TEST(ServerSessions, ForkEvolvesIndependentlyFromTheSameBoundary) {
  TestServer srv;
  auto c = srv.client();
  const std::string id = create(*c, {{"text", "def quicksort(xs):\n"}});
  generate(*c, id, kGreedy);
  auto f = post_json(*c, "/v1/sessions/" + id + "/fork", json::object());
  ASSERT_EQ(f.status, 200) << f.raw;
  const std::string child = f.body["id"];
  EXPECT_EQ(f.body["parent"], id);
  EXPECT_EQ(f.body["tokens"], get(*c, "/v1/sessions/" + id).body["tokens"]);
  const auto parent_next = generate(*c, id, kGreedy);
  EXPECT_EQ(generate(*c, child, kGreedy), parent_next);
  // Feeding the child something else leaves the parent alone.
  ASSERT_EQ(post_json(*c, "/v1/sessions/" + child + "/append", {{"text", "\n\n# other\n"}}).status,
            200);
  EXPECT_NE(get(*c, "/v1/sessions/" + child).body["tokens"],
            get(*c, "/v1/sessions/" + id).body["tokens"]);
  EXPECT_EQ(del(*c, "/v1/sessions/" + child).status, 200);
  EXPECT_EQ(get(*c, "/v1/sessions/" + child).status, 404);
  EXPECT_EQ(get(*c, "/v1/sessions/" + id).status, 200);
}

TEST(ServerSessions, AppendMessagesIdsAndStreamingGenerate) {
  TestServer srv;
  auto c = srv.client();
  const std::string id = create(*c, {{"system", "You write Python."}});
  const int64_t t0 = get(*c, "/v1/sessions/" + id).body["tokens"];
  EXPECT_GT(t0, 3);
  auto a = post_json(*c, "/v1/sessions/" + id + "/append",
                     {{"messages", {{{"role", "user"}, {"content", "def add(a, b):"}}}},
                      {"add_generation_prompt", true}});
  ASSERT_EQ(a.status, 200) << a.raw;
  EXPECT_EQ(a.body["tokens"].get<int64_t>(), t0 + a.body["appended"].get<int64_t>());
  auto b = post_json(*c, "/v1/sessions/" + id + "/append", {{"ids", {13, 14}}});
  ASSERT_EQ(b.status, 200) << b.raw;
  EXPECT_EQ(b.body["tokens"].get<int64_t>(), a.body["tokens"].get<int64_t>() + 2);

  const std::string cap =
      post_json(*c, "/v1/sessions/" + id + "/snapshot", json::object()).body["id"];
  const auto plain = generate(*c, id, kGreedy);
  ASSERT_EQ(post_json(*c, "/v1/sessions/" + id + "/restore", {{"capsule", cap}}).status, 200);
  json body = kGreedy;
  body["stream"] = true;
  auto s = post_json(*c, "/v1/sessions/" + id + "/generate", body);
  ASSERT_EQ(s.status, 200) << s.raw;
  std::vector<int32_t> ids;
  std::string finish;
  for (const auto& ev : sse_events(s.raw)) {
    for (const auto& x : ev["token_ids"]) ids.push_back(x);
    if (!ev["finish_reason"].is_null()) finish = ev["finish_reason"];
  }
  EXPECT_EQ(ids, plain);
  EXPECT_EQ(finish, "length");
}

TEST(ServerSessions, InterruptStopsWithinOneToken) {
  TestServer srv;
  auto c = srv.client();
  const std::string id = create(*c, {{"text", "import sys\n"}});
  std::atomic<int> received{0};
  std::vector<int32_t> streamed;
  std::string finish;
  std::thread reader([&] {
    auto rc = srv.client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/sessions/" + id + "/generate";
    req.body =
        json{{"max_tokens", 100000}, {"temperature", 0}, {"ignore_eos", true}, {"stream", true}}
            .dump();
    req.set_header("Content-Type", "application/json");
    std::string buf;
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      buf.append(data, n);
      size_t end;
      while ((end = buf.find("\n\n")) != std::string::npos) {
        const std::string ev = buf.substr(0, end);
        buf.erase(0, end + 2);
        if (ev.rfind("data: {", 0) != 0) continue;
        const json j = json::parse(ev.substr(6));
        for (const auto& x : j["token_ids"]) streamed.push_back(x);
        if (!j["finish_reason"].is_null()) finish = j["finish_reason"];
        received = static_cast<int>(streamed.size());
      }
      return true;
    };
    rc->send(req);
  });
  const auto t0 = std::chrono::steady_clock::now();
  while (received < 5 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_GE(received, 5) << "the stream did not start";
  auto r = post_json(*c, "/v1/sessions/" + id + "/interrupt", json::object());
  reader.join();  // the interrupt ends the stream either way
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_TRUE(r.body["interrupted"].get<bool>());
  const int64_t at = r.body["tokens_at_interrupt"], total = r.body["tokens_generated"];
  EXPECT_LE(total - at, 1) << r.raw;
  EXPECT_EQ(static_cast<int64_t>(streamed.size()), total);
  EXPECT_EQ(finish, "cancelled");
  // The session keeps what it generated and goes on from there.
  EXPECT_EQ(generate(*c, id, kGreedy).size(), 16u);
  // Nothing running: an interrupt is a no-op.
  EXPECT_FALSE(post_json(*c, "/v1/sessions/" + id + "/interrupt", json::object())
                   .body["interrupted"]
                   .get<bool>());
}

TEST(ServerSessions, MoreSessionsThanSlotsAreSuspendedAndResumedExactly) {
  auto o = test_server_options();
  o.scheduler.slots = 1;
  TestServer srv(o);
  auto c = srv.client();
  const std::vector<std::string> prompts = {"def a():\n", "class B:\n", "import json\n"};
  // References: each prompt alone, greedy, 8 + 8 tokens.
  std::vector<std::vector<int32_t>> ref;
  for (const auto& p : prompts) {
    const std::string id = create(*c, {{"text", p}});
    auto x = generate(*c, id, {{"max_tokens", 16}, {"temperature", 0}, {"ignore_eos", true}});
    ref.push_back(x);
    del(*c, "/v1/sessions/" + id);
  }
  std::vector<std::string> ids;
  for (const auto& p : prompts) ids.push_back(create(*c, {{"text", p}}));
  const json eight = {{"max_tokens", 8}, {"temperature", 0}, {"ignore_eos", true}};
  std::vector<std::vector<int32_t>> got(ids.size());
  for (int round = 0; round < 2; ++round)
    for (size_t i = 0; i < ids.size(); ++i) {
      auto x = generate(*c, ids[i], eight);
      got[i].insert(got[i].end(), x.begin(), x.end());
    }
  EXPECT_EQ(got, ref);
  EXPECT_GE(metric(*c, "flashrt_session_suspensions_total"), 5);
  EXPECT_GE(metric(*c, "flashrt_session_resumptions_total"), 4);
  auto h = get(*c, "/health");
  EXPECT_EQ(h.body["sessions_suspended"], 2);
  int suspended = 0;
  const auto list = get(*c, "/v1/sessions");
  for (const auto& s : list.body["data"]) suspended += s["state"] == "suspended";
  EXPECT_EQ(suspended, 2) << list.raw;
}

TEST(ServerSessions, ConcurrentGenerationsShareOneSlotByPreemption) {
  auto o = test_server_options();
  o.scheduler.slots = 1;
  o.scheduler.preempt_after = 3;  // swap often
  TestServer srv(o);
  auto c = srv.client();
  const std::vector<std::string> prompts = {"def a():\n", "class B:\n", "import json\n"};
  const json body = {{"max_tokens", 20}, {"temperature", 0}, {"ignore_eos", true}};
  std::vector<std::vector<int32_t>> ref;
  for (const auto& p : prompts) {
    const std::string id = create(*c, {{"text", p}});
    ref.push_back(generate(*c, id, body));
  }
  std::vector<std::string> ids;
  for (const auto& p : prompts) ids.push_back(create(*c, {{"text", p}}));
  std::vector<std::vector<int32_t>> got(ids.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ids.size(); ++i)
    threads.emplace_back([&, i] {
      auto ci = srv.client();
      got[i] = generate(*ci, ids[i], body);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(got, ref);
  EXPECT_GT(metric(*c, "flashrt_preemptions_total"), 0);
}

}  // namespace
}  // namespace flashrt::testing
