// Options a user gets wrong: each is refused with a message naming it, before any work, instead of
// being accepted silently (or, for -t, slowing the run down 13x).
#include <gtest/gtest.h>

#include <filesystem>

#include "cli/cli_runner.h"
#include "test_paths.h"

namespace flashrt::testing {
namespace {

std::string model() {
  return source_dir() + "/models/pycoder-hybrid-12m.gguf";
}

TEST(CliOptions, NonsenseValuesAreRefusedNamingTheOption) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"run -m " + model() + " --ids 1,2 -n -1", "-n"},
      {"run -m " + model() + " --ids 1,2 --temp -1", "--temp"},
      {"run -m " + model() + " --ids 1,2 --top-p 5", "(0, 1]"},
      {"run -m " + model() + " --ids 1,2 --top-p 0", "(0, 1]"},
      {"run -m " + model() + " --ids 1,2 --min-p 2", "--min-p"},
      {"run -m " + model() + " --ids 1,2 --ctx 0", "--ctx"},
      {"run -m " + model() + " --ids 1,,2", "empty item"},
      {"run -m " + model() + " --ids 1,2,", "ends with a comma"},
      {"run -m " + model() + " --ids 1,2 -t 0", "--threads"},
      {"serve -m " + model() + " --port 99999", "--port"},
      {"serve -m " + model() + " --http-threads 0", "--http-threads"},
  };
  for (const auto& [args, needle] : bad) {
    const CommandResult r = run_flashrt(args);
    EXPECT_NE(r.status, 0) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << args << "\n" << r.out;
  }
}

TEST(CliOptions, TooManyThreadsAreCappedToTheCores) {
  const CommandResult r = run_flashrt("run -m " + model() + " --ids 1,2,3 -n 2 --print-ids -t 512");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("more than the"), std::string::npos) << r.out;
}

TEST(CliOptions, AFullContextIsSaid) {
  const CommandResult r =
      run_flashrt("run -m " + model() + " --ids 1,2,3 --ctx 8 -n 100 --print-ids --ignore-eos");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("the context (--ctx 8) is full"), std::string::npos) << r.out;
}

TEST(CliOptions, OutputPathsAreCheckedBeforeAnyWork) {
  const std::string dir = ::testing::TempDir();
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"logits -m " + model() + " --ids 1,2 -o " + dir + "/missing-dir/x.npy", "does not exist"},
      {"logits -m " + model() + " --ids 1,2 -o " + dir, "is a directory"},
      {"convert " + model() + " -o " + dir, "is a directory"},
      {"capsule save -m " + model() + " -p x -o " + dir, "is a directory"},
  };
  for (const auto& [args, needle] : bad) {
    const CommandResult r = run_flashrt(args);
    EXPECT_NE(r.status, 0) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << args << "\n" << r.out;
  }
  EXPECT_TRUE(std::filesystem::exists(model()));
}

TEST(CliOptions, TinyRandomModelsTakeTheTokenizersVocabularyAndRunFromText) {
  const std::string out = ::testing::TempDir() + "/tiny-with-tokenizer.gguf";
  const CommandResult made =
      run_flashrt("make-model --arch qwen3 --shape tiny --tokenizer " + model() + " -o " + out);
  ASSERT_EQ(made.status, 0) << made.out;
  EXPECT_NE(made.out.find("sized to the tokenizer's 8192 tokens"), std::string::npos) << made.out;
  const CommandResult r = run_flashrt("run -m " + out + " -p 'def f():' -n 3 --temp 0");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.rfind("def f():", 0), 0u) << r.out;
}

}  // namespace
}  // namespace flashrt::testing
