// Server metrics in Prometheus' text format: request counts by route and status, and the
// scheduler's statistics and gauges (engine/scheduler_stats.h). Rendering takes consistent copies.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "engine/scheduler_stats.h"

namespace flashrt::server {

class Metrics {
 public:
  void count_request(const std::string& route, int status);
  // `capsules`: capsules in the server's store.
  std::string render(const SchedulerStats& st, const SchedulerGauges& g, int64_t capsules) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
};

}  // namespace flashrt::server
