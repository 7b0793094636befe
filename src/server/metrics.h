// Server metrics in Prometheus' text format: request counts by route and status, TTFT and
// inter-token latency histograms, token counts, prefix-cache and session counters. Updated from the
// HTTP threads and the scheduler thread; rendering takes a consistent copy.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace flashrt::server {

class Histogram {
 public:
  static constexpr std::array<double, 16> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04,
                                                     0.08,  0.16,   0.32,  0.64, 1.28, 2.56,
                                                     5.12,  10.24,  20.48, 40.96};
  void observe(double seconds);
  // Prometheus lines for `name` (bucket, sum, count).
  std::string render(const std::string& name, const std::string& help) const;
  uint64_t count() const;

 private:
  mutable std::mutex mu_;
  std::array<uint64_t, kBounds.size() + 1> buckets_{};
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Gauges read from the scheduler when /metrics is rendered.
struct SchedulerGauges {
  int64_t slots = 0, slots_busy = 0, sessions = 0, sessions_suspended = 0, queued_jobs = 0;
  int64_t cache_bytes = 0, cache_max_bytes = 0, cache_entries = 0, cache_evictions = 0;
  int64_t capsules = 0;
};

struct Metrics {
  Histogram ttft, inter_token, prefill;
  std::atomic<uint64_t> prompt_tokens{0}, prefill_tokens{0}, generated_tokens{0};
  std::atomic<uint64_t> cache_hits{0}, cache_misses{0}, cache_tokens_reused{0}, cache_inserts{0};
  std::atomic<uint64_t> suspensions{0}, resumptions{0}, preemptions{0};
  std::atomic<uint64_t> generations{0}, cancelled{0};

  void count_request(const std::string& route, int status);
  std::string render(const SchedulerGauges& g) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
};

}  // namespace flashrt::server
