// Tokenizer throughput, one thread: encode (cold and warm word cache) and decode MB/s on a mixed
// corpus (the 624 Qwen3 reference texts: code, licences, docs, many scripts and emoji, plus the
// pycoder prompts and completions), and the time to load each tokenizer.json.
// Usage: bench_tokenize [SHARED_DIR]   (default: $FLASHRT_SHARED, else ../shared beside the source)
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) flashrt::fail("cannot open {}", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

std::string shared_dir(int argc, char** argv) {
  if (argc > 1) return argv[1];
  if (const char* env = std::getenv("FLASHRT_SHARED"); env && *env) return env;
  return (std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "shared")
      .string();
}

std::vector<std::string> corpus(const std::string& shared) {
  std::vector<std::string> texts =
      read_json(shared + "/reference/qwen3-tokenizer-cases.json").at("texts");
  for (const char* model : {"pycoder-hybrid-12m", "pycoder-dense-7m"}) {
    for (const auto& s : read_json(shared + "/models/" + model + "/samples.json")) {
      texts.push_back(s.at("prompt").get<std::string>() + s.at("completion").get<std::string>());
    }
  }
  return texts;
}

void bench(const std::string& name, const std::string& path, const std::vector<std::string>& texts,
           size_t bytes) {
  constexpr int kRuns = 7;
  std::vector<double> load, cold, warm, dec;
  std::vector<std::vector<int32_t>> ids(texts.size());
  flashrt::Tokenizer tok = flashrt::Tokenizer::from_hf_dir_or_file(path);
  for (int r = 0; r < 3; ++r) {
    auto t = Clock::now();
    tok = flashrt::Tokenizer::from_hf_dir_or_file(path);
    load.push_back(seconds_since(t));
  }
  size_t tokens = 0;
  for (int r = 0; r < 2 * kRuns; ++r) {
    const bool is_cold = r % 2 == 0;
    if (is_cold) tok.clear_cache();
    auto t = Clock::now();
    tokens = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      ids[i] = tok.encode(texts[i]);
      tokens += ids[i].size();
    }
    (is_cold ? cold : warm).push_back(seconds_since(t));
  }
  for (int r = 0; r < kRuns; ++r) {
    auto t = Clock::now();
    size_t out = 0;
    for (const auto& v : ids) out += tok.decode(v).size();
    dec.push_back(seconds_since(t));
    if (out == 0) flashrt::fail("empty decode");
  }
  const double mb = static_cast<double>(bytes) / 1e6;
  fmt::print(
      "| {:<22} | {:>7.0f} | {:>6} | {:>9.2f} | {:>7} | {:>16.1f} | {:>16.1f} | {:>11.1f} |\n",
      name, median(load) * 1e3, tok.vocab_size(), mb, tokens, mb / median(cold), mb / median(warm),
      mb / median(dec));
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string shared = shared_dir(argc, argv);
    const auto texts = corpus(shared);
    size_t bytes = 0;
    for (const auto& t : texts) bytes += t.size();
    fmt::print("tokenizer throughput, one thread, {} texts; medians of 7 runs (load: of 3)\n",
               texts.size());
    fmt::print("| {:<22} | {:>7} | {:>6} | {:>9} | {:>7} | {:>16} | {:>16} | {:>11} |\n",
               "tokenizer", "load ms", "vocab", "corpus MB", "tokens", "encode cold MB/s",
               "encode warm MB/s", "decode MB/s");
    bench("qwen3 (tokenizer.json)", shared + "/reference/qwen3-tokenizer", texts, bytes);
    bench("pycoder (8k BPE)", shared + "/models/pycoder-hybrid-12m", texts, bytes);
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_tokenize: {}\n", e.what());
    return 1;
  }
  return 0;
}
