// Text in, text out through the `flashrt` command on the default model shipped in models/.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/cli_runner.h"
#include "models/model_fixtures.h"

namespace flashrt::testing {
namespace {

std::string default_model() {
  return source_dir() + "/models/pycoder-hybrid-12m.gguf";
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

TEST(CliText, RunContinuesPromptsLikeTransformers) {
  std::ifstream in(trained_model_dir("pycoder-hybrid-12m") + "/samples.json");
  const auto samples = nlohmann::json::parse(in);
  for (const auto& s : samples) {
    const std::string prompt = s.at("prompt"), completion = s.at("completion");
    // 48 greedy tokens, end-of-text never chosen (as the reference was generated)
    const auto r = run_flashrt("run -m " + default_model() + " -p " + shell_quote(prompt) +
                               " -n 48 --temp 0 --ignore-eos");
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(r.out, prompt + completion + "\n");
  }
}

// Speculative decoding from the command line gives transformers' greedy continuation too, with
// either drafter, and --stats reports the acceptance.
TEST(CliText, SpeculativeRunContinuesPromptsLikeTransformers) {
  std::ifstream in(trained_model_dir("pycoder-hybrid-12m") + "/samples.json");
  const auto samples = nlohmann::json::parse(in);
  const std::string draft = trained_model_dir("pycoder-dense-7m");
  for (const std::string& spec : {std::string("--spec ngram"), "--spec draft --draft " + draft}) {
    for (const auto& s : samples) {
      const std::string prompt = s.at("prompt"), completion = s.at("completion");
      const auto r =
          run_flashrt("run -m " + default_model() + " -p " + shell_quote(prompt) +
                      " -n 48 --temp 0 --ignore-eos --no-echo --draft-max 6 " + spec + " --stats");
      ASSERT_EQ(r.status, 0) << r.out;
      // (--stats writes to stderr, which may come before stdout's final newline)
      EXPECT_EQ(r.out.substr(0, completion.size()), completion) << spec;
      EXPECT_NE(r.out.find("mean accepted length"), std::string::npos) << r.out;
    }
  }
  const auto bad = run_flashrt("run -m " + default_model() + " -p x --spec draft");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("--spec draft needs --draft MODEL"), std::string::npos) << bad.out;
}

// What `make run` shows: restores and speculative decoding reproduce the greedy continuation.
TEST(CliText, DemoRestoresAndSpeculatesIdentically) {
  const auto r = run_flashrt("demo -m " + default_model());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("-- after restore: identical tokens"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("== speculative decoding (n-gram lookup)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("DIFFERENT"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokens per step, identical tokens"), std::string::npos) << r.out;
}

TEST(CliText, TokenizeAndDetokenize) {
  const Reference ref(trained_model_dir("pycoder-hybrid-12m"));
  const auto ids = ref.ids("p0.input_ids");
  auto r =
      run_flashrt("tokenize -m " + default_model() + " -p " + shell_quote("def fibonacci(n):\n"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, join_ids(ids, ' ') + "\n");
  // A folder holding just tokenizer.json is enough for the tokenizer commands.
  r = run_flashrt("tokenize -m " + trained_model_dir("pycoder-hybrid-12m") + "/tokenizer.json -p " +
                  shell_quote("def fibonacci(n):\n") + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("ids").get<std::vector<int32_t>>(), ids);
  EXPECT_EQ(j.at("pieces").size(), ids.size());
  r = run_flashrt("detokenize -m " + default_model() + " --ids " + join_ids(ids, ','));
  EXPECT_EQ(r.out, "def fibonacci(n):\n\n");
  r = run_flashrt("detokenize -m " + default_model() + " --ids 1,99999");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("99999"), std::string::npos) << r.out;
}

TEST(CliText, ChatTakesTurnsResetsAndExits) {
  const std::string input = temp_dir() + "/chat-input.txt";
  std::ofstream(input) << "def add(a, b):\n/reset\nimport os\n/exit\n";
  const auto r = run_flashrt("chat -m " + default_model() + " --temp 0 -n 16 < " + input);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("(conversation cleared)"), std::string::npos) << r.out;
  auto r2 = run_flashrt("chat -m " + default_model() + " --chat-template llama3 < /dev/null");
  EXPECT_EQ(r2.status, 1);
  EXPECT_NE(r2.out.find("chatml"), std::string::npos) << r2.out;
}

}  // namespace
}  // namespace flashrt::testing
