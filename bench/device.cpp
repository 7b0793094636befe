// bench_device: decode and prefill speed, device-tier snapshot/restore and TTFT (cold prefill vs
// restore) for one model on one backend, side by side in one run. Used by bench/gpu/run.sh on the
// GPU machine (-d cuda) and usable on the CPU.
//
//   bench_device -m MODEL -d cuda [--decode 256] [--prefill 2048,16384] [--ttft
//   2048,4096,8192,16384]
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>

#include "core/thread_pool.h"
#include "engine/session.h"

using namespace flashrt;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  for (size_t p = 0; p < s.size();) {
    const size_t q = s.find(',', p);
    out.push_back(std::stoll(s.substr(p, q - p)));
    p = q == std::string::npos ? s.size() : q + 1;
  }
  return out;
}

std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = static_cast<int32_t>(g() % static_cast<uint32_t>(vocab));
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Decode / prefill / capsule benchmark on one backend"};
  std::string model_path, device = "cuda", prefill_s = "2048,16384",
                          ttft_s = "2048,4096,8192,16384", out_md, label;
  int decode = 256, threads = 0;
  app.add_option("-m,--model", model_path)->required();
  app.add_option("-d,--device", device);
  app.add_option("--decode", decode, "tokens to decode for the decode rate");
  app.add_option("--prefill", prefill_s);
  app.add_option("--ttft", ttft_s);
  app.add_option("-t,--threads", threads);
  app.add_option("--out-md", out_md);
  app.add_option("--label", label);
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) ThreadPool::set_default_threads(threads);

  auto be = make_backend(device);
  auto model = load_model(model_path, *be);
  const auto& c = model->cfg;
  if (label.empty()) label = model_path;
  const auto prefill_lens = parse_list(prefill_s), ttft_lens = parse_list(ttft_s);
  int64_t max_len = 512;
  for (auto l : prefill_lens) max_len = std::max(max_len, l);
  for (auto l : ttft_lens) max_len = std::max(max_len, l);
  SessionOptions so;
  so.max_ctx = max_len + decode + 64;
  so.max_batch = 2048;
  Session s(*model, *be, so), t(*model, *be, so);
  const SamplerParams greedy = SamplerParams::greedy();
  auto sync_ms = [&](Clock::time_point t0) {
    be->synchronize();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  };

  // Device copy bandwidth (bytes read + written per second) over a 1 GiB buffer.
  double copy_gbps = 0;
  {
    const size_t n = size_t{1} << 30;
    auto a = be->alloc(n), b = be->alloc(n);
    be->fill_zero(a.get(), n);
    std::vector<double> ts;
    for (int i = 0; i < 6; ++i) {
      const auto t0 = Clock::now();
      be->copy(b.get(), a.get(), n);
      ts.push_back(sync_ms(t0));
    }
    copy_gbps = 2.0 * n / (median(ts) * 1e6);
  }

  // Decode at batch 1 after a short prompt (the first steps capture the decode graph).
  s.append(random_ids(32, c.vocab, 1));
  s.generate(16, greedy, {});
  auto t0 = Clock::now();
  const auto r = s.generate(decode, greedy, {});
  const double decode_ms = sync_ms(t0);
  const double tps = r.tokens.size() / (decode_ms / 1e3);
  // Bytes a decode step must read: every weight once, plus the live KV rows.
  size_t per_token = 0, fixed = 0;
  model->state_bytes(&per_token, &fixed);
  const double step_bytes =
      static_cast<double>(model->weight_bytes()) + fixed + per_token * (48.0 + decode / 2.0);
  const double achieved = step_bytes * tps / 1e9;

  std::string md =
      fmt::format("#### {} on {} ({} {:.0f} M params, {:.2f} GB of weights)\n\n", label, device,
                  c.arch, model->param_count() / 1e6, model->weight_bytes() / 1e9);
  md += fmt::format("- device copy bandwidth: {:.0f} GB/s (read + write)\n", copy_gbps);
  md += fmt::format(
      "- decode, batch 1: **{:.1f} tokens/s** ({:.3f} ms/token); {:.0f} GB/s of weights+state read "
      "= {:.0f}% of copy bandwidth\n",
      tps, decode_ms / r.tokens.size(), achieved, 100 * achieved / copy_gbps);

  // Prefill rates.
  s.reset();
  s.append(random_ids(512, c.vocab, 2));  // warm-up
  for (int64_t len : prefill_lens) {
    s.reset();
    const auto ids = random_ids(len, c.vocab, 3);
    t0 = Clock::now();
    s.append(ids);
    const double ms = sync_ms(t0);
    md += fmt::format("- prefill {} tokens: {:.1f} ms = **{:.0f} tokens/s**\n", len, ms,
                      len / (ms / 1e3));
  }

  // Device-tier capsules and TTFT.
  md +=
      "\n| context | cold prefill TTFT | restore TTFT (device tier) | speed-up | state bytes | "
      "snapshot | restore | restore GB/s |\n";
  md += "|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (int64_t len : ttft_lens) {
    const auto ids = random_ids(len, c.vocab, 4);
    std::vector<double> cold, snap, rest, ttft;
    int32_t first_cold = -1, first_rest = -2;
    for (int rep = 0; rep < 3; ++rep) {
      s.reset();
      t0 = Clock::now();
      s.append(ids);
      first_cold = s.next_token(greedy);
      cold.push_back(sync_ms(t0));
    }
    s.reset();
    s.append(ids);
    be->synchronize();
    Capsule cap;
    for (int rep = 0; rep < 20; ++rep) {
      t0 = Clock::now();
      cap = s.snapshot(Tier::kDevice);
      snap.push_back(sync_ms(t0));
    }
    for (int rep = 0; rep < 20; ++rep) {
      t.reset();
      be->synchronize();
      t0 = Clock::now();
      t.restore(cap);
      rest.push_back(sync_ms(t0));
      t.reset();
      be->synchronize();
      t0 = Clock::now();
      t.restore(cap);
      first_rest = t.next_token(greedy);
      ttft.push_back(sync_ms(t0));
    }
    if (first_cold != first_rest)
      std::fprintf(stderr, "WARNING: first token differs at %lld\n", static_cast<long long>(len));
    const double bytes = static_cast<double>(cap.payload_bytes());
    md += fmt::format(
        "| {} | {:.2f} ms | {:.3f} ms | {:.0f}x | {:.1f} MB | {:.3f} ms | {:.3f} ms | {:.0f} |\n",
        len, median(cold), median(ttft), median(cold) / median(ttft), bytes / 1e6, median(snap),
        median(rest), bytes / (median(rest) * 1e6));
  }
  std::printf("%s\n", md.c_str());
  if (!out_md.empty()) std::ofstream(out_md) << md;
  return 0;
}
