#include "engine/scheduler_stats.h"

namespace flashrt {

void LatencyHistogram::observe(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  ++s_.buckets[i];
  s_.sum += seconds;
  ++s_.count;
}

LatencyHistogram::Snapshot LatencyHistogram::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return s_;
}

uint64_t LatencyHistogram::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return s_.count;
}

}  // namespace flashrt
