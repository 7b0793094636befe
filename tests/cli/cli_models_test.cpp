// The `flashrt` command end to end on the reference models: run, logits, convert, info, errors.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "cli/cli_runner.h"
#include "formats/gguf.h"
#include "formats/npy.h"
#include "models/model_fixtures.h"

namespace flashrt::testing {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

TEST(CliModels, RunGreedyPrintsTheReferenceContinuation) {
  for (const char* name : {"qwen3", "qwen35"}) {
    const std::string dir = ref_model_dir(name);
    const Reference ref(dir);
    const auto ids = ref.ids("T7.input_ids");
    const auto greedy = ref.ids("T7.greedy");
    const auto r =
        run_flashrt("run -m " + dir + " --ids " + join_ids(ids, ',') + " -n " +
                    std::to_string(greedy.size()) + " --temp 0 --ignore-eos --print-ids");
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(trim(r.out), join_ids(greedy, ' ')) << name;
  }
}

TEST(CliModels, LogitsWritesNpyMatchingTheReference) {
  const std::string dir = ref_model_dir("qwen3");
  const Reference ref(dir);
  const auto ids = ref.ids("T96.input_ids");
  std::vector<int64_t> shape;
  const auto want = ref.floats("T96.logits", &shape);
  const std::string out = temp_dir() + "/cli-logits.npy";
  const auto r = run_flashrt("logits -m " + dir + " --ids " + join_ids(ids, ',') + " -o " + out);
  ASSERT_EQ(r.status, 0) << r.out;
  const NpyArray a = read_npy(out);
  EXPECT_EQ(a.descr, "<f4");
  EXPECT_EQ(a.shape, shape);
  ASSERT_EQ(a.data.size(), want.size() * 4);
  const auto* got = reinterpret_cast<const float*>(a.data.data());
  EXPECT_LE(max_abs_diff(got, want.data(), want.size()),
            2e-4f * std::max(1.0f, max_abs(want.data(), want.size())));
}

TEST(CliModels, ConvertThenRunFromGguf) {
  const std::string dir = ref_model_dir("qwen35");
  const Reference ref(dir);
  const auto ids = ref.ids("T96.input_ids");
  const auto greedy = ref.ids("T96.greedy");
  const std::string gguf = temp_dir() + "/cli-qwen35-bf16.gguf";
  auto r = run_flashrt("convert " + dir + " -o " + gguf + " --type bf16");
  ASSERT_EQ(r.status, 0) << r.out;
  r = run_flashrt("run -m " + gguf + " --ids " + join_ids(ids, ',') + " -n " +
                  std::to_string(greedy.size()) + " --temp 0 --ignore-eos --print-ids");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(trim(r.out), join_ids(greedy, ' '));
  r = run_flashrt("info -m " + gguf);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("architecture: qwen3_5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3 gated deltanet"), std::string::npos) << r.out;
}

TEST(CliModels, QuantizeWritesWhatConvertWrites) {
  const std::string dir = ref_model_dir("qwen3");
  const std::string a = temp_dir() + "/cli-qwen3-quantize.gguf",
                    b = temp_dir() + "/cli-qwen3-convert.gguf";
  auto r = run_flashrt("quantize " + dir + " " + a + " --type q8_0");
  ASSERT_EQ(r.status, 0) << r.out;
  r = run_flashrt("convert " + dir + " -o " + b + " --type q8_0");
  ASSERT_EQ(r.status, 0) << r.out;
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  const std::string da((std::istreambuf_iterator<char>(fa)), {}),
      db((std::istreambuf_iterator<char>(fb)), {});
  EXPECT_GT(da.size(), 0u);
  EXPECT_TRUE(da == db) << "quantize and convert --type q8_0 wrote different files";
  r = run_flashrt("quantize " + dir + " " + a + " --type q3_k");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("q3_k"), std::string::npos) << r.out;
}

