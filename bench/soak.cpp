// bench_soak: a bounded soak test of `flashrt serve` (loopback, stops by itself). Starts the server
// in-process on 127.0.0.1 (any free port, with an API key) and runs N clients for --duration
// seconds (default 600) mixing well-formed traffic with malformed requests:
//   - chat completions and completions, streamed and not, greedy and seeded sampling, n > 1,
//     logprobs, clients that hang up mid-stream;
//   - sessions: create, append, generate, fork, snapshot, restore, interrupt (idle and running),
//     list, delete; capsules: list, export, import, delete; /health, /metrics, /v1/models;
//   - request bytes in unusual but valid shapes over raw TCP (text/plain and form content types,
//     bodies over 8 KiB without a content type, a repeated identical Content-Length);
//   - malformed requests over raw TCP: invalid JSON and fields, missing / short / negative / huge /
//     non-numeric / conflicting Content-Length, chunked bodies, garbage request lines, paths and
//     header lines over 8 KiB, /metrics label injection through the path, unknown routes and ids,
//     bad bearer tokens, uploads that are not capsules, whitespace before a header's colon (a
//     body smuggled past the Content-Length must not be served as a second request).
// Every request has an expected outcome: well-formed ones a 2xx (or the documented 4xx they ask
// for, e.g. 404 for an object the client itself deleted; each client only touches its own
// objects), malformed ones a 4xx, or for garbage a connection the server closes. Never a 5xx, never
// a hang. Flows also check themselves: a restore repeats the tokens after its snapshot, a fork
// continues as its parent, an exported and re-imported capsule restores as the original.
// At the end (traffic stopped) it checks that
//   - a reference session's greedy 32-token continuation (generated from a fork, so the reference
//     never advances, and from a fresh session restored from a capsule taken at the start) is
//     byte-identical to the one before the traffic; the fork check also runs at every progress
//     line;
//   - no request got a 5xx (as the clients saw it, and in /metrics), none hung, all got what they
//     should;
//   - /metrics has no forged line and every route label is one of the server's routes;
//   - nothing leaked: /health counts only the reference session, the store only its capsule;
//   - the RSS of this process (the server runs in it) grew by at most --rss-growth-mib over
//     its value after --warmup seconds of traffic, at the end and at every 1 s sample between.
// Prints a progress line every --progress seconds, then a table per request kind; exits 0 when
// every check passes, 1 listing the failures.
//   ./build/bench_soak --duration 600 [-m MODEL] [--clients 8] [--slots 4] [--rss-growth-mib 256]
#include <arpa/inet.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.h"
#include "core/thread_pool.h"
#include "models/model.h"
#include "server/load_generator.h"
#include "server/server.h"
#include "tokenizer/gguf_vocab.h"

namespace {

using flashrt::server::quantile;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

double secs(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}
Clock::duration after(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// A field of /proc/self/status ("VmRSS:", "VmHWM:") in MiB; the server runs in this process.
double proc_status_mib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::stod(line.substr(std::strlen(field))) / 1024.0;
  return 0;
}
double rss_mib() {
  return proc_status_mib("VmRSS:");
}

// Outcomes that are not an HTTP status.
constexpr int kClosed = 0;       // the server closed the connection without answering
constexpr int kTimeout = -1;     // no (complete) answer within the limit: a hang
constexpr int kTransport = -2;   // cannot connect, or the connection failed otherwise
constexpr int kNotHttp = -3;     // bytes came back that are not an HTTP response
constexpr int kTwoAnswers = -4;  // one request was answered twice: bytes of its body were served

std::string describe_status(int s) {
  switch (s) {
    case kClosed:
      return "the connection closed without an answer";
    case kTimeout:
      return "no answer in time";
    case kTransport:
      return "a transport error";
    case kNotHttp:
      return "an answer that is not HTTP";
    case kTwoAnswers:
      return "two responses (bytes after the head were served as a second request)";
    default:
      return fmt::format("HTTP {}", s);
  }
}

// What a request must get: an exact status (200, 404, ...), a class (2: any 2xx, 4: any 4xx) or
// 1 for any answer but a 5xx, and whether the server may close the connection without answering.
struct Expect {
  int status;
  bool close_ok = false;
  bool met(int got) const {
    if (got == kClosed) return close_ok;
    if (got < 100) return false;
    if (status == 1) return got < 500;
    return status < 10 ? got / 100 == status : got == status;
  }
  bool well_formed() const { return status == 2 || status / 100 == 2; }
  std::string str() const {
    if (status == 1) return "any answer but a 5xx";
    return (status < 10 ? fmt::format("{}xx", status) : std::to_string(status)) +
           (close_ok ? " or a close" : "");
  }
};
const Expect kOk{2};
const Expect kClientError{4};
const Expect kRefused{4, true};    // garbage: a 4xx, or the server hangs up
const Expect kTolerated{1, true};  // what HTTP parsers differ on: anything but a 5xx

// Bytes for a failure message: printable ASCII kept, the rest escaped, cut at `max`.
std::string printable(std::string_view s, size_t max = 200) {
  std::string out;
  for (size_t i = 0; i < s.size() && out.size() < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c < 32 || c > 126)
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  if (out.size() >= max) out += "...";
  return out;
}

// ---------------------------------------------------------------------------------------------
// Counting.

struct KindStats {
  bool well_formed = false;
  std::string want;  // what it must get
  uint64_t n = 0, unexpected = 0, closed = 0, hung = 0, other = 0;
  std::array<uint64_t, 6> by_class{};  // [2] is 2xx, ...
  std::vector<double> latency;         // seconds, of well-formed requests that got what they should
};

struct CheckStats {
  uint64_t runs = 0, failed = 0;
};

// What every client adds to: the counters the progress line reads, and the first failures of
// each kind in full.
struct Shared {
  std::atomic<uint64_t> requests{0}, unexpected{0}, server_errors{0}, hung{0}, check_failures{0};
  std::mutex mu;
  std::vector<std::string> failures;
  std::map<std::string, int> failures_of;
  void fail(const std::string& kind, std::string what) {
    std::lock_guard<std::mutex> lock(mu);
    if (failures_of[kind]++ < 3 && failures.size() < 60) failures.push_back(std::move(what));
  }
};

// One client's counts (thread-safe: a client's helper thread records too).
class Recorder {
 public:
  explicit Recorder(Shared& s) : shared_(s) {}

  // Records one request; returns whether it got what it should.
  bool record(const std::string& kind, Expect e, int status, double seconds,
              std::string_view detail) {
    const bool ok = e.met(status);
    {
      std::lock_guard<std::mutex> lock(mu_);
      KindStats& k = kinds_[kind];
      k.well_formed = e.well_formed();
      k.want = e.str();
      ++k.n;
      if (status >= 100 && status < 600)
        ++k.by_class[static_cast<size_t>(status / 100)];
      else if (status == kClosed)
        ++k.closed;
      else if (status == kTimeout)
        ++k.hung;
      else
        ++k.other;
      if (!ok) ++k.unexpected;
      if (ok && k.well_formed) k.latency.push_back(seconds);
    }
    ++shared_.requests;
    if (status >= 500) ++shared_.server_errors;
    if (status == kTimeout) ++shared_.hung;
    if (!ok) {
      ++shared_.unexpected;
      shared_.fail(kind, fmt::format("{}: got {}, want {} ({:.2f} s): {}", kind,
                                     describe_status(status), e.str(), seconds, printable(detail)));
    }
    return ok;
  }

  // A consistency check inside a flow.
  bool check(bool ok, const std::string& what, std::string_view detail = {}) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      CheckStats& c = checks_[what];
      ++c.runs;
      if (!ok) ++c.failed;
    }
    if (!ok) {
      ++shared_.check_failures;
      shared_.fail(what, fmt::format("check failed: {}: {}", what, printable(detail, 400)));
    }
    return ok;
  }

  void merge_into(std::map<std::string, KindStats>& kinds,
                  std::map<std::string, CheckStats>& checks) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, k] : kinds_) {
      KindStats& t = kinds[name];
      t.well_formed = k.well_formed;
      t.want = k.want;
      t.n += k.n;
      t.unexpected += k.unexpected;
      t.closed += k.closed;
      t.hung += k.hung;
      t.other += k.other;
      for (size_t i = 0; i < k.by_class.size(); ++i) t.by_class[i] += k.by_class[i];
      t.latency.insert(t.latency.end(), k.latency.begin(), k.latency.end());
    }
    for (const auto& [name, c] : checks_) {
      checks[name].runs += c.runs;
      checks[name].failed += c.failed;
    }
  }

 private:
  Shared& shared_;
  std::mutex mu_;
  std::map<std::string, KindStats> kinds_;
  std::map<std::string, CheckStats> checks_;
};

