// libFuzzer entry: the input is the raw bytes of one connection to a live `flashrt serve` in this
// process (request lines, headers, Content-Length and chunked framing, paths, bodies, pipelined
// requests), so the framing checks, the router, authentication and the handlers all see
// attacker-shaped bytes, not only the JSON parsers (server_json.cpp). The client sends the bytes,
// half-closes, and reads until the server closes. Invariants: every answer is an HTTP/1.1 status
// line below 500 (garbage may also be dropped without one), the server always closes the
// connection within a bound (no hang), and now and then /health still answers 200 and /metrics
// holds only flashrt_ samples (no forged lines). tests/fuzz_smoke_test.cpp runs the seeds in
// fuzz/corpus/http_framing and their mutants in every test run.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>

#include "backends/backend.h"
#include "fuzz_target.h"
#include "models/model.h"
#include "server/server.h"
#include "tokenizer/gguf_vocab.h"

#ifndef FLASHRT_SOURCE_DIR
#error "FLASHRT_SOURCE_DIR must name the source tree (CMake defines it)"
#endif

namespace flashrt_fuzz_http {

// The key the seeds send; requests without it reach the router and the 401 path.
inline constexpr const char* kApiKey = "fuzz-key";
// Past this a connection that the server has not closed counts as a hang. Generations are short:
// one slot, a 96-token context.
inline constexpr int kCloseWithinMs = 20000;

// One server for the whole fuzzing process, stopped by the destructor of this function-local
// static (before the statics it uses are destroyed).
struct LiveServer {
  std::unique_ptr<flashrt::Backend> backend;
  std::unique_ptr<flashrt::Model> model;
  std::unique_ptr<flashrt::server::Server> server;
  int port = 0;
  uint64_t execs = 0;

  LiveServer() {
    const std::string path = std::string(FLASHRT_SOURCE_DIR) + "/models/pycoder-hybrid-12m.gguf";
    backend = flashrt::make_backend("cpu");
    model = flashrt::load_model(path, *backend);
    flashrt::server::ServerOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.scheduler.slots = 1;
    o.scheduler.session.max_ctx = 96;
    o.api_key = kApiKey;
    o.http_threads = 4;
    o.max_body_bytes = size_t{1} << 20;
    server = std::make_unique<flashrt::server::Server>(*model, *backend,
                                                       flashrt::load_tokenizer(path), o);
    port = server->start();
  }
  ~LiveServer() { server->stop(); }
};

inline LiveServer& live_server() {
  static LiveServer s;
  return s;
}

// Whether `r` holds at least one whole response (by its Content-Length, or the last chunk of a
// chunked body).
inline bool has_whole_response(const std::string& r) {
  const size_t head = r.find("\r\n\r\n");
  if (head == std::string::npos) return false;
  const std::string headers = r.substr(0, head + 2);
  const size_t cl = headers.find("Content-Length: ");
  if (cl != std::string::npos)
    return r.size() >= head + 4 + std::strtoull(headers.c_str() + cl + 16, nullptr, 10);
  return r.find("\r\n0\r\n\r\n", head) != std::string::npos;
}

// Sends `bytes`, reads what comes back, and returns false when the server has not closed the
// connection within the bound. The client half-closes once a whole response has arrived or the
// server has been silent for a while (it is waiting for more of a body, or for a next request on
// a kept-alive connection); the server must then finish and close. (Not at once: cpp-httplib
// writes no response to a peer that has already half-closed.)
inline bool exchange(int port, const uint8_t* bytes, size_t size, std::string* got) {
  using Clock = std::chrono::steady_clock;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  FLASHRT_FUZZ_REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A refused or timed-out connect is retried for a second (the accept backlog of a busy server);
  // then it is a server that stopped listening, and the reason is printed before the trap.
  int tries = 0;
  while (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (++tries == 50) {
      std::fprintf(stderr, "http_framing: connect to 127.0.0.1:%d failed: %s\n", port,
                   std::strerror(errno));
      FLASHRT_FUZZ_REQUIRE(false);
    }
    ::close(fd);
    ::usleep(20000);
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    FLASHRT_FUZZ_REQUIRE(fd >= 0);
  }
  // The server may answer (and close) before reading everything; a failed write is fine then.
  for (size_t off = 0; off < size;) {
    const ssize_t n = ::send(fd, bytes + off, size - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  const auto start = Clock::now(), deadline = start + std::chrono::milliseconds(kCloseWithinMs);
  auto last_data = start;
  bool closed = false, half_closed = false;
  char buf[8192];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10) > 0) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {  // closed (or reset: a connection the server could not parse)
        closed = true;
        break;
      }
      got->append(buf, static_cast<size_t>(n));
      last_data = Clock::now();
    }
    if (!half_closed &&
        (has_whole_response(*got) || Clock::now() - last_data > std::chrono::milliseconds(60))) {
      ::shutdown(fd, SHUT_WR);
      half_closed = true;
    }
  }
  ::close(fd);
  return closed;
}

// The status of the first response in `r`, or -1 when `r` does not start with a status line.
inline int first_status(const std::string& r) {
  if (r.size() < 12 || r.compare(0, 9, "HTTP/1.1 ") != 0) return -1;
  for (int i = 9; i < 12; ++i)
    if (r[static_cast<size_t>(i)] < '0' || r[static_cast<size_t>(i)] > '9') return -1;
  return std::stoi(r.substr(9, 3));
}

// A well-formed request of the server itself still gets the expected answer.
inline std::string get(int port, const std::string& path) {
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                          kApiKey + "\r\nConnection: close\r\n\r\n";
  std::string got;
  FLASHRT_FUZZ_REQUIRE(
      exchange(port, reinterpret_cast<const uint8_t*>(req.data()), req.size(), &got));
  return got;
}

inline void check_still_serving(int port) {
  FLASHRT_FUZZ_REQUIRE(first_status(get(port, "/health")) == 200);
  const std::string m = get(port, "/metrics");
  FLASHRT_FUZZ_REQUIRE(first_status(m) == 200);
  const size_t body = m.find("\r\n\r\n");
  FLASHRT_FUZZ_REQUIRE(body != std::string::npos);
  std::istringstream lines(m.substr(body + 4));
  for (std::string line; std::getline(lines, line);)
    FLASHRT_FUZZ_REQUIRE(line.empty() || line.rfind("# ", 0) == 0 ||
                         line.rfind("flashrt_", 0) == 0);
}

}  // namespace flashrt_fuzz_http

extern "C" int FLASHRT_FUZZ_ENTRY(const uint8_t* data, size_t size) {
  using namespace flashrt_fuzz_http;
  LiveServer& s = live_server();
  std::string got;
  FLASHRT_FUZZ_REQUIRE(exchange(s.port, data, size, &got));
  if (!got.empty()) {
    const int status = first_status(got);
    FLASHRT_FUZZ_REQUIRE(status >= 100 && status < 500);
  }
  if (++s.execs % 256 == 1) check_still_serving(s.port);
  return 0;
}
