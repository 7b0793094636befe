// bench_pp_tg: llama-bench's two measurements for flashrt, so bench/vs-llamacpp can put them side
// by side: "pp N" = tokens/s processing an N-token prompt from an empty context (one batch), and
// "tg N" = tokens/s generating N tokens one at a time, after an untimed prefix of --depth tokens.
// Prints one JSON object per line: {"test":"pp512","depth":0,"tps":[...],"avg":...}
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>

#include "core/thread_pool.h"
#include "engine/session.h"

using namespace flashrt;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  CLI::App app{"prompt processing / token generation rates"};
  std::string model_path, device = "cpu";
  int threads = 2, pp = 512, tg = 128, depth = 0, reps = 1;
  app.add_option("-m,--model", model_path)->required();
  app.add_option("-t,--threads", threads);
  app.add_option("-p,--n-prompt", pp);
  app.add_option("-n,--n-gen", tg);
  app.add_option("-d,--depth", depth);
  app.add_option("-r,--repetitions", reps);
  app.add_option("--device", device);
  std::string kv = "f32";
  app.add_option("--kv-type", kv, "KV cache type (llama.cpp's default is f16)")
      ->check(CLI::IsMember({"f32", "f16"}));
  CLI11_PARSE(app, argc, argv);
  ThreadPool::set_default_threads(threads);
  auto be = make_backend(device);
  auto model = load_model(model_path, *be);
  SessionOptions so;
  so.max_ctx = depth + std::max(pp, tg) + 8;
  so.max_batch = std::max(pp, 512);
  so.kv_dtype = kv == "f16" ? DType::F16 : DType::F32;
  Session s(*model, *be, so);
  std::mt19937 g(7);
  auto ids = [&](int n) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (auto& t : v) t = static_cast<int32_t>(g() % static_cast<uint32_t>(model->cfg.vocab));
    return v;
  };
  auto report = [&](const std::string& test, const std::vector<double>& tps) {
    const double avg =
        std::accumulate(tps.begin(), tps.end(), 0.0) / static_cast<double>(tps.size());
    std::printf("{\"test\":\"%s\",\"depth\":%d,\"threads\":%d,\"avg\":%.3f,\"tps\":[%s]}\n",
                test.c_str(), depth, threads, avg,
                fmt::format("{:.3f}", fmt::join(tps, ",")).c_str());
    std::fflush(stdout);
  };
  // Warm-up: touch the weights once.
  s.append(ids(8));
  if (pp > 0) {
    std::vector<double> r;
    for (int i = 0; i < reps; ++i) {
      s.reset();
      if (depth) s.append(ids(depth));
      const auto prompt = ids(pp);
      const auto t0 = Clock::now();
      s.append(prompt);
      be->synchronize();
      r.push_back(pp / std::chrono::duration<double>(Clock::now() - t0).count());
    }
    report(fmt::format("pp{}", pp), r);
  }
  if (tg > 0) {
    std::vector<double> r;
    const SamplerParams greedy = SamplerParams::greedy();
    for (int i = 0; i < reps; ++i) {
      s.reset();
      s.append(ids(depth > 0 ? depth : 1));
      const auto t0 = Clock::now();
      s.generate(tg, greedy, {});
      s.append({});  // feed the last token too: tg counts tokens evaluated
      be->synchronize();
      r.push_back(tg / std::chrono::duration<double>(Clock::now() - t0).count());
    }
    report(fmt::format("tg{}", tg), r);
  }
  return 0;
}