// ---------------------------------------------------------------------------------------------
// HTTP: through cpp-httplib for well-formed requests, raw bytes over a socket for the rest.

constexpr const char* kApiKey = "soak-key";
constexpr int kReadTimeout = 60;  // seconds a well-formed request may take

struct Reply {
  int status = kTransport;
  std::string body;
  json j;                    // the body as JSON (discarded when it is not)
  std::vector<json> events;  // a stream's data events, [DONE] and errors left out
  bool done = false;         // the stream ended with [DONE]
  std::string stream_error;  // an error event, or an event that is not JSON
};

class Http {
 public:
  Http(int port, Recorder& rec) : rec_(rec), cli_("127.0.0.1", port) {
    cli_.set_connection_timeout(10);
    cli_.set_read_timeout(kReadTimeout);
    cli_.set_write_timeout(30);
  }

  Reply get(const std::string& kind, const std::string& path, Expect e = kOk) {
    return send(kind, make("GET", path, ""), e);
  }
  Reply del(const std::string& kind, const std::string& path, Expect e = kOk) {
    return send(kind, make("DELETE", path, ""), e);
  }
  Reply post(const std::string& kind, const std::string& path, const json& body, Expect e = kOk) {
    auto req = make("POST", path, body.dump());
    req.set_header("Content-Type", "application/json");
    return send(kind, std::move(req), e);
  }
  Reply put_bytes(const std::string& kind, const std::string& path, std::string bytes,
                  Expect e = kOk, const char* method = "PUT") {
    auto req = make(method, path, std::move(bytes));
    req.set_header("Content-Type", "application/octet-stream");
    return send(kind, std::move(req), e);
  }
  // A streamed generation. With `hang_up_after` > 0 the client closes the connection once that
  // many events have arrived (the server must then cancel the run).
  Reply stream(const std::string& kind, const std::string& path, json body, Expect e = kOk,
               size_t hang_up_after = 0) {
    body["stream"] = true;
    auto req = make("POST", path, body.dump());
    req.set_header("Content-Type", "application/json");
    return send(kind, std::move(req), e, true, hang_up_after);
  }

 private:
  static httplib::Request make(const char* method, const std::string& path, std::string body) {
    httplib::Request req;
    req.method = method;
    req.path = path;
    req.body = std::move(body);
    req.set_header("Authorization", std::string("Bearer ") + kApiKey);
    return req;
  }

  Reply send(const std::string& kind, httplib::Request req, Expect e, bool streaming = false,
             size_t hang_up_after = 0) {
    Reply r;
    std::string buf;
    bool hung_up = false;
    if (streaming) {
      req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        r.body.append(data, n);
        buf.append(data, n);
        size_t end;
        while ((end = buf.find("\n\n")) != std::string::npos) {
          const std::string ev = buf.substr(0, end);
          buf.erase(0, end + 2);
          if (ev.rfind("data: ", 0) != 0) continue;  // ": keep-alive"
          const std::string payload = ev.substr(6);
          if (payload == "[DONE]") {
            r.done = true;
            continue;
          }
          json j = json::parse(payload, nullptr, false);
          if (j.is_discarded())
            r.stream_error = "an event that is not JSON: " + payload;
          else if (j.contains("error"))
            r.stream_error = payload;
          else
            r.events.push_back(std::move(j));
          if (hang_up_after && r.events.size() >= hang_up_after) {
            hung_up = true;
            return false;
          }
        }
        return true;
      };
    }
    const auto t0 = Clock::now();
    auto res = cli_.send(req);
    const double s = secs(Clock::now() - t0);
    std::string detail;
    if (res) {
      r.status = res->status;
      if (!streaming) r.body = res->body;
    } else if (hung_up) {
      r.status = 200;  // the events arrived; the client left on purpose
    } else {
      r.status = s >= kReadTimeout - 1 ? kTimeout : kTransport;
      detail = httplib::to_string(res.error());
    }
    if (!streaming) r.j = json::parse(r.body, nullptr, false);
    rec_.record(kind, e, r.status, s, detail.empty() ? std::string_view(r.body) : detail);
    if (streaming && r.status / 100 == 2 && !hung_up)
      rec_.check(r.done && r.stream_error.empty(), "a stream ends with [DONE] and no error event",
                 kind + ": " + (r.stream_error.empty() ? r.body : r.stream_error));
    return r;
  }

  Recorder& rec_;
  httplib::Client cli_;
};

struct RawReply {
  int status = kTimeout;
  std::string data;
};

// Whether `data` holds a whole response (by its Content-Length, or a chunked body's last chunk).
bool response_complete(const std::string& data) {
  const size_t head = data.find("\r\n\r\n");
  if (head == std::string::npos) return false;
  std::string h = data.substr(0, head);
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
  const size_t cl = h.find("\r\ncontent-length:");
  if (cl != std::string::npos)
    return data.size() >= head + 4 + std::strtoull(h.c_str() + cl + 17, nullptr, 10);
  return h.find("transfer-encoding: chunked") != std::string::npos && data.size() >= 5 &&
         data.compare(data.size() - 5, 5, "0\r\n\r\n") == 0;
}

// The number of whole responses at the start of `data`, one after the other.
int count_responses(const std::string& data) {
  int n = 0;
  for (size_t pos = 0; data.compare(pos, 7, "HTTP/1.") == 0; ++n) {
    const std::string rest = data.substr(pos);
    if (!response_complete(rest)) return n + 1;
    const size_t head = rest.find("\r\n\r\n");
    std::string h = rest.substr(0, head);
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
    const size_t cl = h.find("\r\ncontent-length:");
    if (cl == std::string::npos) return n + 1;
    pos += head + 4 + std::strtoull(h.c_str() + cl + 17, nullptr, 10);
  }
  return n;
}

// How raw bytes are sent.
struct RawMode {
  bool half_close = false;   // end the sending side after the bytes (EOF)
  bool until_close = false;  // read until the server closes, not only the first response
  std::string then;          // more bytes, sent 200 ms later on the same connection
};

// Sends `bytes` on a fresh connection and reads the answer until it is complete (or with
// `until_close`, until the connection ends), the server closes, or `timeout_s` passes.
RawReply raw_exchange(int port, const std::string& bytes, double timeout_s,
                      const RawMode& mode = {}) {
  RawReply r;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {kTransport, std::strerror(errno)};
  timeval tv{0, 100000};  // short waits, so the deadline below is kept
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    r = {kTransport, std::string("connect: ") + std::strerror(errno)};
    ::close(fd);
    return r;
  }
  const auto deadline = Clock::now() + after(timeout_s);
  size_t sent = 0;
  while (sent < bytes.size() && Clock::now() < deadline) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0)
      sent += static_cast<size_t>(n);
    else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      continue;
    else
      break;  // the server hung up early: what it answered is read below
  }
  if (!mode.then.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    (void)!::send(fd, mode.then.data(), mode.then.size(), MSG_NOSIGNAL);
  }
  if (mode.half_close) ::shutdown(fd, SHUT_WR);
  bool closed = false;
  char buf[8192];
  while (Clock::now() < deadline) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) {
      closed = true;
      break;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      closed = true;  // reset
      break;
    }
    r.data.append(buf, static_cast<size_t>(n));
    if (!mode.until_close && response_complete(r.data)) break;
  }
  ::close(fd);
  const bool complete = response_complete(r.data);
  if (r.data.size() >= 12 && r.data.rfind("HTTP/1.", 0) == 0 && (complete || closed))
    r.status = std::atoi(r.data.c_str() + 9);
  else if (!r.data.empty() && r.data.rfind("HTTP/1.", 0) != 0)
    r.status = kNotHttp;
  else
    r.status = closed && r.data.empty() ? kClosed : kTimeout;
  if (mode.until_close && count_responses(r.data) > 1) r.status = kTwoAnswers;
  return r;
}

