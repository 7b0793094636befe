#include "server/server_context.h"

#include <fmt/format.h>

#include <random>

#include "server/api_error.h"

namespace flashrt::server {

using nlohmann::json;

RunSpec ServerContext::run_spec(const SamplingRequest& s, int64_t default_max,
                                Clock::time_point received) const {
  RunSpec spec;
  spec.max_tokens = s.max_tokens.value_or(default_max);
  spec.params = s.params;
  spec.seed = s.seed;
  if (!s.ignore_eos) spec.stop_ids = eos_ids;
  spec.stop_ids.insert(spec.stop_ids.end(), s.stop_token_ids.begin(), s.stop_token_ids.end());
  spec.stop_strings = s.stop;
  spec.received = received;
  return spec;
}

std::vector<int32_t> ServerContext::encode(const std::string& text, const char* param) const {
  try {
    return tok.encode(text);
  } catch (const Error& e) {
    throw ApiError(400, e.what(), param, "invalid_text");
  }
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void send_json(httplib::Response& res, const json& j, int status) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

void send_error(httplib::Response& res, const std::exception& e) {
  int status = 500;
  const json body = error_body(e, &status);
  send_json(res, body, status);
}

httplib::Server::Handler guarded(
    std::function<void(const httplib::Request&, httplib::Response&)> h) {
  return [h = std::move(h)](const httplib::Request& req, httplib::Response& res) {
    try {
      h(req, res);
    } catch (const std::exception& e) {
      send_error(res, e);
    }
  };
}

RunResult wait_result(ServerContext& ctx, TokenStream& stream) {
  while (!stream.wait_done(std::chrono::milliseconds(200)))
    if (ctx.stopping) stream.cancel();
  return stream.result();
}

void stream_sse(ServerContext& ctx, httplib::Response& res, std::shared_ptr<TokenStream> stream,
                ChunkEvents on_chunks, FinishEvents on_finish) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  auto last_write = std::make_shared<Clock::time_point>(Clock::now());
  res.set_chunked_content_provider(
      "text/event-stream",
      [&ctx, stream, on_chunks, on_finish, last_write](size_t, httplib::DataSink& sink) {
        if (ctx.stopping) stream->cancel();
        std::vector<StreamChunk> chunks;
        const bool done = stream->wait(&chunks, std::chrono::milliseconds(100));
        std::string out;
        if (!chunks.empty())
          for (const auto& ev : on_chunks(chunks)) out += "data: " + dump(ev) + "\n\n";
        if (done) {
          try {
            for (const auto& ev : on_finish(stream->result())) out += "data: " + dump(ev) + "\n\n";
          } catch (const std::exception& e) {
            int status = 500;
            out += "data: " + dump(error_body(e, &status)) + "\n\n";
          }
          out += "data: [DONE]\n\n";
        } else if (out.empty() && Clock::now() - *last_write > std::chrono::seconds(2)) {
          // A comment line now and then: keeps proxies patient and finds clients that left.
          out = ": keep-alive\n\n";
        }
        if (!out.empty()) {
          if (!sink.write(out.data(), out.size())) {
            stream->cancel();  // the client went away: stop generating for it
            return false;
          }
          *last_write = Clock::now();
        }
        if (done) sink.done();
        return true;
      },
      [stream](bool success) {
        if (!success) stream->cancel();
      });
}

json usage_json(const RunResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"total_tokens", r.prompt_tokens + r.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}}};
}

json body_json(const httplib::Request& req, bool empty_ok) {
  if (empty_ok && req.body.find_first_not_of(" \t\r\n") == std::string::npos) return json::object();
  return parse_body(req.body);
}

json capsule_json(const CapsuleRecord& r) {
  return {{"id", r.id},
          {"object", "capsule"},
          {"pos", r.pos},
          {"bytes", r.bytes},
          {"fingerprint", r.fingerprint},
          {"compatible", r.compatible},
          {"persisted", !r.path.empty()},
          {"created", r.created}};
}

std::string random_hex(size_t bytes) {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  std::string s;
  for (size_t i = 0; i < bytes; i += 8) s += fmt::format("{:016x}", rng());
  return s.substr(0, bytes * 2);
}

}  // namespace flashrt::server
