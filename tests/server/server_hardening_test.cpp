// Attacks and mistakes a server meets on a network, each of which once went wrong: forged
// /metrics lines through the path, a second server sharing the port, form-typed bodies over 8 KiB
// refused, and request framing (missing, lying, conflicting Content-Length) that hung or got no
// answer. Raw sockets send exactly the bytes under test.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <set>

#include "server_fixture.h"

namespace flashrt::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Sends `bytes` on a fresh connection, then reads until the server closes it, a whole response has
// arrived (by its Content-Length), or `timeout` passes. Returns what arrived.
std::string raw_exchange(int port, const std::string& bytes, std::chrono::seconds timeout,
                         bool until_close = false) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "";
  }
  (void)!::write(fd, bytes.data(), bytes.size());
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  const auto t0 = Clock::now();
  char buf[4096];
  while (Clock::now() - t0 < timeout) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    const size_t head = got.find("\r\n\r\n");
    if (head != std::string::npos && !until_close) {
      const size_t cl = got.find("Content-Length: ");
      if (cl != std::string::npos && cl < head &&
          got.size() >= head + 4 + std::stoul(got.substr(cl + 16)))
        break;
    }
  }
  ::close(fd);
  return got;
}

int status_of(const std::string& response) {
  return response.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(response.substr(9, 3)) : 0;
}

TEST(ServerHardening, MetricsLabelsComeFromTheRouteTable) {
  TestServer srv;
  auto c = srv.client();
  // A path that, printed raw into a label, ends the line and forges a sample.
  c->Get(
      "/v1/capsules/x/"
      "q%22%7D%201%0Aflashrt_injected_total%2042%0Ajunk%7Bx=%22");
  for (int i = 0; i < 30; ++i) c->Get("/random/" + std::to_string(i));
  c->Get("/v1/sessions/sess_123/generate");
  const std::string m = c->Get("/metrics")->body;
  EXPECT_EQ(m.find("flashrt_injected_total"), std::string::npos) << m;
  EXPECT_EQ(m.find("junk"), std::string::npos);
  EXPECT_NE(m.find("route=\"other\",status=\"404\"} 31"), std::string::npos) << m;
  EXPECT_NE(m.find("route=\"/v1/sessions/{id}/generate\""), std::string::npos);
  // Every sample line is name{labels} value: nothing else got in.
  std::set<std::string> routes;
  size_t pos = 0;
  while ((pos = m.find("route=\"", pos)) != std::string::npos) {
    const size_t end = m.find('"', pos + 7);
    routes.insert(m.substr(pos + 7, end - pos - 7));
    pos = end;
  }
  EXPECT_LE(routes.size(), 5u) << "labels come from the route table";
}

TEST(ServerHardening, ASecondServerOnTheSamePortFails) {
  TestServer first;
  server::ServerOptions o = test_server_options();
  o.port = first.port();
  try {
    TestServer second(o);
    FAIL() << "a second server listened on port " << o.port;
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
  }
  // The first still serves.
  EXPECT_EQ(get(*first.client(), "/health").status, 200);
}

TEST(ServerHardening, BodiesAreReadWhateverTheirContentType) {
  // curl -d sends application/x-www-form-urlencoded; such bodies over 8 KiB were refused.
  TestServer srv;
  auto c = srv.client();
  const json body = {{"prompt", "def f():"},
                     {"max_tokens", 2},
                     {"temperature", 0},
                     {"padding", std::string(40000, 'a')}};
  auto r = post_raw(*c, "/v1/completions", body.dump(), "application/x-www-form-urlencoded");
  EXPECT_EQ(r.status, 200) << r.raw.substr(0, 300);
  EXPECT_EQ(r.body["usage"]["completion_tokens"], 2);
}

