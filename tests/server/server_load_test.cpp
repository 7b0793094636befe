// A short run of the loopback load generator (bench/serve_load runs it for 60 s): 16 concurrent
// clients mixing streamed chats, forks and snapshot/restore round trips against 4 slots, with zero
// errors — the restore round trips also check token identity under load.
#include <gtest/gtest.h>

#include "server/load_generator.h"
#include "server_fixture.h"

namespace flashrt::testing {
namespace {

TEST(ServerLoad, SixteenClientsMixingChatsForksAndRestoresGetNoErrors) {
  auto o = test_server_options();
  o.scheduler.slots = 4;
  TestServer srv(o);
  server::LoadOptions lo;
  lo.port = srv.port();
  lo.clients = 16;
  lo.seconds = 3;
  lo.max_tokens = 12;
  const server::LoadReport r = server::run_load(lo);
  const std::string table = server::format_report(r, lo);
  std::printf("%s", table.c_str());
  EXPECT_EQ(r.errors, 0u) << table;
  EXPECT_GT(r.requests, 16u) << table;
  EXPECT_GT(r.tokens, 0u) << table;
  EXPECT_FALSE(r.ttft.empty());
  auto c = srv.client();
  EXPECT_EQ(get(*c, "/health").body["queued_jobs"], 0);
  EXPECT_EQ(get(*c, "/health").body["sessions"], 0);  // every flow deleted what it made
}

}  // namespace
}  // namespace flashrt::testing
