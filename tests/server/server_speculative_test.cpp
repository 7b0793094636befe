// Speculative decoding per request over HTTP ("speculative": "ngram" | "mtp" | {"type",
// "draft_max"}): greedy text is the plain request's (completions, chat, streamed, sessions), usage
// reports the drafts, and what cannot run is refused with a 400 before anything streams.
#include <gtest/gtest.h>

#include "reference.h"
#include "server_fixture.h"

namespace flashrt::testing {
namespace {

const char* kPrompt = "import os\nimport sys\n\n\ndef main():\n";

server::ServerOptions with_mtp(bool mtp) {
  server::ServerOptions o = test_server_options();
  o.scheduler.session.mtp = mtp;
  return o;
}

std::string mtp_model() {
  return trained_model_dir("pycoder-hybrid-12m-mtp");
}

json completion(const json& speculative, bool stream = false) {
  json b = {{"prompt", kPrompt}, {"max_tokens", 48}, {"temperature", 0}, {"ignore_eos", true}};
  if (!speculative.is_null()) b["speculative"] = speculative;
  if (stream) {
    b["stream"] = true;
    b["stream_options"] = {{"include_usage", true}};
  }
  return b;
}

TEST(ServerSpeculative, GreedyTextIsThePlainRequestsForEveryDrafter) {
  TestServer srv(with_mtp(true), mtp_model());
  auto c = srv.client();
  const auto plain = post_json(*c, "/v1/completions", completion(nullptr));
  ASSERT_EQ(plain.status, 200) << plain.raw;
  const std::string want = plain.body["choices"][0]["text"];
  EXPECT_FALSE(plain.body["usage"].contains("speculative"));
  for (const json& sp : {json("ngram"), json("mtp"), json{{"type", "mtp"}, {"draft_max", 3}}}) {
    SCOPED_TRACE(sp.dump());
    const auto r = post_json(*c, "/v1/completions", completion(sp));
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["choices"][0]["text"], want);
    EXPECT_EQ(r.body["usage"]["completion_tokens"], plain.body["usage"]["completion_tokens"]);
    const json& u = r.body["usage"]["speculative"];
    EXPECT_GT(u.value("drafted_tokens", 0), 0) << r.raw;
    EXPECT_LE(u.value("accepted_tokens", -1), u.value("drafted_tokens", 0));
    // Streamed, the pieces add up to the same text.
    const auto s = post_json(*c, "/v1/completions", completion(sp, true));
    ASSERT_EQ(s.status, 200) << s.raw;
    bool done = false;
    std::string text;
    for (const auto& ev : sse_events(s.raw, &done))
      if (!ev["choices"].empty()) text += ev["choices"][0]["text"].get<std::string>();
    EXPECT_TRUE(done);
    EXPECT_EQ(text, want);
  }
  // Chat and sessions take it too.
  const json chat = {{"messages", {{{"role", "user"}, {"content", "def add(a, b):"}}}},
                     {"max_tokens", 24},
                     {"temperature", 0}};
  json chat_spec = chat;
  chat_spec["speculative"] = "mtp";
  const auto a = post_json(*c, "/v1/chat/completions", chat);
  const auto b = post_json(*c, "/v1/chat/completions", chat_spec);
  ASSERT_EQ(b.status, 200) << b.raw;
  EXPECT_EQ(a.body["choices"][0]["message"]["content"], b.body["choices"][0]["message"]["content"]);
  std::vector<std::vector<int32_t>> ids;
  for (const json& sp : {json(nullptr), json("ngram")}) {
    const auto s = post_json(*c, "/v1/sessions", {{"text", kPrompt}});
    ASSERT_EQ(s.status, 200) << s.raw;
    json g = {{"max_tokens", 32}, {"temperature", 0}, {"ignore_eos", true}};
    if (!sp.is_null()) g["speculative"] = sp;
    const auto r =
        post_json(*c, "/v1/sessions/" + s.body["id"].get<std::string>() + "/generate", g);
    ASSERT_EQ(r.status, 200) << r.raw;
    ids.push_back(r.body.value("token_ids", std::vector<int32_t>{}));
  }
  EXPECT_EQ(ids[0].size(), 32u);
  EXPECT_EQ(ids[0], ids[1]);
}

TEST(ServerSpeculative, WhatCannotRunIsRefusedUpFront) {
  TestServer srv(with_mtp(false), mtp_model());
  auto c = srv.client();
  auto expect_400 = [&](const json& body, const std::string& says) {
    const auto r = post_json(*c, "/v1/completions", body);
    EXPECT_EQ(r.status, 400) << r.raw;
    EXPECT_NE(r.raw.find(says), std::string::npos) << r.raw;
  };
  expect_400(completion("mtp"), "--mtp");                              // the head is not running
  expect_400(completion("eagle"), "ngram, mtp or none");               // no such drafter
  expect_400(completion(json{{"draft_max", 4}}), "speculative.type");  // no type
  expect_400(completion(json{{"type", "ngram"}, {"draft_max", 0}}), "draft_max");
  expect_400(completion(17), "'speculative' must be");
  json lp = completion("ngram");
  lp["logprobs"] = 2;
  expect_400(lp, "logprobs");
  // "none" is plain decoding.
  EXPECT_EQ(post_json(*c, "/v1/completions", completion("none")).status, 200);
}

}  // namespace
}  // namespace flashrt::testing