TEST(ServerHardening, RequestFramingIsAnsweredAtOnce) {
  TestServer srv;
  const int port = srv.port();
  struct Case {
    const char* what;
    std::string request;
    int status;
  };
  const std::string head =
      "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
  const std::vector<Case> cases = {
      // No Content-Length and no body, connection left open: an empty body, not a wait.
      {"no Content-Length", head + "\r\n", 200},
      {"negative", head + "Content-Length: -5\r\n\r\n{}", 400},
      {"not a number", head + "Content-Length: 12abc\r\n\r\n{}", 400},
      {"over the limit", head + "Content-Length: 99999999999999\r\n\r\n{}", 413},
      {"conflicting", head + "Content-Length: 2\r\nContent-Length: 7\r\n\r\n{}", 400},
      {"with chunked", head + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", 411},
      {"chunked", head + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411},
      // Length lines httplib would not take for what a proxy may take them for (the soak found
      // these): refused, not read as "no body".
      {"space before the colon", head + "Content-Length : 2\r\n\r\n{}", 400},
      {"tab before the colon", head + "Content-Length\t: 2\r\n\r\n{}", 400},
      {"folded", head + " Content-Length: 2\r\n\r\n{}", 400},
      {"chunked, space before the colon",
       head + "Transfer-Encoding : chunked\r\nContent-Length: 2\r\n\r\n{}", 400},
  };
  for (const Case& k : cases) {
    const auto t0 = Clock::now();
    const std::string got = raw_exchange(port, k.request, std::chrono::seconds(8));
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    EXPECT_EQ(status_of(got), k.status) << k.what << ": " << got.substr(0, 200);
    EXPECT_LT(s, 5.0) << k.what;  // at once: these hung for 20-35 s, or forever, before
  }
  // A body shorter than its Content-Length: 400 after the read timeout, not never.
  const auto t0 = Clock::now();
  const std::string got =
      raw_exchange(port, head + "Content-Length: 100\r\n\r\n{\"text\"", std::chrono::seconds(30));
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_EQ(status_of(got), 400) << got.substr(0, 200);
  EXPECT_LT(s, server::kReadTimeoutSeconds + 5.0);
  // A refused request closes its connection: its unread body is not taken for the next request
  // (here one that would otherwise be answered too).
  const std::string smuggled =
      raw_exchange(port, head + "Content-Length: -5\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
                   std::chrono::seconds(5), /*until_close=*/true);
  EXPECT_EQ(status_of(smuggled), 400);
  EXPECT_EQ(smuggled.find("HTTP/1.1", 9), std::string::npos) << smuggled;
  // No usable Content-Length (here an empty one, which httplib drops): an empty body, and the
  // connection ends after the answer, so the bytes after the head are never a second request.
  for (const std::string& length : {std::string("Content-Length:\r\n"), std::string()}) {
    const std::string after =
        raw_exchange(port, head + length + "\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
                     std::chrono::seconds(5), /*until_close=*/true);
    EXPECT_EQ(status_of(after), 200) << after.substr(0, 200);
    EXPECT_EQ(after.find("HTTP/1.1", 9), std::string::npos) << after;
  }
  // Expect: 100-continue with a length over the limit: refused before the body is sent.
  const std::string expect =
      raw_exchange(port, head + "Expect: 100-continue\r\nContent-Length: 99999999999999\r\n\r\n",
                   std::chrono::seconds(5));
  EXPECT_EQ(status_of(expect), 413) << expect;
  // The server is fine afterwards.
  EXPECT_EQ(get(*srv.client(), "/health").status, 200);
}

TEST(ServerHardening, BearerSchemeIsCaseInsensitive) {
  server::ServerOptions o = test_server_options();
  o.api_key = "k3y";
  TestServer srv(o);
  for (const char* scheme : {"Bearer", "bearer", "BEARER"}) {
    auto c = srv.client();
    c->set_default_headers({{"Authorization", std::string(scheme) + " k3y"}});
    EXPECT_EQ(get(*c, "/v1/models").status, 200) << scheme;
  }
  auto c = srv.client();
  c->set_default_headers({{"Authorization", "Bearer nope"}});
  EXPECT_EQ(get(*c, "/v1/models").status, 401);
}

TEST(ServerHardening, ListedCapsulesNameTheirSession) {
  TestServer srv;
  auto c = srv.client();
  const std::string sid = post_json(*c, "/v1/sessions", {{"text", "import os\n"}}).body["id"];
  const auto snap = post_json(*c, "/v1/sessions/" + sid + "/snapshot", json::object());
  ASSERT_EQ(snap.status, 200) << snap.raw;
  EXPECT_EQ(snap.body["session"], sid);
  const auto list = get(*c, "/v1/capsules");
  ASSERT_EQ(list.status, 200);
  bool found = false;
  for (const auto& cap : list.body["data"])
    if (cap["id"] == snap.body["id"]) {
      found = true;
      EXPECT_EQ(cap["session"], sid) << cap;
    }
  EXPECT_TRUE(found) << list.raw;
}

TEST(ServerHardening, ServeRefusesPortsOutsideTheRange) {
  for (const char* port : {"99999", "-1", "65536"}) {
    const CommandResult r =
        run_flashrt("serve -m " + default_model_path() + " --port " + std::string(port));
    EXPECT_NE(r.status, 0) << port << ": " << r.out;
    EXPECT_NE(r.out.find("--port"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("listening"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace flashrt::testing
