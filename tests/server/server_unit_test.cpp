// Pieces of the server that need no HTTP: request parsing.
#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/requests.h"

namespace flashrt::server {
namespace {

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
                  parse_completion_request(json{{"prompt", "x"}, {"n", 65}}, 10);
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
