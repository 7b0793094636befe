// flashrt capsule save / inspect / verify and run --capsule, and crash safety of save.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "cli/cli_runner.h"
#include "models/model_fixtures.h"

namespace flashrt::testing {
namespace {

std::string default_model() {
  return source_dir() + "/models/pycoder-hybrid-12m.gguf";
}

TEST(CliCapsule, SaveInspectVerifyAndContinue) {
  const std::string cap = temp_dir() + "/cli.cap";
  const std::string head = "'import os\nimport sys\n\n\n'", tail = "'class '";
  auto r = run_flashrt("capsule save -m " + default_model() + " -p " + head + " -o " + cap);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("saved"), std::string::npos) << r.out;

  r = run_flashrt("capsule inspect " + cap);
  ASSERT_EQ(r.status, 0) << r.out;
  for (const char* s :
       {"fingerprint:", "position:", "gdn.0.state", "attn.3.k", "meta.logits", "meta.rng"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;

  r = run_flashrt("capsule verify " + cap + " -m " + default_model());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("ok:"), std::string::npos) << r.out;
  r = run_flashrt("capsule verify " + cap + " -m " + trained_model_dir("pycoder-dense-7m"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("another model"), std::string::npos) << r.out;

  // Restoring the capsule and adding the rest of the prompt continues exactly like one prefill.
  const auto whole =
      run_flashrt("run -m " + default_model() +
                  " -p 'import os\nimport sys\n\n\nclass ' -n 24 --temp 0 --no-echo");
  const auto cont = run_flashrt("run -m " + default_model() + " --capsule " + cap + " -p " + tail +
                                " -n 24 --temp 0 --no-echo");
  ASSERT_EQ(whole.status, 0) << whole.out;
  ASSERT_EQ(cont.status, 0) << cont.out;
  EXPECT_EQ(cont.out, whole.out);
}

TEST(CliCapsule, KilledSaveNeverLeavesAFileUnderTheFinalName) {
  // Each payload write sleeps (test hook), so the writer is killed part-way through the file.
  const std::string cap = temp_dir() + "/killed.cap";
  for (int delay_ms : {5, 40, 120}) {
    std::filesystem::remove(cap);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::setenv("FLASHRT_CAPSULE_WRITE_DELAY_MS", "20", 1);
      ::execl(flashrt_binary().c_str(), "flashrt", "capsule", "save", "-m", default_model().c_str(),
              "--ids", "1,2,3,4,5,6,7,8", "-o", cap.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + delay_ms));
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
    if (WIFSIGNALED(st)) {
      EXPECT_FALSE(std::filesystem::exists(cap)) << "a partial capsule under the final name";
    } else {
      // It finished before the kill: then the file must be complete and valid.
      const auto r = run_flashrt("capsule verify " + cap + " -m " + default_model());
      EXPECT_EQ(r.status, 0) << r.out;
    }
  }
}

TEST(CliCapsule, BadCapsuleFilesAreMessages) {
  const std::string bad = temp_dir() + "/garbage.cap";
  FILE* f = std::fopen(bad.c_str(), "wb");
  std::fputs("definitely not a capsule, but long enough to have a header of sixty-four bytes......",
             f);
  std::fclose(f);
  auto r = run_flashrt("capsule inspect " + bad);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("not a flashrt capsule"), std::string::npos) << r.out;
  r = run_flashrt("run -m " + default_model() + " --capsule " + bad);
  EXPECT_EQ(r.status, 1);
  r = run_flashrt("capsule inspect /nonexistent.cap");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("cannot open"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace flashrt::testing
