#include "server/metrics.h"

#include <fmt/format.h>

namespace flashrt::server {

void Metrics::count_request(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
}

namespace {

// A label value as Prometheus' text format wants it: backslash, quote and newline escaped.
std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += {'\\', c};
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

void counter(std::string& s, const char* name, const char* help, uint64_t v) {
  s += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, v);
}

void gauge(std::string& s, const char* name, const char* help, int64_t v) {
  s += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, v);
}

void histogram(std::string& s, const char* name, const char* help, const LatencyHistogram& h) {
  const LatencyHistogram::Snapshot v = h.snapshot();
  s += fmt::format("# HELP {0} {1}\n# TYPE {0} histogram\n", name, help);
  uint64_t cum = 0;
  for (size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
    cum += v.buckets[i];
    s += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, LatencyHistogram::kBounds[i], cum);
  }
  cum += v.buckets.back();
  s += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, cum, name, v.sum,
                   name, v.count);
}

}  // namespace

std::string Metrics::render(const SchedulerStats& st, const SchedulerGauges& g,
                            int64_t capsules) const {
  std::string s =
      "# HELP flashrt_requests_total HTTP requests by route and status code.\n"
      "# TYPE flashrt_requests_total counter\n";
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, n] : requests_)
      s += fmt::format("flashrt_requests_total{{route=\"{}\",status=\"{}\"}} {}\n",
                       label_value(key.first), key.second, n);
  }
  histogram(s, "flashrt_ttft_seconds",
            "Time from receiving a request to its first generated token.", st.ttft);
  histogram(s, "flashrt_inter_token_seconds",
            "Time between consecutive generated tokens of one request.", st.inter_token);
  histogram(s, "flashrt_prefill_seconds", "Time spent prefilling one request's prompt.",
            st.prefill);
  counter(s, "flashrt_prompt_tokens_total", "Prompt tokens received.", st.prompt_tokens);
  counter(s, "flashrt_prefill_tokens_total", "Prompt tokens actually prefilled (not restored).",
          st.prefill_tokens);
  counter(s, "flashrt_generated_tokens_total", "Tokens generated.", st.generated_tokens);
  counter(s, "flashrt_generations_total", "Generations finished.", st.generations);
  counter(s, "flashrt_steps_total", "Forward steps (each advances every sequence it carries).",
          st.steps);
  counter(s, "flashrt_step_sequences_total",
          "Sequences carried by forward steps (divided by steps: the mean batch).",
          st.step_sequences);
  counter(s, "flashrt_step_rows_total", "Token rows carried by forward steps.", st.step_rows);
  counter(s, "flashrt_generations_cancelled_total",
          "Generations cancelled (interrupt or client gone).", st.cancelled);
  counter(s, "flashrt_prefix_cache_hits_total",
          "Prompts that restored a cached prefix instead of prefilling it.", st.cache_hits);
  counter(s, "flashrt_prefix_cache_misses_total", "Prompts with no cached prefix.",
          st.cache_misses);
  counter(s, "flashrt_prefix_cache_reused_tokens_total",
          "Prompt tokens restored from the prefix cache.", st.cache_tokens_reused);
  counter(s, "flashrt_prefix_cache_inserts_total", "Boundaries added to the prefix cache.",
          st.cache_inserts);
  counter(s, "flashrt_prefix_cache_evictions_total", "Prefix-cache entries evicted (LRU).",
          static_cast<uint64_t>(g.cache_evictions));
  gauge(s, "flashrt_prefix_cache_bytes", "Bytes held by the prefix cache.", g.cache_bytes);
  gauge(s, "flashrt_prefix_cache_max_bytes", "The prefix cache's byte budget.", g.cache_max_bytes);
  gauge(s, "flashrt_prefix_cache_entries", "Boundaries in the prefix cache.", g.cache_entries);
  counter(s, "flashrt_session_suspensions_total", "Sessions suspended to a host capsule.",
          st.suspensions);
  counter(s, "flashrt_session_resumptions_total", "Suspended sessions restored into a slot.",
          st.resumptions);
  counter(s, "flashrt_preemptions_total",
          "Running generations suspended to give their slot to a waiting one.", st.preemptions);
  gauge(s, "flashrt_slots", "Slots (sequences resident at once).", g.slots);
  gauge(s, "flashrt_slots_busy", "Slots holding a sequence.", g.slots_busy);
  gauge(s, "flashrt_sessions", "Sessions open.", g.sessions);
  gauge(s, "flashrt_sessions_suspended", "Sessions suspended to host memory.",
        g.sessions_suspended);
  gauge(s, "flashrt_queued_jobs", "Jobs waiting or running in the scheduler.", g.queued_jobs);
  gauge(s, "flashrt_capsules", "Capsules stored.", capsules);
  return s;
}

}  // namespace flashrt::server
