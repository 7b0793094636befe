#include "core/thread_pool.h"

#include <algorithm>
#include <memory>
#include <mutex>

namespace flashrt {

namespace {
int g_default_threads = 0;
std::once_flag g_once;
std::unique_ptr<ThreadPool> g_pool;
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0)
    n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin briefly (a decode step issues many short regions back to back), then sleep on the futex.
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < 20000; ++spin) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
      g = generation_.load(std::memory_order_acquire);
    }
    while (g == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load()) return;
    (*job_)(index, n_threads_);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  fn(0, n_threads_);
  // Spin for the other threads too before sleeping: a futex wake-up costs tens of microseconds in
  // a VM, and a decode step joins a few hundred short regions.
  int p = pending_.load(std::memory_order_acquire);
  for (int spin = 0; p != 0 && spin < 20000; ++spin) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
    p = pending_.load(std::memory_order_acquire);
  }
  for (; p != 0; p = pending_.load(std::memory_order_acquire))
    pending_.wait(p, std::memory_order_acquire);
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t max_parts = (n + grain - 1) / grain;
  const int parts = static_cast<int>(std::min<int64_t>(n_threads_, max_parts));
  if (parts <= 1) {
    fn(0, n);
    return;
  }
  run([&](int t, int) {
    if (t >= parts) return;
    const int64_t begin = n * t / parts, end = n * (t + 1) / parts;
    if (begin < end) fn(begin, end);
  });
}

ThreadPool& ThreadPool::global() {
  std::call_once(g_once, [] { g_pool = std::make_unique<ThreadPool>(g_default_threads); });
  return *g_pool;
}

void ThreadPool::set_default_threads(int n) {
  g_default_threads = n;
}

}  // namespace flashrt
