// What the HTTP handlers share: the model's description, tokenizer, scheduler, capsule store and
// metrics, plus helpers for JSON responses and SSE streams. Internal to src/server.
#pragma once
#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/scheduler.h"
#include "server/capsule_store.h"
#include "server/metrics.h"
#include "server/requests.h"
#include "server/server.h"
#include "server/tool_calls.h"

namespace flashrt::server {

struct ServerContext {
  ServerContext(const Model& m, Tokenizer t, ServerOptions o)
      : model(m), tok(std::move(t)), opt(std::move(o)) {}
  const Model& model;
  Tokenizer tok;
  ServerOptions opt;
  std::string model_id;
  int64_t started = 0;           // unix seconds
  std::vector<int32_t> eos_ids;  // the model's and the tokenizer's end-of-turn ids
  std::string backend_name;      // "cpu", "cuda"
  Metrics metrics;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<CapsuleStore> capsules;
  std::atomic<bool> stopping{false};

  int32_t vocab() const { return model.cfg.vocab; }
  // The run a sampling request asks for (stop ids, seed, limits); `default_max` when the request
  // gives no max_tokens.
  RunSpec run_spec(const SamplingRequest& s, int64_t default_max, Clock::time_point received) const;
  // Text -> ids with the model's tokenizer (control tokens written in the text are parsed, as
  // `flashrt run -p` does).
  std::vector<int32_t> encode(const std::string& text, const char* param) const;
  // A conversation rendered with the chat template (or the server's built-in family); the
  // template's errors are 400s naming `param`.
  std::string render_chat(const ChatConversation& conv, const char* param) const;
  // The format the template writes tool calls in (Hermes/Qwen when it is not one flashrt knows).
  const ToolCallFormat& tool_call_format() const;
};

// JSON text that never throws on invalid UTF-8 (replaced by U+FFFD).
std::string dump(const nlohmann::json& j);
void send_json(httplib::Response& res, const nlohmann::json& j, int status = 200);
void send_error(httplib::Response& res, const std::exception& e);

// Wraps a handler so that any exception becomes an error response in OpenAI's shape.
httplib::Server::Handler guarded(
    std::function<void(const httplib::Request&, httplib::Response&)> h);

// Waits for a run to end (cancelling it if the server stops meanwhile); rethrows its error.
RunResult wait_result(ServerContext& ctx, TokenStream& stream);

// Streams a run as server-sent events: `on_chunks` turns new chunks into events (none to skip),
// `on_finish` gives the last events; then "data: [DONE]". A client that goes away cancels the run.
using ChunkEvents = std::function<std::vector<nlohmann::json>(std::vector<StreamChunk>&)>;
using FinishEvents = std::function<std::vector<nlohmann::json>(const RunResult&)>;
void stream_sse(ServerContext& ctx, httplib::Response& res, std::shared_ptr<TokenStream> stream,
                ChunkEvents on_chunks, FinishEvents on_finish);
// The same for the n choices of one request, interleaved as they come: `on_chunks(i, ...)` and
// `on_finish(i, ...)` for choice i, `on_all` once every choice has ended (usage). A failed choice
// ends the stream with its error and cancels the others.
using ChoiceChunkEvents =
    std::function<std::vector<nlohmann::json>(size_t, std::vector<StreamChunk>&)>;
using ChoiceFinishEvents = std::function<std::vector<nlohmann::json>(size_t, const RunResult&)>;
using AllFinishedEvents = std::function<std::vector<nlohmann::json>(const std::vector<RunResult>&)>;
void stream_choices_sse(ServerContext& ctx, httplib::Response& res,
                        std::vector<std::shared_ptr<TokenStream>> streams,
                        ChoiceChunkEvents on_chunks, ChoiceFinishEvents on_finish,
                        AllFinishedEvents on_all);

nlohmann::json usage_json(const RunResult& r);
// The choices of one request: the prompt counted once, the completions summed.
nlohmann::json usage_json(const std::vector<RunResult>& choices);
// The request body as a JSON object; an empty body counts as {} when `empty_ok`.
nlohmann::json body_json(const httplib::Request& req, bool empty_ok);
std::string random_hex(size_t bytes);
nlohmann::json capsule_json(const CapsuleRecord& r);

void add_openai_routes(httplib::Server& http, ServerContext& ctx);
void add_session_routes(httplib::Server& http, ServerContext& ctx);
void add_capsule_routes(httplib::Server& http, ServerContext& ctx);

}  // namespace flashrt::server