// A request as bytes. `length` adds a Content-Length that matches the body.
std::string request(const std::string& method, const std::string& target,
                    const std::vector<std::string>& headers, const std::string& body = "",
                    bool length = true) {
  std::string s = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& h : headers) s += h + "\r\n";
  if (length) s += fmt::format("Content-Length: {}\r\n", body.size());
  return s + "\r\n" + body;
}
const std::string kAuth = std::string("Authorization: Bearer ") + kApiKey;
const std::string kJson = "Content-Type: application/json";

// ---------------------------------------------------------------------------------------------
// The clients.

const char* const kSystem = "You are a careful Python programmer. Answer with code only.";
const char* const kTopics[] = {
    "parse a CSV file",      "merge two sorted lists", "compute a checksum",
    "walk a directory tree", "retry a flaky call",     "cache a function",
    "tokenize a string",     "format a table",         "read a config file",
    "count words in a file", "flatten a nested list",  "validate an email address"};
const char* const kInjection =
    "q%22%7D%201%0Aflashrt_injected_total%2042%0Ajunk%7Bx=%22";  // "} 1\nflashrt_injected_total...

std::string session_path(const std::string& id, const char* op = nullptr) {
  return "/v1/sessions/" + id + (op ? std::string("/") + op : "");
}

// The "id" of a 2xx reply's object ("" when there is none).
std::string id_of(const Reply& r) {
  if (r.status / 100 != 2 || !r.j.is_object() || !r.j.contains("id") || !r.j["id"].is_string())
    return "";
  return r.j["id"].get<std::string>();
}

std::vector<int64_t> token_ids(const Reply& r) {
  std::vector<int64_t> ids;
  auto add = [&](const json& j) {
    if (j.is_object() && j.contains("token_ids") && j["token_ids"].is_array())
      for (const auto& x : j["token_ids"])
        ids.push_back(x.is_number_integer() ? x.get<int64_t>() : -1);
  };
  if (!r.events.empty())
    for (const auto& e : r.events) add(e);
  else
    add(r.j);
  return ids;
}

// A completion's choices ([] when there are none).
json choices(const Reply& r) {
  return r.j.is_object() ? r.j.value("choices", json::array()) : json::array();
}

std::string ids_str(const std::vector<int64_t>& ids) {
  return fmt::format("[{}]", fmt::join(ids, ","));
}

// A malformed request: its bytes, what it must get, and how it is sent.
struct BadCase {
  std::string kind;
  Expect expect;
  std::string bytes;
  RawMode mode = {};
  double timeout_s = 15;
};

// The server under test, as the clients see it.
struct Target {
  int port = 0;
  int64_t ctx = 0;       // tokens per slot
  std::string model_id;  // as /v1/models names it
};

class Client {
 public:
  Client(const Target& t, uint64_t seed, Shared& shared)
      : t_(t), port_(t.port), rec_(shared), http_(t.port, rec_), rng_(seed) {}

  void run(Clock::time_point deadline) {
    while (Clock::now() < deadline) {
      try {
        step();
      } catch (const std::exception& e) {  // a response of an unexpected shape
        rec_.check(false, "every response has the documented shape", e.what());
      }
    }
  }
  Recorder& recorder() { return rec_; }

 private:
  uint64_t pick(uint64_t n) { return rng_() % n; }
  bool chance(int percent) { return pick(100) < static_cast<uint64_t>(percent); }
  std::string topic() { return kTopics[pick(std::size(kTopics))]; }

  void step() {
    const uint64_t r = pick(100);
    if (r < 14)
      chat();
    else if (r < 28)
      completion();
    else if (r < 42)
      session_flow();
    else if (r < 50)
      capsule_flow();
    else if (r < 56)
      monitoring();
    else if (r < 62)
      unusual_but_valid();
    else if (r < 63)
      stalled_body();
    else
      malformed();
  }

  // Greedy, or seeded sampling.
  void sampling(json& body) {
    if (chance(50)) {
      body["temperature"] = 0;
    } else {
      body["temperature"] = 0.8;
      body["top_p"] = 0.95;
      body["seed"] = pick(1000000);
      if (chance(30)) body["top_k"] = 40;
      if (chance(20)) body["presence_penalty"] = 0.5;
    }
  }

  void chat() {
    const size_t n = chance(20) ? 2 + pick(2) : 1;
    json body = {{"model", "soak"},
                 {"messages",
                  {{{"role", "system"}, {"content", kSystem}},
                   {{"role", "user"}, {"content", "Write a function to " + topic() + "."}}}},
                 {"max_tokens", 1 + pick(10)}};
    sampling(body);
    if (n > 1) body["n"] = n;
    if (chance(30)) {
      body["logprobs"] = true;
      body["top_logprobs"] = pick(4);
    }
    if (chance(50)) {
      body["stream_options"] = {{"include_usage", true}};
      if (chance(10)) {
        body["max_tokens"] = 200;
        http_.stream("chat stream, client hangs up", "/v1/chat/completions", body, kOk, 2);
      } else {
        http_.stream("chat stream", "/v1/chat/completions", body);
      }
      return;
    }
    const Reply r = http_.post("chat", "/v1/chat/completions", body);
    if (r.status == 200) rec_.check(choices(r).size() == n, "chat: n choices", r.body);
  }

  void completion() {
    json prompt;
    switch (pick(3)) {
      case 0:
        prompt = "def " + topic().substr(0, 6) + "(x):\n";
        break;
      case 1: {
        std::vector<int> ids;
        for (uint64_t i = 0, len = 4 + pick(16); i < len; ++i)
          ids.push_back(static_cast<int>(300 + pick(7000)));
        prompt = ids;
        break;
      }
      default:
        prompt = json::array({"import os\n# " + topic() + "\n"});
    }
    const size_t n = chance(20) ? 2 + pick(2) : 1;
    json body = {{"prompt", prompt}, {"max_tokens", 1 + pick(12)}};
    sampling(body);
    if (n > 1) body["n"] = n;
    const bool logprobs = chance(30);
    if (logprobs) body["logprobs"] = pick(4);
    if (chance(10)) body["echo"] = true;
    if (chance(10)) body["stop"] = json::array({"\n\n", "return"});
    if (chance(40)) {
      http_.stream("completion stream", "/v1/completions", body);
      return;
    }
    const Reply r = http_.post("completion", "/v1/completions", body);
    if (r.status == 200)
      rec_.check(choices(r).size() == n && (!logprobs || choices(r)[0]["logprobs"].is_object()),
                 "completion: n choices, logprobs when asked", r.body);
  }

  Reply generate(const std::string& id, const json& body) {
    if (chance(50))
      return http_.stream("session generate stream", session_path(id, "generate"), body);
    return http_.post("session generate", session_path(id, "generate"), body);
  }