// K-quants need rows of whole 256-value blocks: the hybrid's 320- and 896-wide rows fall back to
// q4_0 (as llama-quantize falls back), the dense model's 256/768-wide rows stay q4_k; vectors f32.
TEST(CliModels, QuantizeToKQuantsFallsBackLikeLlamaQuantize) {
  for (const std::string model : {"pycoder-hybrid-12m", "pycoder-dense-7m"}) {
    const std::string out = temp_dir() + "/cli-" + model + "-q4_k.gguf";
    auto r = run_flashrt("quantize " + trained_model_dir(model) + " " + out + " --type q4_k");
    ASSERT_EQ(r.status, 0) << r.out;
    const auto g = GGUFFile::open(out);
    int kq = 0, q4 = 0;
    for (const auto& t : g->tensors()) {
      SCOPED_TRACE(model + " " + t.name);
      if (t.shape.size() == 1 || t.name.find("ssm_conv1d") != std::string::npos) {
        EXPECT_EQ(t.dtype, DType::F32);  // vectors and the 4-tap conv kernels stay f32
        continue;
      }
      const int64_t cols = t.shape.back();
      EXPECT_EQ(t.dtype, cols % 256 == 0 ? DType::Q4_K : DType::Q4_0);
      (t.dtype == DType::Q4_K ? kq : q4)++;
    }
    if (model == "pycoder-dense-7m") {
      EXPECT_GT(kq, 0);
      EXPECT_EQ(q4, 0);
    } else {
      EXPECT_GT(q4, 0);
    }
    r = run_flashrt("run -m " + out + " -p 'def add(a, b):' -n 8 --temp 0");
    EXPECT_EQ(r.status, 0) << r.out;
  }
}

TEST(CliModels, KvTypeF16KeepsTheGreedyContinuation) {
  const std::string dir = ref_model_dir("qwen3");
  const Reference ref(dir);
  const auto ids = ref.ids("T96.input_ids");
  const auto greedy = ref.ids("T96.greedy");
  auto r = run_flashrt("run -m " + dir + " --kv-type f16 --ids " + join_ids(ids, ',') + " -n " +
                       std::to_string(greedy.size()) + " --temp 0 --ignore-eos --print-ids");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(trim(r.out), join_ids(greedy, ' '));
  r = run_flashrt("run -m " + dir + " --kv-type q8_0 --ids 1,2 -n 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("kv-type"), std::string::npos) << r.out;
}

TEST(CliModels, InfoReportsSizesAndState) {
  const auto r = run_flashrt("info -m " + trained_model_dir("pycoder-hybrid-12m"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("12.21 M"), std::string::npos) << r.out;
  // 2 attention layers x (K + V) x 1 KV head x 64 dims x 4 bytes
  EXPECT_NE(r.out.find("1024 bytes per token"), std::string::npos) << r.out;
}

TEST(CliModels, ErrorsAreMessagesNotCrashes) {
  auto r = run_flashrt("run -m /nonexistent/model --ids 1,2");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("no such model"), std::string::npos) << r.out;

  const std::string bad = temp_dir() + "/not-a-model.gguf";
  FILE* f = std::fopen(bad.c_str(), "wb");
  std::fputs("this is not gguf", f);
  std::fclose(f);
  r = run_flashrt("info -m " + bad);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("not a GGUF file"), std::string::npos) << r.out;

  r = run_flashrt("run -m " + ref_model_dir("qwen3") + " --ids 1,99999");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("outside the vocabulary"), std::string::npos) << r.out;

  r = run_flashrt("run -m " + ref_model_dir("qwen3") + " --ids 1,2,x");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("not a token id"), std::string::npos) << r.out;

  r = run_flashrt("run -m " + ref_model_dir("qwen3") + " --ids 1,2,3 --ctx 2");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("context full"), std::string::npos) << r.out;
}

TEST(CliModels, HelpListsEveryCommand) {
  const auto r = run_flashrt("--help");
  EXPECT_EQ(r.status, 0);
  for (const char* c : {"run", "logits", "convert", "info"})
    EXPECT_NE(r.out.find(c), std::string::npos) << c;
}

}  // namespace
}  // namespace flashrt::testing
