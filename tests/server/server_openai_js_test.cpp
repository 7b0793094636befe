// The official `openai` npm client (tests/server/js, installed by `make deps`) against the server:
// greedy chat and completions, streaming and not, give exactly what `flashrt run --temp 0` prints
// for the same prompt; concurrent streams (batched) each equal their solo run; n choices are the
// seed + i runs; chat logprobs come in OpenAI's shape; errors arrive as the client's typed
// APIError.
#include <gtest/gtest.h>

#include <filesystem>

#include "server_fixture.h"

namespace flashrt::testing {
namespace {

std::string js_dir() {
  return source_dir() + "/tests/server/js";
}

TEST(ServerOpenAIClientJs, OfficialClientGetsFlashrtRunOutput) {
  // Not a skip: CI installs the client first, and a missing one must be noticed.
  ASSERT_TRUE(std::filesystem::exists(js_dir() + "/node_modules/openai/package.json"))
      << "the openai npm client is not installed in " << js_dir()
      << "/node_modules: run `make deps` (npm ci in tests/server/js)";
  ASSERT_EQ(std::system("node --version > /dev/null 2>&1"), 0)
      << "node is not on PATH: install Node.js 20+ and run `make deps`";

  TestServer srv;
  const std::string system = "You write Python.", user = "def add(a, b):";
  const std::string prompt = "def fibonacci(n):\n";
  const int n = 24;
  const json spec = {
      {"model", "pycoder-hybrid-12m"},
      {"prompt", prompt},
      {"messages",
       {{{"role", "system"}, {"content", system}}, {{"role", "user"}, {"content", user}}}},
      {"max_tokens", n},
      {"batch",
       {{{"prompt", prompt}, {"max_tokens", 20}, {"temperature", 0}},
        {{"prompt", "import os\n"}, {"max_tokens", 16}, {"temperature", 0.9}, {"seed", 3}},
        {{"prompt", "class Stack:\n"}, {"max_tokens", 24}, {"temperature", 0}},
        {{"prompt", "for i in range("}, {"max_tokens", 12}, {"temperature", 1.1}, {"seed", 4}},
        {{"prompt", "# sort a list\n"}, {"max_tokens", 18}, {"temperature", 0.7}, {"seed", 5}}}}};
  std::string out;
  ASSERT_TRUE(run_js_client(srv, "openai_client.mjs", spec, &out)) << out;
  const json r = json::parse(out, nullptr, false);
  ASSERT_TRUE(r.is_object()) << out;

  const std::string chat_ref =
      flashrt_run_greedy("<|im_start|>system\n" + system + "<|im_end|>\n<|im_start|>user\n" + user +
                             "<|im_end|>\n<|im_start|>assistant\n",
                         n);
  const std::string completion_ref = flashrt_run_greedy(prompt, n);
  EXPECT_EQ(r["models"], json::array({"pycoder-hybrid-12m"}));
  EXPECT_EQ(r["chat"], chat_ref);
  EXPECT_EQ(r["chat_stream"], chat_ref);
  EXPECT_EQ(r["chat_finish"], r["chat_stream_finish"]);
  EXPECT_EQ(r["chat_usage"]["completion_tokens"], r["chat_stream_usage"]["completion_tokens"]);
  EXPECT_EQ(r["completion"], completion_ref);
  EXPECT_EQ(r["completion_stream"], completion_ref);
  EXPECT_EQ(r["completion_finish"], "length");
  // Concurrent streams (more than the server's 2 slots) each read as they do alone.
  ASSERT_EQ(r["batch_concurrent"].size(), 5u);
  EXPECT_EQ(r["batch_concurrent"], r["batch_solo"]);
  EXPECT_EQ(r["batch_solo"][0], flashrt_run_greedy(prompt, 20));
  // n = 3: choice i is the seed + i run of the same prompt; the prompt is counted once.
  EXPECT_EQ(r["n_texts"], r["n_solo"]);
  EXPECT_NE(r["n_texts"][0], r["n_texts"][1]);
  EXPECT_EQ(
      r["n_usage"]["total_tokens"].get<int>(),
      r["n_usage"]["prompt_tokens"].get<int>() + r["n_usage"]["completion_tokens"].get<int>());
  // Chat logprobs: one entry per token of the reply, three alternatives each, most likely first.
  const json& content = r["chat_logprobs"]["content"];
  ASSERT_TRUE(content.is_array()) << r["chat_logprobs"];
  ASSERT_FALSE(content.empty());
  std::string joined;
  for (const auto& t : content) {
    joined += t["token"].get<std::string>();
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    EXPECT_EQ(t["top_logprobs"][0]["token"], t["token"]);  // greedy: the token is the top one
    EXPECT_EQ(t["top_logprobs"][0]["logprob"], t["logprob"]);
    EXPECT_EQ(t["bytes"].size(), t["token"].get<std::string>().size());
  }
  EXPECT_EQ(joined, r["chat_logprobs_text"]);
  EXPECT_EQ(r["error_status"], 400);
  EXPECT_EQ(r["error_param"], "n");
  EXPECT_EQ(r["error_type"], "invalid_request_error");
}

}  // namespace
}  // namespace flashrt::testing
