// The OpenAI-compatible routes over HTTP: greedy outputs equal `flashrt run --temp 0`, streaming
// and not; stop strings; usage; a client that disconnects mid-stream cancels its generation.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "server_fixture.h"

namespace flashrt::testing {
namespace {

const char* kPrompt = "def fibonacci(n):\n";

std::string chatml(const std::string& system, const std::string& user) {
  return "<|im_start|>system\n" + system + "<|im_end|>\n<|im_start|>user\n" + user +
         "<|im_end|>\n<|im_start|>assistant\n";
}

TEST(ServerOpenAI, CompletionMatchesFlashrtRun) {
  TestServer srv;
  auto c = srv.client();
  const std::string expected = flashrt_run_greedy(kPrompt, 24);
  ASSERT_FALSE(expected.empty());

  auto r = post_json(*c, "/v1/completions",
                     {{"model", "x"}, {"prompt", kPrompt}, {"max_tokens", 24}, {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["object"], "text_completion");
  EXPECT_EQ(r.body["choices"][0]["text"], expected);
  const auto& u = r.body["usage"];
  EXPECT_EQ(u["completion_tokens"].get<int>() + u["prompt_tokens"].get<int>(),
            u["total_tokens"].get<int>());
  EXPECT_GT(u["prompt_tokens"].get<int>(), 3);

  // Streamed: the pieces add up to the same text, then a finish_reason and [DONE].
  auto s = post_json(*c, "/v1/completions",
                     {{"prompt", kPrompt},
                      {"max_tokens", 24},
                      {"temperature", 0},
                      {"stream", true},
                      {"stream_options", {{"include_usage", true}}}});
  ASSERT_EQ(s.status, 200) << s.raw;
  bool done = false;
  std::string text, finish;
  bool usage = false;
  for (const auto& ev : sse_events(s.raw, &done)) {
    if (ev.contains("usage") && !ev["usage"].is_null()) usage = true;
    if (ev["choices"].empty()) continue;
    text += ev["choices"][0]["text"].get<std::string>();
    if (!ev["choices"][0]["finish_reason"].is_null()) finish = ev["choices"][0]["finish_reason"];
  }
  EXPECT_TRUE(done);
  EXPECT_TRUE(usage);
  EXPECT_EQ(text, expected);
  EXPECT_EQ(finish, r.body["choices"][0]["finish_reason"]);
}

TEST(ServerOpenAI, ChatMatchesFlashrtRunOnTheRenderedPrompt) {
  TestServer srv;
  auto c = srv.client();
  const std::string system = "You write Python.", user = "def add(a, b):";
  const std::string expected = flashrt_run_greedy(chatml(system, user), 32);
  const json messages = {{{"role", "system"}, {"content", system}},
                         {{"role", "user"}, {"content", user}}};
  auto r =
      post_json(*c, "/v1/chat/completions",
                {{"model", "x"}, {"messages", messages}, {"max_tokens", 32}, {"temperature", 0}});
  ASSERT_EQ(r.status, 200) << r.raw;
  EXPECT_EQ(r.body["object"], "chat.completion");
  EXPECT_EQ(r.body["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(r.body["choices"][0]["message"]["content"], expected);

  auto s =
      post_json(*c, "/v1/chat/completions",
                {{"messages", messages}, {"max_tokens", 32}, {"temperature", 0}, {"stream", true}});
  ASSERT_EQ(s.status, 200) << s.raw;
  bool done = false;
  std::string text;
  int finishes = 0;
  const auto events = sse_events(s.raw, &done);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0]["choices"][0]["delta"]["role"], "assistant");
  for (const auto& ev : events) {
    EXPECT_EQ(ev["object"], "chat.completion.chunk");
    const auto& d = ev["choices"][0]["delta"];
    if (d.contains("content")) text += d["content"].get<std::string>();
    if (!ev["choices"][0]["finish_reason"].is_null()) ++finishes;
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(finishes, 1);
  EXPECT_EQ(text, expected);
}

TEST(ServerOpenAI, StopStringsEndTheTextWithoutShowingThem) {
  TestServer srv;
  auto c = srv.client();
  auto full = post_json(*c, "/v1/completions",
                        {{"prompt", kPrompt}, {"max_tokens", 32}, {"temperature", 0}});
  ASSERT_EQ(full.status, 200);
  const std::string text = full.body["choices"][0]["text"];
  ASSERT_GT(text.size(), 12u) << text;
  // A stop string from the middle of the greedy text, possibly spanning tokens.
  const std::string stop = text.substr(6, 4);
  const std::string expected = text.substr(0, text.find(stop));
  for (bool stream : {false, true}) {
    auto r = post_json(*c, "/v1/completions",
                       {{"prompt", kPrompt},
                        {"max_tokens", 32},
                        {"temperature", 0},
                        {"stop", {"@@never@@", stop}},
                        {"stream", stream}});
    ASSERT_EQ(r.status, 200) << r.raw;
    std::string got, finish;
    if (stream) {
      for (const auto& ev : sse_events(r.raw)) {
        got += ev["choices"][0]["text"].get<std::string>();
        if (!ev["choices"][0]["finish_reason"].is_null())
          finish = ev["choices"][0]["finish_reason"];
      }
    } else {
      got = r.body["choices"][0]["text"];
      finish = r.body["choices"][0]["finish_reason"];
    }
    EXPECT_EQ(got, expected) << "stream=" << stream << " stop='" << stop << "'";
    EXPECT_EQ(finish, "stop");
  }
}

TEST(ServerOpenAI, SeededSamplingRepeatsAndTokenIdsPromptsWork) {
  TestServer srv;
  auto c = srv.client();
  const json body = {{"prompt", {1, 2, 3, 4}},
                     {"max_tokens", 12},
                     {"temperature", 0.9},
                     {"top_p", 0.9},
                     {"seed", 1234}};
  auto a = post_json(*c, "/v1/completions", body);
  auto b = post_json(*c, "/v1/completions", body);
  ASSERT_EQ(a.status, 200) << a.raw;
  EXPECT_EQ(a.body["choices"][0]["text"], b.body["choices"][0]["text"]);
  EXPECT_EQ(a.body["usage"]["prompt_tokens"], 4);
}

TEST(ServerOpenAI, NChoicesAreForksOfThePromptStreamedOrNot) {
  TestServer srv;
  auto c = srv.client();
  const json body = {
      {"prompt", kPrompt}, {"max_tokens", 10}, {"temperature", 1.0}, {"seed", 21}, {"n", 3}};
  auto r = post_json(*c, "/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.raw;
  ASSERT_EQ(r.body["choices"].size(), 3u);
  int completion = 0;
  for (int i = 0; i < 3; ++i) {
    const json& ch = r.body["choices"][i];
    EXPECT_EQ(ch["index"], i);
    // Choice i is the seed + i request on its own.
    json one = body;
    one.erase("n");
    one["seed"] = 21 + i;
    auto solo = post_json(*c, "/v1/completions", one);
    EXPECT_EQ(ch["text"], solo.body["choices"][0]["text"]) << "choice " << i;
    completion += solo.body["usage"]["completion_tokens"].get<int>();
  }
  EXPECT_EQ(r.body["usage"]["completion_tokens"], completion);
  // Streamed: each choice's chunks carry its index and add up to the same texts.
  json sb = body;
  sb["stream"] = true;
  auto s = post_json(*c, "/v1/completions", sb);
  ASSERT_EQ(s.status, 200) << s.raw;
  std::vector<std::string> texts(3);
  std::vector<bool> finished(3, false);
  bool done = false;
  for (const auto& ev : sse_events(s.raw, &done)) {
    for (const auto& ch : ev["choices"]) {
      const int i = ch["index"];
      texts.at(i) += ch["text"].get<std::string>();
      if (!ch["finish_reason"].is_null()) finished[i] = true;
    }
  }
  EXPECT_TRUE(done);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(texts[i], r.body["choices"][i]["text"]) << "choice " << i;
    EXPECT_TRUE(finished[i]);
  }
  // Chat too.
  auto chat = post_json(*c, "/v1/chat/completions",
                        {{"messages", {{{"role", "user"}, {"content", "def add(a, b):"}}}},
                         {"max_tokens", 6},
                         {"temperature", 0},
                         {"n", 2}});
  ASSERT_EQ(chat.status, 200) << chat.raw;
  ASSERT_EQ(chat.body["choices"].size(), 2u);
  EXPECT_EQ(chat.body["choices"][1]["index"], 1);
  EXPECT_EQ(chat.body["choices"][0]["message"], chat.body["choices"][1]["message"]);  // greedy
}

TEST(ServerOpenAI, LogprobsInTheLegacyAndTheChatShape) {
  TestServer srv;
  auto c = srv.client();
  auto r = post_json(*c, "/v1/completions",
                     {{"prompt", kPrompt},
                      {"max_tokens", 8},
                      {"temperature", 0},
                      {"logprobs", 2},
                      {"echo", true}});
  ASSERT_EQ(r.status, 200) << r.raw;
  const json& lp = r.body["choices"][0]["logprobs"];
  const std::string text = r.body["choices"][0]["text"];
  ASSERT_EQ(lp["tokens"].size(), 8u) << lp;
  std::string joined;
  for (size_t i = 0; i < 8; ++i) {
    // text_offset: where each token starts in the choice's text (after the echoed prompt).
    EXPECT_EQ(lp["text_offset"][i], std::strlen(kPrompt) + joined.size());
    joined += lp["tokens"][i].get<std::string>();
    EXPECT_LE(lp["token_logprobs"][i].get<double>(), 0.0);
    ASSERT_EQ(lp["top_logprobs"][i].size(), 2u);
    // Greedy: the token is the most likely one.
    double best = -1e9;
    for (const auto& [tok, l] : lp["top_logprobs"][i].items())
      best = std::max(best, l.get<double>());
    EXPECT_EQ(best, lp["token_logprobs"][i].get<double>());
  }
  EXPECT_EQ(std::string(kPrompt) + joined, text);
  // Streamed chat: every chunk with content carries its tokens' logprobs.
  auto s = post_json(*c, "/v1/chat/completions",
                     {{"messages", {{{"role", "user"}, {"content", "def add(a, b):"}}}},
                      {"max_tokens", 8},
                      {"temperature", 0},
                      {"stream", true},
                      {"logprobs", true}});
  ASSERT_EQ(s.status, 200) << s.raw;
  std::string content, tokens;
  for (const auto& ev : sse_events(s.raw)) {
    if (ev["choices"].empty()) continue;
    const json& ch = ev["choices"][0];
    if (ch["delta"].contains("content")) content += ch["delta"]["content"].get<std::string>();
    if (!ch["logprobs"].is_null())
      for (const auto& t : ch["logprobs"]["content"]) {
        tokens += t["token"].get<std::string>();
        EXPECT_TRUE(t["top_logprobs"].empty());  // top_logprobs not asked for
      }
  }
  EXPECT_FALSE(content.empty());
  EXPECT_EQ(tokens, content);
  // What is refused, naming the field.
  const std::vector<std::pair<json, std::string>> bad = {
      {{{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"top_logprobs", 2}}, "top_logprobs"},
      {{{"messages", {{{"role", "user"}, {"content", "x"}}}},
        {"top_logprobs", 21},
        {"logprobs", true}},
       "top_logprobs"},
      {{{"prompt", "x"}, {"logprobs", 99}}, "logprobs"},
      {{{"prompt", "x"}, {"n", 65}}, "n"}};
  for (const auto& [b, param] : bad) {
    auto e = post_json(*c, b.contains("prompt") ? "/v1/completions" : "/v1/chat/completions", b);
    EXPECT_EQ(e.status, 400) << b;
    EXPECT_EQ(e.body["error"]["param"], param) << e.raw;
  }
}

TEST(ServerOpenAI, ModelsHealthAndMetrics) {
  TestServer srv;
  auto c = srv.client();
  auto m = get(*c, "/v1/models");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.body["data"][0]["id"], "pycoder-hybrid-12m");
  EXPECT_EQ(get(*c, "/v1/models/pycoder-hybrid-12m").status, 200);
  EXPECT_EQ(get(*c, "/v1/models/other").status, 404);
  auto h = get(*c, "/health");
  ASSERT_EQ(h.status, 200);
  EXPECT_EQ(h.body["status"], "ok");
  auto res = c->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("# TYPE flashrt_ttft_seconds histogram"), std::string::npos);
  EXPECT_NE(res->body.find("flashrt_requests_total{route=\"/v1/models\",status=\"200\"}"),
            std::string::npos)
      << res->body;
}

TEST(ServerOpenAI, ClientLeavingMidStreamCancelsGeneration) {
  TestServer srv;
  auto c = srv.client();
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = json{
      {"prompt", kPrompt},
      {"max_tokens", 100000},
      {"ignore_eos", true},
      {"temperature", 0},
      {"stream",
       true}}.dump();
  req.set_header("Content-Type", "application/json");
  int events = 0;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    for (size_t i = 0; i + 1 < n; ++i)
      if (data[i] == '\n' && data[i + 1] == '\n') ++events;
    return events < 3;  // hang up after a few tokens
  };
  c->send(req);
  EXPECT_GE(events, 3);
  // The scheduler notices at its next write and stops: the generation ends cancelled, far short
  // of the context.
  auto probe = srv.client();
  const auto t0 = std::chrono::steady_clock::now();
  while ((metric(*probe, "flashrt_generations_cancelled_total") < 1 ||
          get(*probe, "/health").body["queued_jobs"] != 0) &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(metric(*probe, "flashrt_generations_cancelled_total"), 1);
  EXPECT_LT(metric(*probe, "flashrt_generated_tokens_total"), 500);
  EXPECT_EQ(get(*probe, "/health").body["queued_jobs"], 0);
}

}  // namespace
}  // namespace flashrt::testing
