// Bad requests get the right 4xx in OpenAI's error shape, name the problem, and leave the server
// (and every session) as it was.
#include <gtest/gtest.h>

#include "server_fixture.h"

namespace flashrt::testing {
namespace {

struct Case {
  std::string method, path, body;
  int status;
  std::string code;   // error.code ("" = not checked)
  std::string param;  // error.param ("" = not checked)
};

void expect_error(httplib::Client& c, const Case& k) {
  httplib::Result res = k.method == "GET"      ? c.Get(k.path)
                        : k.method == "DELETE" ? c.Delete(k.path)
                        : k.method == "PUT"    ? c.Put(k.path, k.body, "application/json")
                                               : c.Post(k.path, k.body, "application/json");
  ASSERT_TRUE(res) << k.method << " " << k.path;
  EXPECT_EQ(res->status, k.status) << k.method << " " << k.path << " " << k.body << "\n"
                                   << res->body;
  const json j = json::parse(res->body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << res->body;
  const json& e = j["error"];
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << res->body;
  EXPECT_TRUE(e["type"].is_string()) << res->body;
  EXPECT_TRUE(e.contains("param") && e.contains("code")) << res->body;
  if (!k.code.empty()) {
    EXPECT_EQ(e["code"], k.code) << k.body << " " << res->body;
  }
  if (!k.param.empty()) {
    EXPECT_EQ(e["param"], k.param) << k.body << " " << res->body;
  }
}

TEST(ServerErrors, BadRequestsGetTheRight4xx) {
  auto o = test_server_options();
  o.scheduler.session.max_ctx = 64;
  TestServer srv(o);
  auto c = srv.client();
  const std::string sid = post_json(*c, "/v1/sessions", {{"text", "import os\n"}}).body["id"];
  const int64_t tokens = get(*c, "/v1/sessions/" + sid).body["tokens"];
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "x = " + std::to_string(i) + "\n";
  const std::vector<Case> cases = {
      {"POST", "/v1/completions", "{not json", 400, "invalid_json", ""},
      {"POST", "/v1/completions", "", 400, "invalid_json", ""},
      {"POST", "/v1/completions", "[1, 2]", 400, "invalid_json", ""},
      {"POST", "/v1/completions", std::string(5000, '[') + std::string(5000, ']'), 400,
       "invalid_json", ""},
      {"POST", "/v1/completions", R"({"max_tokens": 4})", 400, "missing_field", "prompt"},
      {"POST", "/v1/completions", R"({"prompt": 17})", 400, "invalid_type", "prompt"},
      {"POST", "/v1/completions", R"({"prompt": "x", "max_tokens": "ten"})", 400, "invalid_type",
       "max_tokens"},
      {"POST", "/v1/completions", R"({"prompt": "x", "max_tokens": -1})", 400, "invalid_value",
       "max_tokens"},
      {"POST", "/v1/completions", R"({"prompt": "x", "temperature": "hot"})", 400, "invalid_type",
       "temperature"},
      {"POST", "/v1/completions", R"({"prompt": "x", "top_p": 7})", 400, "invalid_value", "top_p"},
      {"POST", "/v1/completions", R"({"prompt": "x", "stream": "yes"})", 400, "invalid_type",
       "stream"},
      {"POST", "/v1/completions", R"({"prompt": "x", "stop": [1]})", 400, "invalid_type", "stop"},
      {"POST", "/v1/completions", R"({"prompt": "x", "n": 0})", 400, "invalid_value", "n"},
      {"POST", "/v1/completions", R"({"prompt": "x", "logprobs": true})", 400, "invalid_type",
       "logprobs"},
      {"POST", "/v1/completions", R"({"prompt": "x", "seed": 1.5})", 400, "invalid_type", "seed"},
      {"POST", "/v1/completions", R"({"prompt": "x", "logit_bias": {"abc": 1}})", 400,
       "invalid_value", "logit_bias"},
      {"POST", "/v1/completions", R"({"prompt": [1, 2, 999999]})", 400, "invalid_value",
       "prompt[2]"},
      {"POST", "/v1/completions", R"({"prompt": ["a", "b"]})", 400, "unsupported_value", "prompt"},
      {"POST", "/v1/completions", R"({"prompt": ""})", 400, "empty_prompt", "prompt"},
      {"POST", "/v1/completions", json{{"prompt", long_prompt}}.dump(), 400,
       "context_length_exceeded", "prompt"},
      {"POST", "/v1/chat/completions", R"({"messages": "hi"})", 400, "invalid_type", "messages"},
      {"POST", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": 5}]})", 400,
       "invalid_type", "messages[0].content"},
      {"POST", "/v1/chat/completions", R"({"messages": [{"content": "x"}]})", 400, "missing_field",
       "messages[0].role"},
      {"POST", "/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", 400,
       "invalid_value", ""},
      {"POST", "/v1/chat/completions",
       json{{"messages", {{{"role", "user"}, {"content", long_prompt}}}}}.dump(), 400,
       "context_length_exceeded", ""},
      {"POST", "/v1/sessions", R"({"ids": [-1]})", 400, "invalid_value", "ids[0]"},
      {"POST", "/v1/sessions", R"({"text": "a", "ids": [1]})", 400, "invalid_value", ""},
      {"POST", "/v1/sessions/sess_nope/append", R"({"text": "x"})", 404, "session_not_found", ""},
      {"POST", "/v1/sessions/sess_nope/generate", "{}", 404, "session_not_found", ""},
      {"POST", "/v1/sessions/sess_nope/snapshot", "{}", 404, "session_not_found", ""},
      {"POST", "/v1/sessions/sess_nope/fork", "{}", 404, "session_not_found", ""},
      {"POST", "/v1/sessions/sess_nope/interrupt", "{}", 404, "session_not_found", ""},
      {"POST", "/v1/sessions/sess_nope/restore", R"({"capsule": "cap_x"})", 404,
       "session_not_found", ""},
      {"GET", "/v1/sessions/sess_nope", "", 404, "session_not_found", ""},
      {"DELETE", "/v1/sessions/sess_nope", "", 404, "session_not_found", ""},
      {"POST", "/v1/sessions/" + sid + "/append", "{}", 400, "missing_field", ""},
      {"POST", "/v1/sessions/" + sid + "/append", json{{"text", long_prompt}}.dump(), 400,
       "context_length_exceeded", ""},
      {"POST", "/v1/sessions/" + sid + "/restore", "{}", 400, "missing_field", "capsule"},
      {"POST", "/v1/sessions/" + sid + "/restore", R"({"capsule": "cap_0000"})", 404,
       "capsule_not_found", ""},
      {"POST", "/v1/sessions/" + sid + "/generate", R"({"max_tokens": {}})", 400, "invalid_type",
       "max_tokens"},
      {"POST", "/v1/sessions/" + sid + "/generate", R"({"n": 2})", 400, "unsupported_value", "n"},
      {"POST", "/v1/sessions/" + sid + "/generate", R"({"logprobs": 1})", 400,
       "unsupported_parameter", "logprobs"},
      {"GET", "/v1/capsules/cap_nope", "", 404, "capsule_not_found", ""},
      {"DELETE", "/v1/capsules/cap_nope", "", 404, "capsule_not_found", ""},
      {"PUT", "/v1/capsules", "not a capsule", 400, "invalid_capsule", ""},
      {"GET", "/v1/nothing", "", 404, "unknown_route", ""},
      {"DELETE", "/v1/completions", "", 404, "unknown_route", ""},
  };
  for (const auto& k : cases) expect_error(*c, k);
  // None of that touched the session or the server.
  EXPECT_EQ(get(*c, "/v1/sessions/" + sid).body["tokens"], tokens);
  EXPECT_EQ(get(*c, "/health").body["status"], "ok");
  auto ok = post_json(*c, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}});
  EXPECT_EQ(ok.status, 200) << ok.raw;
  // An empty session cannot generate: there is nothing to continue.
  const std::string empty = post_json(*c, "/v1/sessions", json::object()).body["id"];
  expect_error(*c, {"POST", "/v1/sessions/" + empty + "/generate", "{}", 400, "empty_session", ""});
}

TEST(ServerErrors, ApiKeyGuardsTheApiButNotHealth) {
  auto o = test_server_options();
  o.api_key = "s3cret";
  TestServer srv(o);
  auto c = srv.client();
  expect_error(*c, {"GET", "/v1/models", "", 401, "invalid_api_key", ""});
  EXPECT_EQ(get(*c, "/health").status, 200);
  c->set_bearer_token_auth("wrong");
  expect_error(*c, {"GET", "/v1/models", "", 401, "invalid_api_key", ""});
  c->set_bearer_token_auth("s3cret");
  EXPECT_EQ(get(*c, "/v1/models").status, 200);
}

TEST(ServerErrors, TooManySessionsIs429) {
  auto o = test_server_options();
  o.scheduler.max_sessions = 2;
  TestServer srv(o);
  auto c = srv.client();
  const std::string a = post_json(*c, "/v1/sessions", json::object()).body["id"];
  EXPECT_EQ(post_json(*c, "/v1/sessions", json::object()).status, 200);
  expect_error(*c, {"POST", "/v1/sessions", "{}", 429, "too_many_sessions", ""});
  expect_error(*c, {"POST", "/v1/sessions/" + a + "/fork", "{}", 429, "too_many_sessions", ""});
  EXPECT_EQ(del(*c, "/v1/sessions/" + a).status, 200);
  EXPECT_EQ(post_json(*c, "/v1/sessions", json::object()).status, 200);
}

}  // namespace
}  // namespace flashrt::testing
