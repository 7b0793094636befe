// What the scheduler counts as it works: latency histograms (time to first token, between tokens,
// prefill), token and cache counters, suspensions; and the gauges it reports on request. Updated
// from the scheduler thread, read from any thread. The server renders them as Prometheus metrics.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

namespace flashrt {

class LatencyHistogram {
 public:
  // Upper bounds of the buckets, in seconds (the last bucket is everything above).
  static constexpr std::array<double, 16> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04,
                                                     0.08,  0.16,   0.32,  0.64, 1.28, 2.56,
                                                     5.12,  10.24,  20.48, 40.96};
  struct Snapshot {
    std::array<uint64_t, kBounds.size() + 1> buckets{};
    double sum = 0;
    uint64_t count = 0;
  };

  void observe(double seconds);
  Snapshot snapshot() const;  // a consistent copy
  uint64_t count() const;

 private:
  mutable std::mutex mu_;
  Snapshot s_;
};

struct SchedulerStats {
  LatencyHistogram ttft, inter_token, prefill;
  std::atomic<uint64_t> prompt_tokens{0}, prefill_tokens{0}, generated_tokens{0};
  std::atomic<uint64_t> cache_hits{0}, cache_misses{0}, cache_tokens_reused{0}, cache_inserts{0};
  std::atomic<uint64_t> suspensions{0}, resumptions{0}, preemptions{0};
  std::atomic<uint64_t> generations{0}, cancelled{0};
  // Forward steps, and the sequences and rows they carried (sequences / steps = the mean batch).
  std::atomic<uint64_t> steps{0}, step_sequences{0}, step_rows{0};
};

// Levels read from the scheduler when asked.
struct SchedulerGauges {
  int64_t slots = 0, slots_busy = 0, sessions = 0, sessions_suspended = 0, queued_jobs = 0;
  int64_t cache_bytes = 0, cache_max_bytes = 0, cache_entries = 0, cache_evictions = 0;
};

}  // namespace flashrt
