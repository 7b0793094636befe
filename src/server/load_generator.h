// A loopback load generator for `flashrt serve`: N concurrent clients mixing streamed chat
// completions, session forks and snapshot/restore round trips for a fixed duration, measuring
// TTFT and inter-token latency as clients see them. Used by bench/serve_load.cpp and by a test.
// A snapshot/restore round trip also checks that greedy decoding after the restore repeats the
// tokens generated after the snapshot; a mismatch counts as an error.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace flashrt::server {

struct LoadOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  int clients = 16;
  double seconds = 60;
  int max_tokens = 24;  // per generation
  std::string api_key;
  uint64_t seed = 1;
};

struct LoadReport {
  double seconds = 0;
  uint64_t requests = 0, errors = 0, tokens = 0;
  std::map<std::string, uint64_t> flows;   // completed flows by kind
  std::vector<double> ttft, inter_token;   // seconds
  std::vector<std::string> error_samples;  // the first few errors
};

LoadReport run_load(const LoadOptions& o);
// Quantile q in [0, 1] of `v` (sorted copy); 0 when empty.
double quantile(std::vector<double> v, double q);
// A Markdown table of the results.
std::string format_report(const LoadReport& r, const LoadOptions& o);

}  // namespace flashrt::server