  // create, then a few operations, then everything it made is deleted.
  void session_flow() {
    std::vector<std::string> sessions, capsules;
    json create;
    switch (pick(4)) {
      case 0:
        create = {{"text", "import os\n# " + topic() + "\n"}};
        break;
      case 1:
        create = {{"system", kSystem},
                  {"messages", {{{"role", "user"}, {"content", "Please " + topic() + "."}}}},
                  {"add_generation_prompt", true}};
        break;
      case 2:
        create = {{"text", "class " + topic().substr(0, 4) + ":\n"}, {"seed", pick(1000)}};
        break;
      default:
        create = json::object();  // an empty session
    }
    Reply c = http_.post("session create", "/v1/sessions", create);
    const std::string id = id_of(c);
    if (id.empty()) return;
    sessions.push_back(id);
    if (create.empty()) {
      http_.post("session generate, empty session (400)", session_path(id, "generate"),
                 {{"max_tokens", 2}}, Expect{400});
      http_.post("session append", session_path(id, "append"), {{"text", "def f(x):\n"}});
    }
    for (uint64_t i = 0, ops = 2 + pick(4); i < ops; ++i) {
      switch (pick(8)) {
        case 0:
          http_.post("session append", session_path(id, "append"),
                     {{"text", "\n# " + topic() + "\n"}});
          break;
        case 1: {
          json g = {{"max_tokens", 1 + pick(8)}};
          sampling(g);
          g.erase("seed");  // the session's RNG, or a seed: both fine
          generate(id, g);
          break;
        }
        case 2:
          fork_agrees(id, sessions);
          break;
        case 3:
          restore_repeats(id, capsules);
          break;
        case 4:
          interrupt_running(id);
          break;
        case 5: {
          const Reply in =
              http_.post("session interrupt, idle", session_path(id, "interrupt"), json::object());
          if (in.status == 200)
            rec_.check(in.j.value("interrupted", true) == false,
                       "an idle session's interrupt stops nothing", in.body);
          break;
        }
        case 6:
          http_.get("session get", session_path(id));
          http_.get("sessions list", "/v1/sessions");
          break;
        default:  // documented refusals on an object the client owns
          http_.post("session restore, unknown capsule (404)", session_path(id, "restore"),
                     {{"capsule", "cap_0000000000000000"}}, Expect{404});
          http_.post("session generate, n = 2 (400)", session_path(id, "generate"),
                     {{"max_tokens", 2}, {"n", 2}}, Expect{400});
      }
    }
    for (const auto& cap : capsules) http_.del("capsule delete", "/v1/capsules/" + cap);
    for (auto it = sessions.rbegin(); it != sessions.rend(); ++it)
      http_.del("session delete", session_path(*it));
    if (chance(30)) http_.get("session get, deleted (404)", session_path(id), Expect{404});
  }

  // A fork continues exactly as its parent does (greedy).
  void fork_agrees(const std::string& id, std::vector<std::string>& sessions) {
    const Reply f = http_.post("session fork", session_path(id, "fork"), json::object());
    const std::string child = id_of(f);
    if (child.empty()) return;
    sessions.push_back(child);
    const json g = {{"max_tokens", 1 + pick(6)}, {"temperature", 0}, {"ignore_eos", true}};
    const Reply a = generate(id, g);
    const Reply b = generate(child, g);
    if (a.status == 200 && b.status == 200)
      rec_.check(token_ids(a) == token_ids(b), "a fork continues as its parent",
                 ids_str(token_ids(a)) + " vs " + ids_str(token_ids(b)));
  }

  // Snapshot, generate, restore, generate again: the same tokens (greedy, or sampled with the
  // session's RNG, which the capsule carries).
  void restore_repeats(const std::string& id, std::vector<std::string>& capsules) {
    const Reply s = http_.post("session snapshot", session_path(id, "snapshot"), json::object());
    const std::string cap = id_of(s);
    if (cap.empty()) return;
    capsules.push_back(cap);
    json g = {{"max_tokens", 1 + pick(6)}, {"ignore_eos", true}};
    g["temperature"] = chance(50) ? 0.0 : 0.9;
    const Reply a = generate(id, g);
    const Reply r = http_.post("session restore", session_path(id, "restore"), {{"capsule", cap}});
    if (a.status != 200 || r.status != 200) return;
    const Reply b = generate(id, g);
    if (b.status == 200)
      rec_.check(token_ids(a) == token_ids(b), "a restore repeats the tokens after its snapshot",
                 ids_str(token_ids(a)) + " vs " + ids_str(token_ids(b)));
  }

  // A long generation streamed on another connection, interrupted while it runs.
  void interrupt_running(const std::string& id) {
    Reply streamed;
    std::thread t([&] {
      Http h(port_, rec_);
      streamed = h.stream("session generate stream, interrupted", session_path(id, "generate"),
                          {{"max_tokens", 120}, {"temperature", 0}, {"ignore_eos", true}});
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + pick(200)));
    http_.post("session interrupt, running", session_path(id, "interrupt"), json::object());
    t.join();
    if (streamed.status == 200 && streamed.done) {
      const std::string reason =
          streamed.events.empty() ? "" : streamed.events.back().value("finish_reason", "");
      rec_.check(reason == "cancelled" || reason == "length",
                 "an interrupted stream ends cancelled (or had finished)", streamed.body);
    }
  }

  // Snapshot, list, export, import (PUT or POST), restore the import, compare, delete both.
  void capsule_flow() {
    const Reply c =
        http_.post("session create", "/v1/sessions", {{"text", "import sys\n# " + topic() + "\n"}});
    const std::string id = id_of(c);
    if (id.empty()) return;
    std::vector<std::string> capsules;
    const Reply s = http_.post("session snapshot", session_path(id, "snapshot"), json::object());
    if (const std::string cap = id_of(s); !cap.empty()) {
      capsules.push_back(cap);
      const Reply list = http_.get("capsule list", "/v1/capsules");
      if (list.status == 200) {
        bool listed = false;
        for (const auto& x : list.j.value("data", json::array()))
          listed |= x.value("id", "") == cap;
        rec_.check(listed, "a snapshot is listed", cap);
      }
      const Reply file = http_.get("capsule export", "/v1/capsules/" + cap);
      if (file.status == 200 && !file.body.empty()) {
        if (chance(30)) {
          std::string cut = file.body.substr(0, pick(file.body.size()));
          http_.put_bytes("bad: capsule upload, truncated (400)", "/v1/capsules", std::move(cut),
                          Expect{400});
        }
        if (chance(30)) {
          // A byte that is not zero: the writer's alignment padding is zeros no checksum covers.
          std::string bad = file.body;
          size_t at = pick(bad.size());
          while (at < bad.size() && bad[at] == 0) ++at;
          if (at == bad.size()) at = 0;
          bad[at] ^= static_cast<char>(1 + pick(255));
          const Reply r = http_.put_bytes("bad: capsule upload, one byte changed (400)",
                                          "/v1/capsules", std::move(bad), Expect{400});
          if (const std::string taken = id_of(r); !taken.empty()) capsules.push_back(taken);
        }
        const Reply imp = http_.put_bytes("capsule import", "/v1/capsules", file.body, Expect{201},
                                          chance(50) ? "PUT" : "POST");
        if (const std::string copy = id_of(imp); !copy.empty()) {
          capsules.push_back(copy);
          rec_.check(imp.j.value("pos", -1) == s.j.value("pos", -2),
                     "an imported capsule has the original's position", imp.body);
          const json g = {{"max_tokens", 1 + pick(6)}, {"temperature", 0}, {"ignore_eos", true}};
          Reply a, b;
          if (http_.post("session restore", session_path(id, "restore"), {{"capsule", copy}})
                  .status == 200)
            a = generate(id, g);
          if (http_.post("session restore", session_path(id, "restore"), {{"capsule", cap}})
                  .status == 200)
            b = generate(id, g);
          if (a.status == 200 && b.status == 200)
            rec_.check(token_ids(a) == token_ids(b),
                       "an exported and imported capsule restores as the original",
                       ids_str(token_ids(a)) + " vs " + ids_str(token_ids(b)));
        }
      }
    }
    for (const auto& cap : capsules) http_.del("capsule delete", "/v1/capsules/" + cap);
    if (!capsules.empty() && chance(50))
      http_.del("capsule delete, deleted (404)", "/v1/capsules/" + capsules[0], Expect{404});
    http_.del("session delete", session_path(id));
  }

  void monitoring() {
    switch (pick(6)) {
      case 0: {
        const Reply r = http_.get("GET /health", "/health");
        if (r.status == 200) rec_.check(r.j.value("status", "") == "ok", "/health is ok", r.body);
        break;
      }
      case 1: {
        const Reply r = http_.get("GET /metrics", "/metrics");
        if (r.status == 200)
          rec_.check(r.body.find("flashrt_injected_total") == std::string::npos,
                     "/metrics has no forged line", r.body);
        break;
      }
      case 2:
        http_.get("GET /v1/models", "/v1/models");
        break;
      case 3:
        http_.get("GET /v1/models/{id}", "/v1/models/" + t_.model_id);
        break;
      case 4:
        http_.get("GET /v1/models/{id}, unknown (404)", "/v1/models/gpt-9", Expect{404});
        break;
      default:
        http_.get("capsule list", "/v1/capsules");
    }
  }

