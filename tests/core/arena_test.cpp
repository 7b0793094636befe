#include <gtest/gtest.h>

#include "core/arena.h"
#include "core/error.h"
#include "core/thread_pool.h"

namespace flashrt {
namespace {

TEST(CoreArena, LayoutOffsetsAndLiveBytes) {
  StateLayout l;
  l.add({"kv", DType::F32, {100, 2, 8}, RegionKind::kPositional});
  l.add({"state", DType::F32, {3, 5}, RegionKind::kFixed});
  l.add({"pos", DType::I64, {1}, RegionKind::kMeta});
  EXPECT_EQ(l.max_ctx(), 100);
  for (size_t off : l.offsets()) EXPECT_EQ(off % 256, 0u);
  EXPECT_EQ(l.regions()[0].bytes_per_row(), 64u);
  EXPECT_EQ(l.regions()[0].live_bytes(7), 7u * 64);
  EXPECT_EQ(l.regions()[1].live_bytes(7), 60u);
  EXPECT_EQ(l.find("pos"), 2);
  EXPECT_EQ(l.find("nope"), -1);
  auto a = Arena::host(std::make_shared<StateLayout>(l));
  EXPECT_EQ(a->region("state"), a->base() + l.offsets()[1]);
  EXPECT_THROW(a->region("nope"), Error);
}

TEST(CoreArena, RejectsInconsistentLayouts) {
  StateLayout l;
  l.add({"a", DType::F32, {10, 4}, RegionKind::kPositional});
  EXPECT_THROW(l.add({"a", DType::F32, {1}, RegionKind::kFixed}), Error);
  EXPECT_THROW(l.add({"b", DType::F32, {11, 4}, RegionKind::kPositional}), Error);
}

TEST(CoreThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 5, 64, 1001}) {
      for (int64_t grain : {1, 7, 100}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        });
        for (auto& h : hits) EXPECT_EQ(h.load(), 1);
      }
    }
    std::vector<std::atomic<int>> seen(static_cast<size_t>(threads));
    for (int rep = 0; rep < 100; ++rep)
      pool.run([&](int t, int n) {
        EXPECT_EQ(n, threads);
        seen[static_cast<size_t>(t)]++;
      });
    for (auto& s : seen) EXPECT_EQ(s.load(), 100);
  }
}

}  // namespace
}  // namespace flashrt
