// `flashrt serve`: an OpenAI-compatible HTTP API (/v1/models, /v1/completions,
// /v1/chat/completions with SSE streaming), sessions and capsules as first-class objects
// (/v1/sessions, /v1/capsules), /health and /metrics. See docs/API.md.
//
// Threads: cpp-httplib's pool serves connections (parsing, tokenizing, waiting, streaming); one
// scheduler thread owns the backend and runs every forward pass (engine/scheduler.h).
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "engine/scheduler.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace flashrt::server {

// How long a connection may stall while sending its request body before it gets 400.
inline constexpr int kReadTimeoutSeconds = 10;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (see Server::port())
  SchedulerOptions scheduler;
  std::string capsule_dir;  // empty: capsules live in memory only
  std::string api_key;      // when set, /v1/* wants "Authorization: Bearer KEY"
  std::string model_name;   // the id /v1/models reports (default: the model file's name)
  // A built-in chat template rendered natively instead of the model's (chatml, qwen3, qwen3.5);
  // empty: the tokenizer's Jinja template (serve --chat-template).
  std::string chat_family;
  int http_threads = 64;                    // connections served at once (each stream holds one)
  size_t max_body_bytes = size_t{1} << 30;  // capsule uploads are the big ones
};

class Server {
 public:
  // `model` and `backend` must outlive the server; nothing else may use the backend meanwhile.
  Server(const Model& model, Backend& backend, Tokenizer tokenizer, ServerOptions opt);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port and returns the port (the chosen one for port 0). Throws flashrt::Error.
  int bind();
  // Serves until stop() (binds first if needed).
  void serve();
  // bind() and serve() on a background thread; returns the port.
  int start();
  // Cancels running generations, stops serving and waits for the serving thread. Idempotent; safe
  // from any thread.
  void stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flashrt::server
