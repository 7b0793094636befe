// Tool calling and constrained output over HTTP, on the trained pycoder model (a code model that
// knows nothing of tools or these schemas) with the real Qwen3 chat template: a required or named
// call is always a valid call whose arguments match the function's schema, the official openai
// client round-trips a call and its result, response_format and grammar give parseable output, and
// bad schemas, grammars and tool choices are 400s naming the problem.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "server_fixture.h"

namespace flashrt::testing {
namespace {

std::string qwen3_template() {
  std::ifstream in(shared_dir() + "/reference/qwen3-tokenizer/tokenizer_config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str())["chat_template"].get<std::string>();
}

const json& tools() {
  static const json t = json::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather.",
      "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "maxLength": 24},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"]}}},
    {"type": "function", "function": {"name": "count_files", "description": "Count files.",
      "parameters": {"type": "object", "properties": {
        "glob": {"type": "string", "maxLength": 16},
        "recursive": {"type": "boolean"}},
        "required": ["glob", "recursive"]}}}])");
  return t;
}

const json& city_schema() {
  static const json s = json::parse(R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 20},
      "population": {"type": "integer"},
      "kind": {"enum": ["capital", "port", "village"]},
      "districts": {"type": "array", "items": {"type": "string", "maxLength": 10},
                    "minItems": 1, "maxItems": 3}},
    "required": ["name", "population", "kind", "districts"], "additionalProperties": false})");
  return s;
}

// The arguments a call of `name` must have (the tools above): its required keys, typed.
void expect_valid_call(const std::string& name, const std::string& arguments) {
  const json a = json::parse(arguments, nullptr, false);
  ASSERT_TRUE(a.is_object()) << arguments;
  if (name == "get_weather") {
    ASSERT_TRUE(a["city"].is_string()) << arguments;
    EXPECT_LE(a["city"].get<std::string>().size(), 24u);
    EXPECT_TRUE(a["unit"] == "celsius" || a["unit"] == "fahrenheit") << arguments;
  } else {
    ASSERT_EQ(name, "count_files");
    EXPECT_TRUE(a["glob"].is_string()) << arguments;
    EXPECT_TRUE(a["recursive"].is_boolean()) << arguments;
  }
  EXPECT_EQ(a.size(), 2u) << arguments;
}

void expect_valid_city(const std::string& text) {
  const json c = json::parse(text, nullptr, false);
  ASSERT_TRUE(c.is_object()) << text;
  EXPECT_EQ(c.size(), 4u) << text;
  EXPECT_TRUE(c["name"].is_string()) << text;
  EXPECT_TRUE(c["population"].is_number_integer()) << text;
  EXPECT_TRUE(c["kind"] == "capital" || c["kind"] == "port" || c["kind"] == "village") << text;
  ASSERT_TRUE(c["districts"].is_array()) << text;
  EXPECT_GE(c["districts"].size(), 1u);
  EXPECT_LE(c["districts"].size(), 3u);
}

