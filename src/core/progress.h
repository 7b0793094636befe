// A progress bar on stderr for long loads and conversions. Silent when stderr is not a terminal or
// the work is short, so logs and tests stay clean.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace flashrt {

class Progress {
 public:
  Progress(std::string label, uint64_t total);
  ~Progress();
  void add(uint64_t n) { update(done_ + n); }
  void update(uint64_t done);
  void finish();

  static void set_enabled(bool on);  // global switch (--quiet)

 private:
  void draw(bool final);
  std::string label_;
  uint64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool shown_ = false, finished_ = false, tty_;
};

}  // namespace flashrt
