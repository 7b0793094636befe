// Test helpers for the HTTP server: an in-process server on 127.0.0.1 (any free port) over the
// default model, an HTTP client, SSE parsing, and `flashrt run` as the reference for outputs.
#pragma once
#include <httplib.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "cli/cli_runner.h"
#include "models/model.h"
#include "server/server.h"
#include "test_paths.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::testing {

using nlohmann::json;

inline std::string default_model_path() {
  return source_dir() + "/models/pycoder-hybrid-12m.gguf";
}

inline server::ServerOptions test_server_options() {
  server::ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.scheduler.slots = 2;
  o.scheduler.session.max_ctx = 1024;
  o.http_threads = 32;
  return o;
}

// A server running in this process (its own model and backend) until destroyed.
class TestServer {
 public:
  // `chat_template`: Jinja source replacing the model's (serve --chat-template FILE).
  explicit TestServer(server::ServerOptions o = test_server_options(),
                      const std::string& model = default_model_path(),
                      const std::string& chat_template = "") {
    backend_ = make_backend("cpu");
    model_ = load_model(model, *backend_);
    Tokenizer tok = load_tokenizer(model);
    if (!chat_template.empty()) tok = tok.with_chat_template(chat_template);
    server_ = std::make_unique<server::Server>(*model_, *backend_, std::move(tok), o);
    port_ = server_->start();
  }
  ~TestServer() {
    server_->stop();
    server_.reset();
  }
  int port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(120);
    c->set_connection_timeout(10);
    return c;
  }
  server::Server& server() { return *server_; }

 private:
  std::unique_ptr<Model> model_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<server::Server> server_;
  int port_ = 0;
};

struct Reply {
  int status = 0;
  json body;
  std::string raw;
};

inline Reply post_json(httplib::Client& c, const std::string& path, const json& body) {
  Reply r;
  auto res = c.Post(path, body.dump(), "application/json");
  if (!res) return r;
  r.status = res->status;
  r.raw = res->body;
  r.body = json::parse(res->body, nullptr, false);
  return r;
}

inline Reply post_raw(httplib::Client& c, const std::string& path, const std::string& body,
                      const std::string& type = "application/json") {
  Reply r;
  auto res = c.Post(path, body, type);
  if (!res) return r;
  r.status = res->status;
  r.raw = res->body;
  r.body = json::parse(res->body, nullptr, false);
  return r;
}

inline Reply get(httplib::Client& c, const std::string& path) {
  Reply r;
  auto res = c.Get(path);
  if (!res) return r;
  r.status = res->status;
  r.raw = res->body;
  r.body = json::parse(res->body, nullptr, false);
  return r;
}

inline Reply del(httplib::Client& c, const std::string& path) {
  Reply r;
  auto res = c.Delete(path);
  if (!res) return r;
  r.status = res->status;
  r.raw = res->body;
  r.body = json::parse(res->body, nullptr, false);
  return r;
}

// The JSON payloads of an SSE body ("data: {...}" events), without the final [DONE].
inline std::vector<json> sse_events(const std::string& body, bool* saw_done = nullptr) {
  std::vector<json> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) end = body.size();
    const std::string ev = body.substr(pos, end - pos);
    pos = end + 2;
    if (ev.rfind("data: ", 0) != 0) continue;
    if (ev == "data: [DONE]") {
      if (saw_done) *saw_done = true;
      continue;
    }
    out.push_back(json::parse(ev.substr(6)));
  }
  return out;
}

// A value from Prometheus text: the sample named exactly `name` (with its labels, if any).
inline double metric(const std::string& text, const std::string& name) {
  size_t pos = 0;
  while ((pos = text.find(name + " ", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') return std::stod(text.substr(pos + name.size() + 1));
    pos += name.size();
  }
  return -1;
}

inline double metric(httplib::Client& c, const std::string& name) {
  auto res = c.Get("/metrics");
  return res ? metric(res->body, name) : -1;
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

// Runs tests/server/js/SCRIPT against the server with the spec as its argument; false (and the
// output in `out`) when node fails.
inline bool run_js_client(const TestServer& srv, const std::string& script, const json& spec,
                          std::string* out) {
  const std::string cmd = "cd " + shell_quote(source_dir() + "/tests/server/js") + " && node " +
                          script + " " + shell_quote(srv.base_url() + "/v1") + " " +
                          shell_quote(spec.dump()) + " 2>&1";
  out->clear();
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return false;
  char buf[4096];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, got);
  return ::pclose(p) == 0;
}

// What `flashrt run --temp 0` prints after the prompt (its final newline removed).
inline std::string flashrt_run_greedy(const std::string& prompt, int n) {
  const auto r =
      run_flashrt("run -m " + default_model_path() + " --ctx 1024 -p " + shell_quote(prompt) +
                  " -n " + std::to_string(n) + " --temp 0 --no-echo");
  if (r.status != 0) return "<flashrt run failed: " + r.out + ">";
  std::string out = r.out;
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace flashrt::testing