json chat(const json& extra) {
  json b = {{"messages", {{{"role", "user"}, {"content", "What is the weather in Paris?"}}}},
            {"max_tokens", 300}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

TEST(ServerTools, RequiredAndNamedCallsAreValidAtAnySeed) {
  TestServer srv(test_server_options(), default_model_path(), qwen3_template());
  auto c = srv.client();
  int seen_weather = 0, seen_count = 0;
  for (int seed = 0; seed < 12; ++seed) {
    SCOPED_TRACE(seed);
    const json choice = seed % 3 == 2
                            ? json{{"type", "function"}, {"function", {{"name", "count_files"}}}}
                            : json("required");
    const auto r = post_json(*c, "/v1/chat/completions",
                             chat({{"tools", tools()},
                                   {"tool_choice", choice},
                                   {"temperature", 1.0},
                                   {"seed", seed},
                                   {"parallel_tool_calls", seed % 2 == 0}}));
    ASSERT_EQ(r.status, 200) << r.raw;
    const json& ch = r.body["choices"][0];
    EXPECT_EQ(ch["finish_reason"], "tool_calls") << r.raw;
    const json& calls = ch["message"]["tool_calls"];
    ASSERT_TRUE(calls.is_array() && !calls.empty()) << r.raw;
    if (seed % 2 == 1) {
      EXPECT_EQ(calls.size(), 1u);
    }
    for (const auto& call : calls) {
      EXPECT_EQ(call["type"], "function");
      EXPECT_TRUE(call["id"].get<std::string>().starts_with("call_"));
      const std::string name = call["function"]["name"];
      if (seed % 3 == 2) {
        EXPECT_EQ(name, "count_files");
      }
      (name == "get_weather" ? seen_weather : seen_count)++;
      expect_valid_call(name, call["function"]["arguments"]);
    }
  }
  EXPECT_GT(seen_count, 0);
}

TEST(ServerTools, StreamedCallsAssembleToTheSameCall) {
  TestServer srv(test_server_options(), default_model_path(), qwen3_template());
  auto c = srv.client();
  const json body = chat({{"tools", tools()}, {"tool_choice", "required"}, {"temperature", 0}});
  const auto plain = post_json(*c, "/v1/chat/completions", body);
  ASSERT_EQ(plain.status, 200) << plain.raw;
  json sb = body;
  sb["stream"] = true;
  const auto s = post_json(*c, "/v1/chat/completions", sb);
  ASSERT_EQ(s.status, 200) << s.raw;
  bool done = false;
  std::vector<std::pair<std::string, std::string>> calls;  // by index: name, arguments
  std::string finish;
  for (const auto& ev : sse_events(s.raw, &done)) {
    const json& d = ev["choices"][0]["delta"];
    if (d.contains("tool_calls"))
      for (const auto& tc : d["tool_calls"]) {
        const size_t i = tc["index"];
        if (calls.size() <= i) calls.resize(i + 1);
        calls[i].first += tc["function"]["name"].get<std::string>();
        calls[i].second += tc["function"]["arguments"].get<std::string>();
      }
    if (!ev["choices"][0]["finish_reason"].is_null()) finish = ev["choices"][0]["finish_reason"];
  }
  EXPECT_TRUE(done);
  EXPECT_EQ(finish, "tool_calls");
  const json& want = plain.body["choices"][0]["message"]["tool_calls"];
  ASSERT_EQ(calls.size(), want.size()) << s.raw;
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].first, want[i]["function"]["name"]);
    EXPECT_EQ(calls[i].second, want[i]["function"]["arguments"]);
  }
}

TEST(ServerTools, ResponseFormatAndGrammar) {
  TestServer srv(test_server_options(), default_model_path(), qwen3_template());
  auto c = srv.client();
  for (int seed = 0; seed < 6; ++seed) {
    SCOPED_TRACE(seed);
    const auto r = post_json(
        *c, "/v1/chat/completions",
        chat({{"response_format",
               {{"type", "json_schema"},
                {"json_schema", {{"name", "city"}, {"schema", city_schema()}, {"strict", true}}}}},
              {"temperature", 1.0},
              {"seed", seed},
              {"max_tokens", 200}}));
    ASSERT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body["choices"][0]["finish_reason"], "stop") << r.raw;
    expect_valid_city(r.body["choices"][0]["message"]["content"]);
  }
  // Any JSON object, on completions.
  const auto o = post_json(*c, "/v1/completions",
                           {{"prompt", "config = "},
                            {"response_format", {{"type", "json_object"}}},
                            {"max_tokens", 200},
                            {"temperature", 0.8},
                            {"seed", 1}});
  ASSERT_EQ(o.status, 200) << o.raw;
  EXPECT_TRUE(
      json::parse(o.body["choices"][0]["text"].get<std::string>(), nullptr, false).is_object())
      << o.raw;
  // A GBNF grammar in the native field.
  const auto g = post_json(*c, "/v1/completions",
                           {{"prompt", "answer = "},
                            {"grammar", "root ::= (\"yes\" | \"no\") \" because \" [a-z]{1,8}"},
                            {"max_tokens", 40},
                            {"temperature", 1.0},
                            {"seed", 2}});
  ASSERT_EQ(g.status, 200) << g.raw;
  const std::string text = g.body["choices"][0]["text"];
  EXPECT_TRUE(text.starts_with("yes because ") || text.starts_with("no because ")) << text;
}

