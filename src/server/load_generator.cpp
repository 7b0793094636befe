#include "server/load_generator.h"

#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

namespace flashrt::server {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// One client's view of one streamed generation.
struct Streamed {
  int status = 0;
  std::vector<int32_t> ids;
  std::string text;
  int64_t completion_tokens = 0;  // from the usage the stream ends with
};

class Client {
 public:
  Client(const LoadOptions& o, LoadReport& shared, std::mutex& mu)
      : o_(o), http_(o.host, o.port), shared_(shared), mu_(mu) {
    http_.set_read_timeout(120);
    http_.set_write_timeout(30);
    if (!o.api_key.empty()) http_.set_bearer_token_auth(o.api_key);
  }

  // POST returning JSON; a non-2xx status or a transport failure is an error.
  bool post(const std::string& path, const json& body, json* out) {
    ++requests_;
    const auto t0 = Clock::now();
    auto res = http_.Post(path, body.dump(), "application/json");
    if (!res)
      return error(fmt::format("POST {}: {} after {:.3f} s", path, httplib::to_string(res.error()),
                               secs(Clock::now() - t0)));
    if (res->status / 100 != 2)
      return error(fmt::format("POST {}: HTTP {} {}", path, res->status, res->body));
    try {
      *out = json::parse(res->body);
    } catch (const std::exception& e) {
      return error(fmt::format("POST {}: bad JSON: {}", path, e.what()));
    }
    return true;
  }
  bool del(const std::string& path) {
    ++requests_;
    auto res = http_.Delete(path);
    if (!res) return error(fmt::format("DELETE {}: {}", path, httplib::to_string(res.error())));
    if (res->status / 100 != 2)
      return error(fmt::format("DELETE {}: HTTP {} {}", path, res->status, res->body));
    return true;
  }

  // A streamed generation (chat completion or session generate), timing every event.
  bool stream(const std::string& path, json body, Streamed* out) {
    ++requests_;
    body["stream"] = true;
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    if (!o_.api_key.empty()) req.set_header("Authorization", "Bearer " + o_.api_key);
    const auto t0 = Clock::now();
    auto last = t0;
    bool first = true;
    std::string buf;
    std::string failure;
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      buf.append(data, n);
      size_t end;
      while ((end = buf.find("\n\n")) != std::string::npos) {
        const std::string ev = buf.substr(0, end);
        buf.erase(0, end + 2);
        if (ev.rfind("data: ", 0) != 0) continue;
        const std::string payload = ev.substr(6);
        if (payload == "[DONE]") continue;
        json j;
        try {
          j = json::parse(payload);
        } catch (...) {
          failure = "bad SSE payload: " + payload;
          return false;
        }
        if (j.contains("error")) {
          failure = j.dump();
          return false;
        }
        if (j.contains("usage") && j["usage"].is_object())
          out->completion_tokens = j["usage"].value("completion_tokens", int64_t{0});
        size_t tokens = 0;
        if (j.contains("token_ids")) {  // a session stream
          for (const auto& x : j["token_ids"]) out->ids.push_back(x.get<int32_t>());
          tokens = j["token_ids"].size();
          out->text += j.value("text", "");
        } else if (j.contains("choices") && !j["choices"].empty()) {  // a chat stream
          const auto& d = j["choices"][0]["delta"];
          if (d.contains("content") && !d["content"].get<std::string>().empty()) {
            out->text += d["content"].get<std::string>();
            tokens = 1;  // at least one token; chunks may carry several
          }
        }
        if (!tokens) continue;
        const auto now = Clock::now();
        if (first) {
          ttft_.push_back(secs(now - t0));
          first = false;
        } else {
          for (size_t i = 0; i < tokens; ++i) itl_.push_back(secs(now - last) / tokens);
        }
        last = now;
      }
      return true;
    };
    auto res = http_.send(req);
    if (!failure.empty()) return error(path + ": " + failure);
    if (!res)
      return error(fmt::format("POST {}: {} after {:.3f} s, {} events", path,
                               httplib::to_string(res.error()), secs(Clock::now() - t0),
                               out->ids.size() + (first ? 0 : 1)));
    if (res->status / 100 != 2)
      return error(fmt::format("POST {}: HTTP {} {}", path, res->status, res->body));
    return true;
  }

  bool error(const std::string& what) {
    ++errors_;
    std::lock_guard<std::mutex> lock(mu_);
    if (shared_.error_samples.size() < 8) shared_.error_samples.push_back(what);
    return false;
  }

  void flush(uint64_t tokens) {
    std::lock_guard<std::mutex> lock(mu_);
    shared_.requests += requests_;
    shared_.errors += errors_;
    shared_.tokens += tokens;
    for (const auto& [k, n] : flows_) shared_.flows[k] += n;
    shared_.ttft.insert(shared_.ttft.end(), ttft_.begin(), ttft_.end());
    shared_.inter_token.insert(shared_.inter_token.end(), itl_.begin(), itl_.end());
  }

  std::map<std::string, uint64_t> flows_;

 private:
  const LoadOptions& o_;
  httplib::Client http_;
  LoadReport& shared_;
  std::mutex& mu_;
  uint64_t requests_ = 0, errors_ = 0;
  std::vector<double> ttft_, itl_;
};