  // Bytes in unusual but valid shapes: must be answered as the plain request would be.
  void unusual_but_valid() {
    const json small = {{"prompt", "def f():"}, {"max_tokens", 2}, {"temperature", 0}};
    json big = small;
    big["padding"] = std::string(9000 + pick(40000), 'a');
    const std::string b = small.dump();
    std::string kind;
    std::string bytes;
    switch (pick(6)) {
      case 0:
        kind = "odd: text/plain body";
        bytes = request("POST", "/v1/completions", {kAuth, "Content-Type: text/plain"}, b);
        break;
      case 1:
        kind = "odd: body over 8 KiB without a content type";
        bytes = request("POST", "/v1/completions", {kAuth}, big.dump());
        break;
      case 2:
        kind = "odd: form-typed body over 8 KiB";
        bytes = request("POST", "/v1/completions",
                        {kAuth, "Content-Type: application/x-www-form-urlencoded"}, big.dump());
        break;
      case 3:
        kind = "odd: json with charset";
        bytes = request("POST", "/v1/completions",
                        {kAuth, "Content-Type: application/json; charset=utf-8"}, b);
        break;
      case 4:
        kind = "odd: the same Content-Length twice";
        bytes = request("POST", "/v1/completions",
                        {kAuth, kJson, fmt::format("Content-Length: {}", b.size())}, b);
        break;
      default:
        kind = "odd: lower-case header names";
        bytes = fmt::format(
            "POST /v1/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n"
            "content-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
            kApiKey, b.size(), b);
    }
    raw(BadCase{kind, kOk, bytes, {}, kReadTimeout});
  }

  // A body shorter than its Content-Length on a connection left open: 400 after the server's
  // read timeout (kReadTimeoutSeconds), not never.
  void stalled_body() {
    raw(BadCase{
        "bad: body shorter than Content-Length, connection kept open",
        Expect{400},
        request("POST", "/v1/sessions", {kAuth, kJson, "Content-Length: 100"}, "{\"text\"", false),
        {},
        flashrt::server::kReadTimeoutSeconds + 10.0});
  }

  void raw(const BadCase& c) {
    const auto t0 = Clock::now();
    const RawReply r = raw_exchange(port_, c.bytes, c.timeout_s, c.mode);
    rec_.record(c.kind, c.expect, r.status, secs(Clock::now() - t0),
                r.data.empty() ? "(request) " + c.bytes : r.data);
  }

  std::string random_bytes(size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(pick(256));
    s[0] = static_cast<char>(0x80 | pick(128));  // never a method's first letter
    return s;
  }