TEST(ServerTools, BadSchemasGrammarsAndChoicesAre400s) {
  TestServer srv(test_server_options(), default_model_path(), qwen3_template());
  auto c = srv.client();
  auto expect_400 = [&](const std::string& path, const json& body, const std::string& param,
                        const std::string& says) {
    SCOPED_TRACE(body.dump());
    const auto r = post_json(*c, path, body);
    EXPECT_EQ(r.status, 400) << r.raw;
    EXPECT_EQ(r.body["error"]["param"], param) << r.raw;
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find(says), std::string::npos) << r.raw;
  };
  expect_400(
      "/v1/chat/completions",
      chat({{"response_format",
             {{"type", "json_schema"},
              {"json_schema",
               {{"name", "x"}, {"schema", {{"type", "object"}, {"not", json::object()}}}}}}}}),
      "response_format", "not");
  expect_400("/v1/completions", {{"prompt", "x"}, {"grammar", "root ::= missing"}}, "grammar",
             "missing");
  expect_400("/v1/completions", {{"prompt", "x"}, {"grammar", "start ::= \"a\""}}, "grammar",
             "root");
  expect_400("/v1/chat/completions",
             chat({{"tools", tools()},
                   {"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}}),
             "tool_choice.function.name", "nope");
  expect_400("/v1/chat/completions", chat({{"tool_choice", "required"}}), "tool_choice", "tools");
  expect_400("/v1/chat/completions",
             chat({{"tools", {{{"type", "function"}, {"function", {{"name", "bad name"}}}}}}}),
             "tools[0].function.name", "letters");
  expect_400(
      "/v1/completions",
      {{"prompt", "x"}, {"response_format", {{"type", "json_object"}}}, {"ignore_eos", true}},
      "response_format", "ignore_eos");
}

TEST(ServerTools, OfficialClientRoundTripsAToolCall) {
  const std::string dir = source_dir() + "/tests/server/js";
  ASSERT_TRUE(std::filesystem::exists(dir + "/node_modules/openai/package.json"))
      << "the openai npm client is not installed: run `make deps`";
  TestServer srv(test_server_options(), default_model_path(), qwen3_template());
  const json spec = {
      {"model", "pycoder-hybrid-12m"}, {"tools", tools()}, {"schema", city_schema()}};
  std::string out;
  ASSERT_TRUE(run_js_client(srv, "tools_client.mjs", spec, &out)) << out;
  const json r = json::parse(out, nullptr, false);
  ASSERT_TRUE(r.is_object()) << out;
  EXPECT_EQ(r["required_finish"], "tool_calls");
  ASSERT_FALSE(r["required"]["tool_calls"].empty()) << out;
  for (const auto& call : r["required"]["tool_calls"])
    expect_valid_call(call["function"]["name"], call["function"]["arguments"]);
  EXPECT_EQ(r["named_finish"], "tool_calls");
  ASSERT_EQ(r["named_calls"].size(), 1u) << out;
  EXPECT_EQ(r["named_calls"][0]["function"]["name"], "get_weather");
  expect_valid_call("get_weather", r["named_calls"][0]["function"]["arguments"]);
  // After the tool's result, an answer (the pycoder model writes code, but it answers).
  EXPECT_TRUE(r["final"]["content"].is_string() || r["final"]["tool_calls"].is_array()) << out;
  EXPECT_TRUE(r["final_finish"] == "length" || r["final_finish"] == "stop" ||
              r["final_finish"] == "tool_calls")
      << out;
  EXPECT_EQ(r["structured_finish"], "stop") << out;
  expect_valid_city(r["structured"]);
  EXPECT_EQ(r["bad_status"], 400) << out;
}

}  // namespace
}  // namespace flashrt::testing