const char* kSystem =
    "You are a careful Python programmer. Answer with code only, with docstrings, type hints "
    "and no explanations.";

const char* kTopics[] = {"parse a CSV file",      "merge two sorted lists", "compute a checksum",
                         "walk a directory tree", "retry a flaky call",     "cache a function",
                         "tokenize a string",     "format a table"};

void client_loop(const LoadOptions& o, int index, Clock::time_point deadline, LoadReport& shared,
                 std::mutex& mu) {
  Client c(o, shared, mu);
  std::mt19937_64 rng(o.seed * 1000003 + static_cast<uint64_t>(index));
  uint64_t tokens = 0;
  while (Clock::now() < deadline) {
    const std::string topic = kTopics[rng() % std::size(kTopics)];
    const int kind = static_cast<int>(rng() % 4);
    json out;
    if (kind <= 1) {  // a streamed chat completion with a shared system prompt
      Streamed s;
      json body = {{"model", "default"},
                   {"messages",
                    {{{"role", "system"}, {"content", kSystem}},
                     {{"role", "user"}, {"content", "Write a function to " + topic + "."}}}},
                   {"max_tokens", o.max_tokens},
                   {"temperature", 0.7},
                   {"seed", rng() % 1000},
                   {"stream_options", {{"include_usage", true}}}};
      if (c.stream("/v1/chat/completions", body, &s)) ++c.flows_["chat"];
      tokens += static_cast<uint64_t>(s.completion_tokens);
    } else if (kind == 2) {  // a session, a fork, both continue
      if (!c.post("/v1/sessions", {{"system", kSystem}, {"text", "def " + topic.substr(0, 5)}},
                  &out))
        continue;
      const std::string id = out["id"];
      Streamed a, b;
      json fork;
      const json gen = {{"max_tokens", o.max_tokens / 2}, {"temperature", 0}};
      bool ok = c.stream("/v1/sessions/" + id + "/generate", gen, &a) &&
                c.post("/v1/sessions/" + id + "/fork", json::object(), &fork);
      if (ok) {
        const std::string child = fork["id"];
        ok = c.stream("/v1/sessions/" + child + "/generate", gen, &b);
        c.del("/v1/sessions/" + child);
      }
      c.del("/v1/sessions/" + id);
      tokens += a.ids.size() + b.ids.size();
      if (ok) ++c.flows_["fork"];
    } else {  // snapshot, generate, restore, generate again: the same tokens
      if (!c.post("/v1/sessions", {{"text", "import os\n# " + topic + "\n"}}, &out)) continue;
      const std::string id = out["id"];
      json cap;
      Streamed a, b;
      const json gen = {{"max_tokens", o.max_tokens / 2}, {"temperature", 0}};
      bool ok = c.post("/v1/sessions/" + id + "/snapshot", json::object(), &cap) &&
                c.stream("/v1/sessions/" + id + "/generate", gen, &a);
      if (ok) {
        json r;
        ok = c.post("/v1/sessions/" + id + "/restore", {{"capsule", cap["id"]}}, &r) &&
             c.stream("/v1/sessions/" + id + "/generate", gen, &b);
        if (ok && a.ids != b.ids) ok = c.error("restore: tokens after the restore differ");
      }
      if (cap.contains("id")) c.del("/v1/capsules/" + cap["id"].get<std::string>());
      c.del("/v1/sessions/" + id);
      tokens += a.ids.size() + b.ids.size();
      if (ok) ++c.flows_["restore"];
    }
  }
  c.flush(tokens);
}

}  // namespace

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[i];
}

LoadReport run_load(const LoadOptions& o) {
  LoadReport r;
  std::mutex mu;
  const auto t0 = Clock::now();
  const auto deadline =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  std::vector<std::thread> threads;
  for (int i = 0; i < o.clients; ++i)
    threads.emplace_back([&, i] { client_loop(o, i, deadline, r, mu); });
  for (auto& t : threads) t.join();
  r.seconds = secs(Clock::now() - t0);
  return r;
}

std::string format_report(const LoadReport& r, const LoadOptions& o) {
  std::string flows;
  for (const auto& [k, n] : r.flows)
    flows += fmt::format("{}{} {}", flows.empty() ? "" : ", ", n, k);
  std::string s = fmt::format(
      "| clients | duration | requests | errors | flows | tokens/s | requests/s | TTFT p50 | TTFT "
      "p99 | inter-token p50 | inter-token p99 |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|\n"
      "| {} | {:.1f} s | {} | {} | {} | {:.1f} | {:.1f} | {:.1f} ms | {:.1f} ms | {:.1f} ms | "
      "{:.1f} ms |\n",
      o.clients, r.seconds, r.requests, r.errors, flows, static_cast<double>(r.tokens) / r.seconds,
      static_cast<double>(r.requests) / r.seconds, 1e3 * quantile(r.ttft, 0.5),
      1e3 * quantile(r.ttft, 0.99), 1e3 * quantile(r.inter_token, 0.5),
      1e3 * quantile(r.inter_token, 0.99));
  for (const auto& e : r.error_samples) s += "error: " + e + "\n";
  return s;
}

}  // namespace flashrt::server
