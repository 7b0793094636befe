// bench_batched: llama-batched-bench's measurement for flashrt. For each batch size B: B sequences
// each prefill an --npp-token prompt (packed into steps of at most --batch rows), then each
// generates --ntg tokens greedily, all B advancing in one forward step per token, through the
// engine's StepRunner as the server's scheduler drives it. Prints one JSON object per B:
//   {"B":8,"pp":128,"tg":128,"t_pp":...,"s_pp":...,"t_tg":...,"s_tg":...,"itl_ms":...}
// s_pp / s_tg are aggregate tokens/s (prompt tokens of all B / generated tokens of all B per
// second), itl_ms the time of one decode step (every sequence's inter-token latency).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <random>

#include "core/thread_pool.h"
#include "engine/session.h"
#include "engine/step_runner.h"

using namespace flashrt;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> v;
  size_t p = 0;
  while (p < s.size()) {
    const size_t q = s.find(',', p);
    v.push_back(std::stoi(s.substr(p, q - p)));
    p = q == std::string::npos ? s.size() : q + 1;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"batched prefill and decode rates (like llama-batched-bench)"};
  std::string model_path, device = "cpu", npl_s = "1,2,4,8,16", kv = "f16";
  int threads = 2, npp = 128, ntg = 128, batch = 2048;
  app.add_option("-m,--model", model_path)->required();
  app.add_option("-t,--threads", threads)->capture_default_str();
  app.add_option("--npp", npp, "prompt tokens per sequence")->capture_default_str();
  app.add_option("--ntg", ntg, "generated tokens per sequence")->capture_default_str();
  app.add_option("--npl", npl_s, "batch sizes (sequences)")->capture_default_str();
  app.add_option("-b,--batch", batch, "rows per prefill step")->capture_default_str();
  app.add_option("--kv-type", kv, "KV cache type (llama.cpp's default is f16)")
      ->check(CLI::IsMember({"f32", "f16"}))
      ->capture_default_str();
  app.add_option("-d,--device", device)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  ThreadPool::set_default_threads(threads);
  auto be = make_backend(device);
  auto model = load_model(model_path, *be);
  std::mt19937 g(7);
  auto random_ids = [&](int n) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (auto& t : v) t = static_cast<int32_t>(g() % static_cast<uint32_t>(model->cfg.vocab));
    return v;
  };
  const SamplerParams greedy = SamplerParams::greedy();

  for (const int B : parse_list(npl_s)) {
    SessionOptions so;
    so.max_ctx = npp + ntg + 8;
    so.kv_dtype = kv == "f16" ? DType::F16 : DType::F32;
    so.max_batch = 8;  // the sessions' own runners are not used here
    std::vector<std::unique_ptr<Session>> seqs;
    for (int i = 0; i < B; ++i) seqs.push_back(std::make_unique<Session>(*model, *be, so));
    StepRunner runner(*model, *be, seqs[0]->arena().layout_ptr(), std::max(batch, B), B);
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < B; ++i) prompts.push_back(random_ids(npp));
    std::vector<std::vector<int32_t>> bufs(static_cast<size_t>(B));

    // One warm-up step (weights touched, scratch sized).
    {
      Session w(*model, *be, so);
      w.append(random_ids(4));
    }

    // Prefill: steps of at most `batch` rows, taking the sequences' prompts in order.
    const auto t_pp0 = Clock::now();
    std::vector<size_t> fed(static_cast<size_t>(B), 0);
    for (size_t done = 0; done < static_cast<size_t>(B);) {
      std::vector<StepInput> in;
      std::vector<int> who;
      int rows = 0;
      for (int i = 0; i < B && rows < batch; ++i) {
        const size_t k = static_cast<size_t>(i);
        if (fed[k] == prompts[k].size()) continue;
        const size_t n = std::min(prompts[k].size() - fed[k], static_cast<size_t>(batch - rows));
        in.push_back(seqs[k]->step_input(std::span(prompts[k]).subspan(fed[k], n), bufs[k]));
        who.push_back(i);
        rows += static_cast<int>(n);
      }
      runner.run(in);
      for (size_t x = 0; x < in.size(); ++x) {
        const size_t k = static_cast<size_t>(who[x]);
        seqs[k]->step_done(in[x], false);
        fed[k] += in[x].ids.size();
        if (fed[k] == prompts[k].size()) ++done;
      }
    }
    be->synchronize();
    const double t_pp = seconds_since(t_pp0);

    // Decode: ntg steps, each feeding every sequence's last sampled token (llama-batched-bench
    // counts tokens evaluated), each sequence then sampling its next one.
    for (auto& s : seqs) s->sample(greedy);
    const auto t_tg0 = Clock::now();
    for (int t = 0; t < ntg; ++t) {
      std::vector<StepInput> in;
      for (int i = 0; i < B; ++i)
        in.push_back(seqs[static_cast<size_t>(i)]->step_input({}, bufs[static_cast<size_t>(i)]));
      runner.run(in);
      for (int i = 0; i < B; ++i) {
        seqs[static_cast<size_t>(i)]->step_done(in[static_cast<size_t>(i)], true);
        seqs[static_cast<size_t>(i)]->sample(greedy);
      }
    }
    be->synchronize();
    const double t_tg = seconds_since(t_tg0);
    std::printf(
        "{\"B\":%d,\"pp\":%d,\"tg\":%d,\"threads\":%d,\"t_pp\":%.4f,\"s_pp\":%.2f,\"t_tg\":%.4f,"
        "\"s_tg\":%.2f,\"itl_ms\":%.3f}\n",
        B, npp, ntg, threads, t_pp, B * npp / t_pp, t_tg, B * ntg / t_tg, t_tg / ntg * 1e3);
    std::fflush(stdout);
  }
  return 0;
}