  void malformed() {
    const std::string post_chat = "/v1/chat/completions";
    auto json_post = [&](const std::string& body, const std::string& path = "/v1/completions") {
      return request("POST", path, {kAuth, kJson}, body);
    };
    const std::string head =
        "POST /v1/sessions HTTP/1.1\r\nHost: x\r\n" + kAuth + "\r\n" + kJson + "\r\n";
    BadCase c;
    switch (pick(30)) {
      case 0:
        c = {"bad: invalid JSON", Expect{400},
             json_post(R"({"messages": [{"role": "user", "content": "hi"})", post_chat)};
        break;
      case 1: {
        const char* bodies[] = {"[1, 2, 3]", "\"prompt\"", "42", "null", "", "{\"prompt\": }"};
        c = {"bad: body not a JSON object", Expect{400},
             json_post(bodies[pick(std::size(bodies))])};
        break;
      }
      case 2: {
        const size_t depth = 70 + pick(200);
        c = {"bad: JSON nested too deep", Expect{400},
             json_post("{\"prompt\": " + std::string(depth, '[') + std::string(depth, ']') + "}")};
        break;
      }
      case 3: {
        const char* bodies[] = {R"({"prompt": "x", "max_tokens": "many"})",
                                R"({"messages": "hi"})",
                                R"({"prompt": "x", "temperature": "hot"})",
                                R"({"prompt": "x", "stream": "yes"})",
                                R"({"prompt": 7})",
                                R"({"prompt": "x", "stop": [1, 2]})",
                                R"({"prompt": "x", "logit_bias": {"12": "up"}})"};
        c = {"bad: field of the wrong type", Expect{400},
             json_post(bodies[pick(std::size(bodies))])};
        break;
      }
      case 4: {
        const char* bodies[] = {R"({"prompt": "x", "max_tokens": -3})",
                                R"({"prompt": "x", "n": 65})",
                                R"({"prompt": "x", "logprobs": 21})",
                                R"({"prompt": "x", "top_p": 0})",
                                R"({"prompt": "x", "logit_bias": {"99999999": 1}})",
                                R"({"prompt": "x", "presence_penalty": 3})",
                                R"({"prompt": "x", "best_of": 2})",
                                R"({"prompt": ["a", "b"]})",
                                R"({"prompt": [999999]})"};
        c = {"bad: field out of range", Expect{400}, json_post(bodies[pick(std::size(bodies))])};
        break;
      }
      case 5:
        c = {"bad: invalid UTF-8 in a string", Expect{400},
             json_post("{\"prompt\": \"def \xff\xfe\xc3(\"}")};
        break;
      case 6: {
        const char* bodies[] = {R"({"prompt": ""})", R"({"messages": []})",
                                R"({"messages": [{"role": "wizard", "content": "x"}]})",
                                R"({"messages": [{"content": "x"}]})"};
        const bool chat = pick(2) == 1;
        const char* b = chat ? bodies[1 + pick(3)] : bodies[0];
        c = {"bad: empty prompt or bad messages", Expect{400},
             json_post(b, chat ? post_chat : "/v1/completions")};
        break;
      }
      case 7: {
        std::string ids = "[1";
        for (int64_t i = 0; i < t_.ctx + 50; ++i) ids += ",300";
        c = {"bad: prompt over the context", Expect{400}, json_post("{\"prompt\": " + ids + "]}")};
        break;
      }
      case 8:
        c = {"bad: POST without Content-Length", Expect{400},
             request("POST", "/v1/completions", {kAuth, kJson}, "", false)};
        break;
      case 9:
        c = {"bad: body shorter than Content-Length, then EOF", kRefused,
             head + "Content-Length: 200\r\n\r\n{\"text\": \"import", RawMode{true, false, ""}};
        break;
      case 10:
        c = {"bad: negative Content-Length", Expect{400}, head + "Content-Length: -5\r\n\r\n{}"};
        break;
      case 11: {
        const char* v[] = {"12abc", "0x10", "1e3", "+2", "2 2", "two"};
        c = {"bad: Content-Length not a number", Expect{400},
             head + "Content-Length: " + v[pick(std::size(v))] + "\r\n\r\n{}"};
        break;
      }
      case 12:
        c = {"bad: Content-Length over the limit (413)", Expect{413},
             head + "Content-Length: 99999999999999\r\n\r\n{}"};
        break;
      case 13:
        c = {"bad: Content-Length of 25 digits", Expect{400},
             head + "Content-Length: 1234567890123456789012345\r\n\r\n{}"};
        break;
      case 14:
        c = {"bad: conflicting Content-Length", Expect{400},
             head + "Content-Length: 2\r\nContent-Length: 7\r\n\r\n{}"};
        break;
      case 15:
        c = {"bad: Content-Length with chunked (411)", Expect{411},
             head + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}"};
        break;
      case 16:
        c = {"bad: chunked body (411)", Expect{411},
             head + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"};
        break;
      case 17:
        c = {"bad: Expect 100-continue over the limit (413)", Expect{413},
             head + "Expect: 100-continue\r\nContent-Length: 99999999999999\r\n\r\n"};
        break;
      case 18: {
        const std::string lines[] = {
            "GARBAGE\r\n\r\n",
            "GET\r\n\r\n",
            "\r\n\r\n",
            "GET  HTTP/1.1\r\n\r\n",
            "POST /v1/completions\r\n\r\n",
            std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11),
            random_bytes(1 + pick(600)) + "\r\n\r\n"};
        c = {"bad: garbage request line", kRefused, lines[pick(std::size(lines))]};
        break;
      }
      case 19:
        c = {"bad: path over 8 KiB", kRefused,
             request("GET", "/v1/models/" + std::string(8200 + pick(20000), 'a'), {kAuth}, "",
                     false)};
        break;
      case 20:
        c = {"bad: header line over 8 KiB", kRefused,
             request("GET", "/health", {"X-Padding: " + std::string(8200 + pick(20000), 'b')}, "",
                     false)};
        break;
      case 21: {
        const std::string path = "/v1/capsules/x/" + std::string(kInjection);
        const std::string variants[] = {
            request("GET", path, {kAuth}, "", false), request("POST", path, {kAuth, kJson}, "{}"),
            request("DELETE", path, {kAuth}, "", false),
            request("GET", "/metrics/" + std::string(kInjection), {}, "", false)};
        c = {"bad: /metrics label injection path (404)", Expect{404},
             variants[pick(std::size(variants))]};
        break;
      }
      case 22: {
        const std::string variants[] = {
            request("GET", "/v1/nope", {kAuth}, "", false),
            request("POST", "/v2/completions", {kAuth, kJson}, "{}"),
            request("GET", "/v1/sessions/a/b/c", {kAuth}, "", false),
            request("PATCH", "/v1/sessions", {kAuth, kJson}, "{}"),
            request("DELETE", "/v1/models", {kAuth}, "", false),
            request("GET", "/" + std::string(4000 + pick(4000), 'p'), {kAuth}, "", false)};
        c = {"bad: unknown route", kClientError, variants[pick(std::size(variants))]};
        break;
      }
      case 23: {
        const std::string auth[] = {"",
                                    "Authorization: Bearer wrong",
                                    "Authorization: Basic c29hazpzb2Fr",
                                    "Authorization: Bearer",
                                    "Authorization: Bearer  soak-key",
                                    std::string("Authorization: Bearersoak-key"),
                                    "Authorization: Bearer soak-key-and-more"};
        const std::string& a = auth[pick(std::size(auth))];
        std::vector<std::string> hs;
        if (!a.empty()) hs.push_back(a);
        const std::string variants[] = {request("GET", "/v1/models", hs, "", false),
                                        request("POST", "/v1/sessions", hs, "{}"),
                                        request("DELETE", "/v1/sessions/sess_x", hs, "", false)};
        c = {"bad: bearer token (401)", Expect{401}, variants[pick(std::size(variants))]};
        break;
      }
      case 24: {
        const std::string variants[] = {
            request("GET", "/v1/sessions/sess_doesnotexist", {kAuth}, "", false),
            request("POST", "/v1/sessions/sess_doesnotexist/generate", {kAuth, kJson}, "{}"),
            request("POST", "/v1/sessions/sess_doesnotexist/fork", {kAuth, kJson}, "{}"),
            request("DELETE", "/v1/capsules/cap_doesnotexist", {kAuth}, "", false),
            request("GET", "/v1/capsules/..%2F..%2Fetc%2Fpasswd", {kAuth}, "", false),
            request("GET", "/v1/capsules/" + std::string(200, 'c'), {kAuth}, "", false)};
        c = {"bad: unknown session or capsule (404)", Expect{404},
             variants[pick(std::size(variants))]};
        break;
      }
      case 25: {
        const std::string bodies[] = {"", random_bytes(1 + pick(5000)), "FLASHRT-CAPSULE"};
        c = {"bad: capsule upload that is not a capsule (400)", Expect{400},
             request("PUT", "/v1/capsules", {kAuth, "Content-Type: application/octet-stream"},
                     bodies[pick(std::size(bodies))])};
        break;
      }
      case 26: {
        const std::string variants[] = {
            request("GET", "/v1/sessions/%zz%", {kAuth}, "", false),
            request("GET", "/v1/models%00", {kAuth}, "", false),
            request("GET", "/v1/sessions/sess_%0d%0aX:%20y", {kAuth}, "", false)};
        c = {"bad: odd bytes in the path", kRefused, variants[pick(std::size(variants))]};
        break;
      }
      case 27: {
        // Header lines RFC 9112 calls invalid, which cpp-httplib skips: only 5xx would be wrong.
        const std::string variants[] = {"GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
                                        "GET /health HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n",
                                        "GET /health HTTP/1.1\r\nHost: x\r\n X-Folded: y\r\n\r\n"};
        c = {"lenient: invalid header line (skipped)", kTolerated,
             variants[pick(std::size(variants))]};
        break;
      }
      case 28: {
        c = {"bad: multipart content type on a JSON route", kClientError,
             request("POST", "/v1/completions",
                     {kAuth, "Content-Type: multipart/form-data; boundary=x"},
                     R"({"prompt": "def f():", "max_tokens": 2})")};
        break;
      }
      default: {
        // Whitespace between a header name and its colon: RFC 9112 section 5.1 says 400. A
        // server that ignores such a Content-Length serves the body as the next request (a front
        // proxy that honours it would forward that request unseen); one that ignores such a
        // Transfer-Encoding disagrees with a proxy on where the body ends.
        const std::string smuggled = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if (chance(50)) {
          // Also a tab before the colon, a folded line and an empty value: none may let the
          // body through as a request of its own.
          const std::string lines[] = {"Content-Length : {}", "Content-Length\t: {}",
                                       " Content-Length: {}", "Content-Length: \r\nX-Length: {}"};
          c = {"bad: Content-Length line out of shape (400, body not served as a request)",
               Expect{400},
               "POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + kAuth + "\r\n" + kJson + "\r\n" +
                   fmt::format(fmt::runtime(lines[pick(std::size(lines))]), smuggled.size()) +
                   "\r\n\r\n",
               RawMode{false, true, smuggled}};
        } else {
          c = {"bad: 'Transfer-Encoding :' with a Content-Length (400)", Expect{400},
               request("POST", "/v1/completions",
                       {kAuth, kJson, "Connection: close", "Transfer-Encoding : chunked"},
                       R"({"prompt": "def f():", "max_tokens": 2, "temperature": 0})"),
               RawMode{false, true, ""}};
        }
      }
    }
    raw(c);
  }

  const Target& t_;
  int port_;
  Recorder rec_;
  Http http_;
  std::mt19937_64 rng_;
};

// ---------------------------------------------------------------------------------------------
// The reference session.

const char* const kReferenceText =
    "import json\nimport os\n\n\ndef load_config(path):\n    \"\"\"Read a JSON config "
    "file.\"\"\"\n";
const json kReferenceGenerate = {{"max_tokens", 32}, {"temperature", 0}, {"ignore_eos", true}};

struct Continuation {
  bool ok = false;
  std::vector<int64_t> ids;
  std::string text;
  bool operator==(const Continuation& o) const {
    return ok && o.ok && ids == o.ids && text == o.text;
  }
  std::string str() const {
    return ok ? fmt::format("{} \"{}\"", ids_str(ids), printable(text, 400)) : "(request failed)";
  }
};

Continuation continuation_of(const Reply& g) {
  Continuation c;
  c.ok = g.status == 200 && g.j.is_object();
  if (c.ok) {
    c.ids = token_ids(g);
    c.text = g.j.value("text", "");
  }
  return c;
}

// Greedy continuation of a fork of the reference (the reference itself does not advance).
Continuation fork_continuation(Http& h, const std::string& ref) {
  const Reply f = h.post("reference fork", session_path(ref, "fork"), json::object());
  const std::string child = id_of(f);
  if (child.empty()) return {};
  const Continuation c = continuation_of(
      h.post("reference generate", session_path(child, "generate"), kReferenceGenerate));
  h.del("reference delete", session_path(child));
  return c;
}

// The same from a fresh session restored from the capsule taken at the start.
Continuation capsule_continuation(Http& h, const std::string& cap) {
  const Reply s = h.post("reference create", "/v1/sessions", json::object());
  const std::string id = id_of(s);
  if (id.empty()) return {};
  Continuation c;
  if (h.post("reference restore", session_path(id, "restore"), {{"capsule", cap}}).status == 200)
    c = continuation_of(
        h.post("reference generate", session_path(id, "generate"), kReferenceGenerate));
  h.del("reference delete", session_path(id));
  return c;
}

// ---------------------------------------------------------------------------------------------
// /metrics.

