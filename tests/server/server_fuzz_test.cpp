// Request bodies are untrusted: random and mutated JSON fed to the parsers (many thousands) and to
// the live handlers over HTTP (for a few seconds). Every answer must be a 2xx or a 4xx in
// OpenAI's error shape — never a 5xx, a dropped connection or a crash — and afterwards the server
// still answers a known request exactly as before.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "server/requests.h"
#include "server_fixture.h"

namespace flashrt::testing {
namespace {

const std::vector<std::string> kSeeds = {
    R"({"model":"m","prompt":"def f(x):","max_tokens":3,"temperature":0.5,"top_p":0.9,"seed":1,"stop":["\n\n","x"],"stream":false})",
    R"({"prompt":[1,2,3],"max_tokens":2,"logit_bias":{"5":-100,"6":2.5},"stream":true,"stream_options":{"include_usage":true}})",
    R"({"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_tokens":2,"n":1})",
    R"({"messages":[{"role":"user","content":"a"},{"role":"assistant","content":null}],"max_completion_tokens":2,"chat_template_kwargs":{"enable_thinking":false}})",
    R"({"system":"sys","text":"import os\n","seed":3})",
    R"({"ids":[1,2,3],"messages":[],"add_generation_prompt":true})",
    R"({"capsule":"cap_0123456789abcdef"})",
    R"({"max_tokens":3,"temperature":0,"ignore_eos":true,"stop_token_ids":[4],"stream":true})",
};

const std::vector<std::string> kTokens = {"-1",
                                          "0",
                                          "1e309",
                                          "-1e309",
                                          "null",
                                          "true",
                                          "[]",
                                          "{}",
                                          "\"\"",
                                          "\"\\ud800\"",
                                          "\"\\u0000\"",
                                          "9223372036854775808",
                                          "-9223372036854775809",
                                          "1.5",
                                          "[[[[[[",
                                          "]]]",
                                          "\"x\"",
                                          "99999999",
                                          "{\"a\":",
                                          ",",
                                          ":",
                                          "\"\\\"",
                                          "NaN",
                                          "[1,2,3]",
                                          "\"prompt\"",
                                          "\"messages\""};

std::string mutate(std::string s, std::mt19937_64& rng) {
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    const size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 6) {
      case 0:
        if (!s.empty()) s[pos % s.size()] = static_cast<char>(rng());
        break;
      case 1:
        s.insert(pos, 1, static_cast<char>(rng()));
        break;
      case 2:
        if (!s.empty()) s.erase(pos % s.size(), 1 + rng() % 8);
        break;
      case 3:
        s.insert(pos, kTokens[rng() % kTokens.size()]);
        break;
      case 4:
        if (!s.empty()) s = s.substr(0, pos);
        break;
      default: {  // replace a value after a colon
        const size_t colon = s.find(':', pos);
        if (colon != std::string::npos) {
          const size_t end = s.find_first_of(",}", colon);
          s.replace(colon + 1, (end == std::string::npos ? s.size() : end) - colon - 1,
                    kTokens[rng() % kTokens.size()]);
        }
      }
    }
  }
  return s;
}

TEST(ServerFuzz, ParsersSurviveMutatedBodies) {
  std::mt19937_64 rng(12345);
  for (int i = 0; i < 30000; ++i) {
    std::string body =
        i % 10 == 0 ? std::string(rng() % 64, '\0') : mutate(kSeeds[rng() % kSeeds.size()], rng);
    if (i % 10 == 0)
      for (char& ch : body) ch = static_cast<char>(rng());
    server::fuzz_request_parsers(reinterpret_cast<const uint8_t*>(body.data()), body.size());
  }
}

TEST(ServerFuzz, HandlersAnswer2xxOr4xxToMutatedBodies) {
  auto o = test_server_options();
  o.scheduler.session.max_ctx = 48;  // bounds any generation a mutation happens to ask for
  TestServer srv(o);
  auto c = srv.client();
  auto known = [&] {
    return post_json(*c, "/v1/completions",
                     {{"prompt", "def f():"}, {"max_tokens", 6}, {"temperature", 0}})
        .raw;
  };
  const std::string before = json::parse(known())["choices"][0]["text"];
  const std::string sid = post_json(*c, "/v1/sessions", {{"text", "import os\n"}}).body["id"];
  const std::string cap =
      post_json(*c, "/v1/sessions/" + sid + "/snapshot", json::object()).body["id"];
  const std::string capsule_file = c->Get("/v1/capsules/" + cap)->body;
  const std::vector<std::string> paths = {"/v1/completions",
                                          "/v1/chat/completions",
                                          "/v1/sessions",
                                          "/v1/sessions/" + sid + "/append",
                                          "/v1/sessions/" + sid + "/generate",
                                          "/v1/sessions/" + sid + "/restore",
                                          "/v1/sessions/" + sid + "/fork",
                                          "/v1/sessions/" + sid + "/snapshot"};
  std::mt19937_64 rng(777);
  const auto t0 = std::chrono::steady_clock::now();
  int requests = 0, ok = 0;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3) || requests < 50) {
    ++requests;
    std::string what;
    auto send = [&]() -> httplib::Result {
      if (rng() % 8 == 0) {  // a mutated capsule file
        std::string bytes = capsule_file;
        for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
        if (rng() % 2) bytes.resize(rng() % bytes.size());
        what = "PUT /v1/capsules";
        return c->Put("/v1/capsules", bytes, "application/octet-stream");
      }
      const std::string& path = paths[rng() % paths.size()];
      const std::string body = mutate(kSeeds[rng() % kSeeds.size()], rng);
      what = "POST " + path + " " + body;
      return c->Post(path, body, "application/json");
    };
    const httplib::Result res = send();
    ASSERT_TRUE(res) << what;
    ASSERT_TRUE(res->status / 100 == 2 || res->status / 100 == 4)
        << res->status << " " << what << "\n"
        << res->body;
    if (res->status / 100 == 2) {
      ++ok;
    } else {
      const json j = json::parse(res->body, nullptr, false);
      ASSERT_TRUE(j.is_object() && j["error"]["message"].is_string()) << what << "\n" << res->body;
    }
  }
  EXPECT_GT(ok, 0);
  EXPECT_EQ(get(*c, "/health").body["status"], "ok");
  EXPECT_EQ(json::parse(known())["choices"][0]["text"], before);
}

}  // namespace
}  // namespace flashrt::testing
