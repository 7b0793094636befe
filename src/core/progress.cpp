#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace flashrt {

namespace {
bool g_enabled = true;
constexpr auto kDelay = std::chrono::milliseconds(300);  // no bar for work shorter than this
constexpr auto kPeriod = std::chrono::milliseconds(100);
}  // namespace

void Progress::set_enabled(bool on) {
  g_enabled = on;
}

Progress::Progress(std::string label, uint64_t total)
    : label_(std::move(label)),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_),
      tty_(g_enabled && ::isatty(STDERR_FILENO)) {}

Progress::~Progress() {
  finish();
}

void Progress::update(uint64_t done) {
  done_ = done;
  if (!tty_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - start_ < kDelay || now - last_draw_ < kPeriod) return;
  last_draw_ = now;
  draw(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (shown_) draw(true);
}

void Progress::draw(bool final) {
  shown_ = true;
  const double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  const int width = 30, filled = static_cast<int>(frac * width);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string bar(filled, '#');
  bar.resize(width, '.');
  std::fprintf(stderr, "\r%s [%s] %3d%% %.1fs%s", label_.c_str(), bar.c_str(),
               static_cast<int>(frac * 100), secs, final ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace flashrt