struct MetricsCheck {
  std::vector<std::string> problems;
  std::map<std::string, double> gauges;  // unlabelled samples
};

MetricsCheck check_metrics(const std::string& text) {
  // The routes of docs/API.md, written out here on purpose rather than taken from server.cpp's
  // table: the soak checks the server from outside, against what the docs promise.
  static const std::set<std::string> kRoutes = {"/health",
                                                "/metrics",
                                                "/v1/models",
                                                "/v1/models/{id}",
                                                "/v1/completions",
                                                "/v1/chat/completions",
                                                "/v1/sessions",
                                                "/v1/sessions/{id}",
                                                "/v1/sessions/{id}/append",
                                                "/v1/sessions/{id}/generate",
                                                "/v1/sessions/{id}/interrupt",
                                                "/v1/sessions/{id}/snapshot",
                                                "/v1/sessions/{id}/restore",
                                                "/v1/sessions/{id}/fork",
                                                "/v1/capsules",
                                                "/v1/capsules/{id}",
                                                "other"};
  // name{label="value",...} value, values quoted with \\ \" \n escapes.
  static const std::regex kSample(
      R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$)re");
  static const std::regex kRequests(
      R"re(^flashrt_requests_total\{route="([^"]*)",status="([0-9]+)"\} [0-9]+$)re");
  MetricsCheck m;
  if (text.find("flashrt_injected_total") != std::string::npos)
    m.problems.push_back("/metrics has a forged flashrt_injected_total line");
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#') continue;
    std::smatch s;
    if (!std::regex_match(line, s, kSample)) {
      m.problems.push_back("/metrics line is not a sample: " + printable(line));
      continue;
    }
    if (!s[2].matched) m.gauges[s[1].str()] = std::strtod(s[3].str().c_str(), nullptr);
    if (s[1].str() != "flashrt_requests_total") continue;
    std::smatch r;
    if (!std::regex_match(line, r, kRequests)) {
      m.problems.push_back("/metrics request sample with odd labels: " + printable(line));
    } else {
      if (!kRoutes.count(r[1].str()))
        m.problems.push_back("/metrics route label outside the route table: " + printable(line));
      if (r[2].str()[0] == '5') m.problems.push_back("/metrics counts a 5xx: " + line);
    }
  }
  return m;
}

// ---------------------------------------------------------------------------------------------

struct SoakOptions {
  double seconds = 600;
  int clients = 8;
  double rss_growth_mib = 256;
  double warmup = 30;
  double progress = 30;
  uint64_t seed = 1;
};

