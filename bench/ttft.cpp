// bench_ttft: time to first token from a cold prefill vs from a restored capsule, side by side in
// one run, at several context lengths, for the host and disk tiers; plus snapshot/restore time
// against bytes copied and this machine's memcpy bandwidth.
//
//   bench_ttft -m MODEL [--lens 512,1024,...] [--threads N] [--out-md FILE] [--out-svg FILE]
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "capsule/capsule_file.h"
#include "core/thread_pool.h"
#include "engine/session.h"

using namespace flashrt;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// memcpy bandwidth (bytes copied per second) over a buffer far larger than the caches.
double memcpy_gbps() {
  const size_t n = size_t{512} << 20;
  std::vector<uint8_t> a(n, 1), b(n, 2);
  std::vector<double> t;
  for (int i = 0; i < 5; ++i) {
    const auto s = Clock::now();
    std::memcpy(b.data(), a.data(), n);
    t.push_back(ms_since(s));
  }
  return n / (median(t) * 1e6);
}

struct Row {
  int64_t len;
  double cold, restore_host, restore_disk, snapshot_host, save_disk, restore_copy;
  uint64_t bytes, file_bytes;
};

std::string svg_plot(const std::vector<Row>& rows, const std::string& title) {
  // TTFT vs context length, log-log, three series.
  const double W = 640, H = 400, L = 70, R = 20, T = 40, B = 50;
  double ymin = 1e9, ymax = 0;
  for (const auto& r : rows)
    for (double v : {r.cold, r.restore_host, r.restore_disk})
      ymin = std::min(ymin, v), ymax = std::max(ymax, v);
  ymin = std::pow(10, std::floor(std::log10(std::max(ymin, 1e-3))));
  ymax = std::pow(10, std::ceil(std::log10(ymax)));
  const double xmin = std::log2(rows.front().len), xmax = std::log2(rows.back().len);
  auto X = [&](double len) {
    return L + (std::log2(len) - xmin) / std::max(1e-9, xmax - xmin) * (W - L - R);
  };
  auto Y = [&](double ms) {
    return H - B -
           (std::log10(ms) - std::log10(ymin)) / (std::log10(ymax) - std::log10(ymin)) *
               (H - T - B);
  };
  std::string s = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-family='sans-serif' "
      "font-size='12'>\n",
      W, H);
  s += fmt::format(
      "<rect width='{}' height='{}' fill='white'/><text x='{}' y='22' font-size='14'>{}</text>\n",
      W, H, L, title);
  for (double y = ymin; y <= ymax * 1.001; y *= 10)
    s += fmt::format(
        "<line x1='{}' x2='{}' y1='{:.1f}' y2='{:.1f}' stroke='#ddd'/><text x='{}' y='{:.1f}' "
        "text-anchor='end'>{} ms</text>\n",
        L, W - R, Y(y), Y(y), L - 6, Y(y) + 4, y);
  for (const auto& r : rows)
    s += fmt::format("<text x='{:.1f}' y='{}' text-anchor='middle'>{}</text>\n", X(r.len),
                     H - B + 18,
                     r.len >= 1024 ? fmt::format("{}k", r.len / 1024) : std::to_string(r.len));
  s += fmt::format("<text x='{}' y='{}' text-anchor='middle'>context length (tokens)</text>\n",
                   (L + W - R) / 2, H - 12);
  const struct {
    const char* name;
    const char* color;
    double Row::*field;
  } series[] = {{"cold prefill", "#d62728", &Row::cold},
                {"restore from host memory", "#2ca02c", &Row::restore_host},
                {"restore from capsule file", "#1f77b4", &Row::restore_disk}};
  int k = 0;
  for (const auto& se : series) {
    std::string pts;
    for (const auto& r : rows) pts += fmt::format("{:.1f},{:.1f} ", X(r.len), Y(r.*se.field));
    s += fmt::format("<polyline fill='none' stroke='{}' stroke-width='2' points='{}'/>\n", se.color,
                     pts);
    for (const auto& r : rows)
      s += fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='3' fill='{}'/>\n", X(r.len),
                       Y(r.*se.field), se.color);
    s += fmt::format(
        "<rect x='{}' y='{}' width='12' height='3' fill='{}'/><text x='{}' y='{}'>{}</text>\n",
        L + 10, T + 10 + 16 * k, se.color, L + 28, T + 15 + 16 * k, se.name);
    ++k;
  }
  return s + "</svg>\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Cold-prefill TTFT vs capsule-restore TTFT"};
  std::string model_path, lens_s = "512,1024,2048,4096,8192,16384", out_md, out_svg, label;
  int threads = 0, repeats = 3;
  app.add_option("-m,--model", model_path)->required();
  app.add_option("--lens", lens_s);
  app.add_option("-t,--threads", threads);
  app.add_option("--repeats", repeats, "runs per measurement for lengths up to 2048 (longer: 1)");
  app.add_option("--out-md", out_md);
  app.add_option("--out-svg", out_svg);
  app.add_option("--label", label);
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) ThreadPool::set_default_threads(threads);
  std::vector<int64_t> lens;
  for (size_t p = 0; p < lens_s.size();) {
    const size_t q = lens_s.find(',', p);
    lens.push_back(std::stoll(lens_s.substr(p, q - p)));
    p = q == std::string::npos ? lens_s.size() : q + 1;
  }
  const auto be = make_cpu_backend();
  const auto model = load_model(model_path, *be);
  if (label.empty()) label = std::filesystem::path(model_path).filename().string();
  const double mbw = memcpy_gbps();
  std::fprintf(stderr, "%s: %s, %zu threads, memcpy %.1f GB/s\n", label.c_str(),
               model->cfg.arch.c_str(), static_cast<size_t>(ThreadPool::global().size()), mbw);

  std::mt19937 rng(42);
  std::vector<Row> rows;
  const std::string file = (std::filesystem::temp_directory_path() / "bench-ttft.cap").string();
  const SamplerParams greedy = SamplerParams::greedy();
  for (int64_t len : lens) {
    std::vector<int32_t> prompt(static_cast<size_t>(len));
    for (auto& t : prompt)
      t = static_cast<int32_t>(rng() % static_cast<uint32_t>(model->cfg.vocab));
    SessionOptions so;
    so.max_ctx = len + 8;
    const int reps = len <= 2048 ? repeats : 1;
    std::vector<double> cold, rh, rd, sh, sd, rc;
    Row row{};
    row.len = len;
    Session s(*model, *be, so), t(*model, *be, so);  // allocated up front, outside the timings
    for (int r = 0; r < reps; ++r) {
      s.reset();
      auto c0 = Clock::now();
      s.append(prompt);
      const int32_t first_cold = s.next_token(greedy);
      cold.push_back(ms_since(c0));
      // The boundary after the prompt, in memory and on disk.
      s.reset();
      s.append(prompt);
      c0 = Clock::now();
      const Capsule host = s.snapshot(Tier::kHost);
      sh.push_back(ms_since(c0));
      c0 = Clock::now();
      s.snapshot(Tier::kDisk, file);
      sd.push_back(ms_since(c0));
      row.bytes = host.payload_bytes();
      row.file_bytes = std::filesystem::file_size(file);
      t.reset();
      c0 = Clock::now();
      t.restore(host);
      rc.push_back(ms_since(c0));
      const int32_t first_host = t.next_token(greedy);
      rh.push_back(ms_since(c0));
      t.reset();
      c0 = Clock::now();
      t.restore(read_capsule_file(file));
      const int32_t first_disk = t.next_token(greedy);
      rd.push_back(ms_since(c0));
      if (first_cold != first_host || first_cold != first_disk) {
        std::fprintf(stderr, "first tokens differ at %lld: %d %d %d\n", static_cast<long long>(len),
                     first_cold, first_host, first_disk);
        return 1;
      }
    }
    row.cold = median(cold), row.restore_host = median(rh), row.restore_disk = median(rd);
    row.snapshot_host = median(sh), row.save_disk = median(sd), row.restore_copy = median(rc);
    rows.push_back(row);
    std::fprintf(
        stderr,
        "%6lld tokens: cold %.1f ms, restore host %.2f ms, restore disk %.2f ms (%.1f MB)\n",
        static_cast<long long>(len), row.cold, row.restore_host, row.restore_disk, row.bytes / 1e6);
  }
  std::filesystem::remove(file);

  std::string md = fmt::format("#### {} ({}, {} threads; memcpy {:.1f} GB/s)\n\n", label,
                               model->cfg.arch, ThreadPool::global().size(), mbw);
  md +=
      "| context | cold prefill TTFT | restore TTFT (host) | speed-up | restore TTFT (disk) | "
      "speed-up | state | snapshot (host) | restore copy | copy GB/s (vs memcpy) | save to disk "
      "|\n";
  md += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows)
    md += fmt::format(
        "| {} | {:.1f} ms | {:.2f} ms | {:.0f}x | {:.2f} ms | {:.0f}x | {:.1f} MB | {:.2f} ms | "
        "{:.2f} ms | {:.1f} ({:.0f}%) | {:.1f} ms |\n",
        r.len, r.cold, r.restore_host, r.cold / r.restore_host, r.restore_disk,
        r.cold / r.restore_disk, r.bytes / 1e6, r.snapshot_host, r.restore_copy,
        r.bytes / (r.restore_copy * 1e6), 100 * r.bytes / (r.restore_copy * 1e6) / mbw,
        r.save_disk);
  std::printf("%s\n", md.c_str());
  if (!out_md.empty()) std::ofstream(out_md) << md;
  if (!out_svg.empty()) std::ofstream(out_svg) << svg_plot(rows, "TTFT vs context: " + label);
  return 0;
}