int soak(Target target, const SoakOptions& o) {
  Shared shared;
  Recorder main_rec(shared);
  const int port = target.port;
  Http h(port, main_rec);
  std::vector<std::string> failures;
  const Reply models = h.get("GET /v1/models", "/v1/models");
  const json data = models.j.is_object() ? models.j.value("data", json::array()) : json::array();
  if (models.status != 200 || data.empty() || !data[0].is_object()) {
    std::fprintf(stderr, "error: GET /v1/models: %s\n", models.body.c_str());
    return 1;
  }
  target.model_id = data[0].value("id", "");

  // The reference: a session, a capsule of it, and its continuation before any traffic.
  const Reply ref = h.post("reference create", "/v1/sessions", {{"text", kReferenceText}});
  const std::string ref_id = id_of(ref);
  if (ref_id.empty()) {
    std::fprintf(stderr, "error: cannot create the reference session: %s\n", ref.body.c_str());
    return 1;
  }
  const int64_t ref_tokens = ref.j.value("tokens", int64_t{-1});
  const Reply snap = h.post("reference snapshot", session_path(ref_id, "snapshot"), json::object());
  const std::string ref_cap = id_of(snap);
  if (ref_cap.empty()) {
    std::fprintf(stderr, "error: cannot snapshot the reference session: %s\n", snap.body.c_str());
    return 1;
  }
  const Continuation before = fork_continuation(h, ref_id);
  const Continuation before_cap = capsule_continuation(h, ref_cap);
  if (!before.ok || !(before == before_cap)) {
    std::fprintf(stderr,
                 "error: reference continuations disagree before any traffic:\n  %s\n  %s\n",
                 before.str().c_str(), before_cap.str().c_str());
    return 1;
  }
  fmt::print("reference {}: {} tokens, continues with {}\n", ref_id, ref_tokens, before.str());
  std::fflush(stdout);

  // Traffic, with a monitor: RSS every second, a progress line (and a reference check) every
  // `progress` seconds.
  const auto t0 = Clock::now();
  const auto deadline = t0 + after(o.seconds);
  const double warmup = std::min(o.warmup, o.seconds / 2);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < o.clients; ++i)
    clients.push_back(
        std::make_unique<Client>(target, o.seed * 1000003 + static_cast<uint64_t>(i), shared));
  std::vector<std::thread> threads;
  for (auto& c : clients) threads.emplace_back([&c, deadline] { c->run(deadline); });

  double baseline = 0, peak = 0;
  uint64_t ref_checks = 0, ref_mismatches = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool traffic_done = false;
  std::thread monitor([&] {
    Http mh(port, main_rec);
    bool have_baseline = false;
    double next_progress = o.progress;
    std::unique_lock<std::mutex> lock(mu);
    while (!traffic_done) {
      cv.wait_for(lock, std::chrono::seconds(1));
      if (traffic_done) break;
      const double t = secs(Clock::now() - t0), rss = rss_mib();
      if (!have_baseline && t >= warmup) {
        baseline = peak = rss;
        have_baseline = true;
      }
      if (have_baseline) peak = std::max(peak, rss);
      if (t < next_progress) continue;
      next_progress += o.progress;
      lock.unlock();
      const Continuation now = fork_continuation(mh, ref_id);
      ++ref_checks;
      const bool same = now == before;
      if (!same) {
        ++ref_mismatches;
        shared.fail("reference",
                    fmt::format("reference continuation at {:.0f} s: {}", t, now.str()));
      }
      const uint64_t n = shared.requests;
      fmt::print(
          "[{:4.0f} s] {:8} requests ({:.1f}/s), {} unexpected, {} 5xx, {} hung, {} failed checks, "
          "RSS {:.1f} MiB {}, reference {}\n",
          t, n, static_cast<double>(n) / t, shared.unexpected.load(), shared.server_errors.load(),
          shared.hung.load(), shared.check_failures.load(), rss,
          have_baseline ? fmt::format("(baseline {:.1f})", baseline) : "(warming up)",
          same ? "unchanged" : "CHANGED");
      std::fflush(stdout);
      lock.lock();
    }
  });
  for (auto& t : threads) t.join();
  const double traffic_seconds = secs(Clock::now() - t0);
  {
    std::lock_guard<std::mutex> lock(mu);
    traffic_done = true;
  }
  cv.notify_all();
  monitor.join();
  if (baseline == 0) baseline = peak = rss_mib();

  // Work still draining (cancelled streams end at their next token).
  json health;
  for (int i = 0; i < 100; ++i) {
    health = h.get("GET /health", "/health").j;
    if (health.is_object() && health.value("slots_busy", 1) == 0 &&
        health.value("queued_jobs", 1) == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // The reference, after the traffic.
  const Continuation after_fork = fork_continuation(h, ref_id);
  const Continuation after_cap = capsule_continuation(h, ref_cap);
  const Reply ref_now = h.get("reference get", session_path(ref_id));
  if (!(after_fork == before))
    failures.push_back("the reference session's continuation changed: before " + before.str() +
                       ", after " + after_fork.str());
  if (!(after_cap == before))
    failures.push_back("the reference capsule's continuation changed: before " + before.str() +
                       ", after " + after_cap.str());
  if (ref_now.j.is_object() && ref_now.j.value("tokens", int64_t{-1}) != ref_tokens)
    failures.push_back(fmt::format("the reference session has {} tokens, not {}",
                                   ref_now.j.value("tokens", int64_t{-1}), ref_tokens));
  if (ref_mismatches)
    failures.push_back(
        fmt::format("the reference continuation differed in {} of {} checks "
                    "during the traffic",
                    ref_mismatches, ref_checks));

  // Leaks and /metrics.
  health = h.get("GET /health", "/health").j;
  if (!health.is_object() || health.value("sessions", -1) != 1 ||
      health.value("slots_busy", -1) != 0 || health.value("queued_jobs", -1) != 0)
    failures.push_back("after the traffic /health should count only the reference session, idle: " +
                       health.dump());
  const Reply metrics = h.get("GET /metrics", "/metrics");
  const MetricsCheck mc = check_metrics(metrics.body);
  for (const auto& p : mc.problems) failures.push_back(p);
  const auto capsules_gauge = mc.gauges.find("flashrt_capsules");
  if (capsules_gauge == mc.gauges.end() || capsules_gauge->second != 1)
    failures.push_back(fmt::format(
        "after the traffic the capsule store should hold only the reference capsule, not {}",
        capsules_gauge == mc.gauges.end() ? -1.0 : capsules_gauge->second));

  // Memory.
  const double final_rss = rss_mib();
  peak = std::max(peak, final_rss);
  if (final_rss - baseline > o.rss_growth_mib)
    failures.push_back(
        fmt::format("RSS grew {:.1f} MiB ({:.1f} -> {:.1f}), over the bound of {} MiB",
                    final_rss - baseline, baseline, final_rss, o.rss_growth_mib));
  if (peak - baseline > o.rss_growth_mib)
    failures.push_back(
        fmt::format("RSS peaked {:.1f} MiB over its baseline ({:.1f} -> {:.1f}), "
                    "over the bound of {} MiB",
                    peak - baseline, baseline, peak, o.rss_growth_mib));

  // The counts.
  std::map<std::string, KindStats> kinds;
  std::map<std::string, CheckStats> checks;
  for (auto& c : clients) c->recorder().merge_into(kinds, checks);
  main_rec.merge_into(kinds, checks);
  if (shared.server_errors)
    failures.push_back(fmt::format("{} requests got a 5xx", shared.server_errors.load()));
  if (shared.hung)
    failures.push_back(fmt::format("{} requests got no answer in time", shared.hung.load()));
  if (shared.unexpected)
    failures.push_back(
        fmt::format("{} requests did not get what they should", shared.unexpected.load()));
  if (shared.check_failures)
    failures.push_back(fmt::format("{} consistency checks failed", shared.check_failures.load()));

  std::vector<std::pair<std::string, const KindStats*>> order;
  for (const auto& [name, k] : kinds) order.emplace_back(name, &k);
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.second->well_formed > b.second->well_formed;
  });
  uint64_t total = 0, total_well_formed = 0;
  fmt::print(
      "\n| request | want | n | 2xx | 4xx | 5xx | closed | hung | other | unexpected | p50 ms | "
      "p99 ms |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& [name, k] : order) {
    total += k->n;
    if (k->well_formed) total_well_formed += k->n;
    const std::string lat = k->well_formed
                                ? fmt::format("{:.1f} | {:.1f}", 1e3 * quantile(k->latency, 0.5),
                                              1e3 * quantile(k->latency, 0.99))
                                : "- | -";
    fmt::print("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", name, k->want, k->n,
               k->by_class[2], k->by_class[4], k->by_class[5], k->closed, k->hung,
               k->other + k->by_class[1] + k->by_class[3], k->unexpected, lat);
  }
  fmt::print("\n| check | runs | failed |\n|---|---:|---:|\n");
  for (const auto& [name, c] : checks) fmt::print("| {} | {} | {} |\n", name, c.runs, c.failed);
  fmt::print("| the reference continues unchanged (during the traffic) | {} | {} |\n", ref_checks,
             ref_mismatches);
  fmt::print(
      "\n{} clients for {:.1f} s: {} requests ({:.1f}/s; {} expecting a 2xx), {} 5xx, {} "
      "unexpected\n",
      o.clients, traffic_seconds, total, static_cast<double>(total) / traffic_seconds,
      total_well_formed, shared.server_errors.load(), shared.unexpected.load());
  fmt::print(
      "RSS: baseline {:.1f} MiB (after {:.0f} s), final {:.1f} MiB ({:+.1f}), peak {:.1f} MiB "
      "({:+.1f}), bound +{:.0f} MiB; process high-water mark {:.1f} MiB\n",
      baseline, warmup, final_rss, final_rss - baseline, peak, peak - baseline, o.rss_growth_mib,
      proc_status_mib("VmHWM:"));
  auto gauge = [&mc](const char* name) {
    const auto it = mc.gauges.find(name);
    return it == mc.gauges.end() ? -1.0 : it->second;
  };
  fmt::print("prefix cache at the end: {:.1f} of {:.0f} MiB, {:.0f} entries\n",
             gauge("flashrt_prefix_cache_bytes") / (1 << 20),
             gauge("flashrt_prefix_cache_max_bytes") / (1 << 20),
             gauge("flashrt_prefix_cache_entries"));
  fmt::print("reference: {} after the traffic (fork and capsule), {} tokens\n",
             after_fork == before && after_cap == before ? "unchanged" : "CHANGED",
             ref_now.j.is_object() ? ref_now.j.value("tokens", int64_t{-1}) : -1);
  if (failures.empty()) {
    fmt::print("PASS\n");
    return 0;
  }
  fmt::print("\nFAIL:\n");
  for (const auto& f : failures) fmt::print("  - {}\n", f);
  if (!shared.failures.empty()) {
    fmt::print("first failures (up to 3 of each kind):\n");
    for (const auto& f : shared.failures) fmt::print("  {}\n", f);
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace flashrt;
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"Bounded soak test of flashrt serve: mixed and malformed traffic, then checks"};
  std::string model_path = "models/pycoder-hybrid-12m.gguf";
  SoakOptions o;
  int slots = 4, threads = 0, http_threads = 64;
  int64_t ctx = 2048, cache_mb = 64;
  std::string device = "cpu";
  app.add_option("-m,--model", model_path, "Model")->capture_default_str();
  app.add_option("--duration", o.seconds, "Seconds of traffic")->capture_default_str();
  app.add_option("--clients", o.clients, "Concurrent clients")->capture_default_str();
  app.add_option("--slots", slots, "Server slots")->capture_default_str();
  app.add_option("--ctx", ctx, "Server context per slot")->capture_default_str();
  app.add_option("--cache-mb", cache_mb, "Server prefix-cache budget in MiB")
      ->capture_default_str();
  app.add_option("--http-threads", http_threads, "Server connection threads")
      ->capture_default_str();
  app.add_option("--rss-growth-mib", o.rss_growth_mib, "Allowed RSS growth over the baseline")
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "Seconds of traffic before the RSS baseline")
      ->capture_default_str();
  app.add_option("--progress", o.progress, "Seconds between progress lines")->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the clients' choices")->capture_default_str();
  app.add_option("-t,--threads", threads, "CPU threads for the model (default: all cores)");
  app.add_option("-d,--device", device, "Backend: cpu or cuda")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (o.seconds <= 0 || o.clients < 1 || o.progress <= 0) {
    std::fprintf(stderr, "error: --duration, --clients and --progress must be positive\n");
    return 1;
  }
  try {
    if (threads > 0) ThreadPool::set_default_threads(threads);
    auto backend = make_backend(device);
    auto model = load_model(model_path, *backend);
    server::ServerOptions so;
    so.host = "127.0.0.1";
    so.port = 0;
    so.api_key = kApiKey;
    so.http_threads = http_threads;
    so.scheduler.slots = slots;
    so.scheduler.session.max_ctx = ctx;
    so.scheduler.cache_bytes = static_cast<size_t>(std::max<int64_t>(cache_mb, 0)) << 20;
    server::Server srv(*model, *backend, load_tokenizer(model_path), so);
    const int port = srv.start();
    fmt::print(
        "soak: model {} on {}, {} slots x {} tokens, cache {} MiB, {} clients for {:.0f} s on "
        "127.0.0.1:{}, {} cores, RSS {:.1f} MiB\n",
        model_path, device, slots, ctx, cache_mb, o.clients, o.seconds, port,
        std::thread::hardware_concurrency(), rss_mib());
    std::fflush(stdout);
    const int rc = soak(Target{port, ctx, ""}, o);
    srv.stop();
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
