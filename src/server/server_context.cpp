#include "server/server_context.h"

#include <fmt/format.h>

#include <algorithm>
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
  spec.logprobs = s.logprobs;
  spec.received = received;
  if (!s.constraint.kind.empty()) {  // compiled (and refused) before anything streams
    const char* param = s.constraint.param.c_str();
    if (s.ignore_eos)
      throw ApiError(400,
                     "'ignore_eos' cannot be combined with a constrained output (it ends "
                     "at the end-of-turn token once complete)",
                     param, "unsupported_value");
    try {
      if (s.constraint.kind == "json_object")
        spec.constraint = constraint_json_object();
      else if (s.constraint.kind == "json_schema")
        spec.constraint = constraint_from_json_schema(s.constraint.schema);
      else
        spec.constraint = constraint_from_gbnf(s.constraint.grammar);
    } catch (const Error& e) {
      throw ApiError(400, fmt::format("{}: {}", s.constraint.param, e.what()), param,
                     s.constraint.kind == "grammar" ? "invalid_grammar" : "invalid_schema");
    }
  }
  if (!s.speculative.empty()) {  // refused here, before anything streams
    if (backend_name != "cpu")
      throw ApiError(400,
                     fmt::format("'speculative' runs on the CPU backend only for now (this "
                                 "server runs {})",
                                 backend_name),
                     "speculative", "unsupported_value");
    if (opt.scheduler.session.gdn_mode == GdnMode::kChunked)
      throw ApiError(400, "'speculative' needs the server's --gdn auto or recurrent", "speculative",
                     "unsupported_value");
    if (s.speculative == "mtp" && !opt.scheduler.session.mtp)
      throw ApiError(400,
                     model.cfg.mtp_layers
                         ? "speculative \"mtp\" needs the server to run the model's MTP head "
                           "(flashrt serve --mtp)"
                         : "speculative \"mtp\": this model has no MTP head",
                     "speculative", "unsupported_value");
    if (s.logprobs >= 0)
      throw ApiError(400, "'speculative' cannot be combined with 'logprobs'", "speculative",
                     "unsupported_value");
    spec.speculative = s.speculative;
    spec.draft_max = s.draft_max;
  }
  return spec;
}

std::vector<int32_t> ServerContext::encode(const std::string& text, const char* param) const {
  try {
    return tok.encode(text);
  } catch (const Error& e) {
    throw ApiError(400, e.what(), param, "invalid_text");
  }
}

std::string ServerContext::render_chat(const ChatConversation& conv, const char* param) const {
  try {
    return tok.render_conversation(conv, opt.chat_family);
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    throw ApiError(400, e.what(), param, "invalid_messages");
  }
}

const ToolCallFormat& ServerContext::tool_call_format() const {
  const ToolCallFormat* f = tool_call_format_for(tok.chat_template());
  return f ? *f : hermes_tool_call_format();
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
  // The chunks are not needed (the result holds everything): taking them as they come keeps a
  // long generation from holding every token twice.
  std::vector<StreamChunk> chunks;
  while (!stream.wait(&chunks, std::chrono::milliseconds(200))) {
    chunks.clear();
    if (ctx.stopping) stream.cancel();
  }
  return stream.result();
}

void stream_sse(ServerContext& ctx, httplib::Response& res, std::shared_ptr<TokenStream> stream,
                ChunkEvents on_chunks, FinishEvents on_finish) {
  stream_choices_sse(
      ctx, res, {std::move(stream)},
      [on_chunks](size_t, std::vector<StreamChunk>& c) { return on_chunks(c); },
      [on_finish](size_t, const RunResult& r) { return on_finish(r); },
      [](const std::vector<RunResult>&) { return std::vector<json>{}; });
}

void stream_choices_sse(ServerContext& ctx, httplib::Response& res,
                        std::vector<std::shared_ptr<TokenStream>> streams,
                        ChoiceChunkEvents on_chunks, ChoiceFinishEvents on_finish,
                        AllFinishedEvents on_all) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  struct State {
    Clock::time_point last_write = Clock::now();
    std::vector<bool> done;
    std::vector<RunResult> results;
    bool failed = false;
  };
  auto st = std::make_shared<State>();
  st->done.assign(streams.size(), false);
  st->results.resize(streams.size());
  auto cancel_all = [streams] {
    for (const auto& s : streams) s->cancel();
  };
  res.set_chunked_content_provider(
      "text/event-stream",
      [&ctx, streams, on_chunks, on_finish, on_all, st, cancel_all](size_t,
                                                                    httplib::DataSink& sink) {
        if (ctx.stopping) cancel_all();
        std::string out;
        auto emit = [&out](const std::vector<json>& evs) {
          for (const auto& ev : evs) out += "data: " + dump(ev) + "\n\n";
        };
        bool waited = false;  // one wait per call; the other choices are polled
        for (size_t i = 0; i < streams.size() && !st->failed; ++i) {
          if (st->done[i]) continue;
          std::vector<StreamChunk> chunks;
          const bool done = streams[i]->wait(&chunks, std::chrono::milliseconds(waited ? 0 : 100));
          waited = true;
          try {  // nothing may escape a content provider
            if (!chunks.empty()) emit(on_chunks(i, chunks));
            if (!done) continue;
            st->done[i] = true;
            st->results[i] = streams[i]->result();
            emit(on_finish(i, st->results[i]));
          } catch (const std::exception& e) {
            int status = 500;
            out += "data: " + dump(error_body(e, &status)) + "\n\n";
            st->failed = true;
            cancel_all();
          }
        }
        const bool over =
            st->failed || std::all_of(st->done.begin(), st->done.end(), [](bool d) { return d; });
        if (over) {
          if (!st->failed) {
            try {
              emit(on_all(st->results));
            } catch (const std::exception& e) {
              int status = 500;
              out += "data: " + dump(error_body(e, &status)) + "\n\n";
            }
          }
          out += "data: [DONE]\n\n";
        } else if (out.empty() && Clock::now() - st->last_write > std::chrono::seconds(2)) {
          // A comment line now and then: keeps proxies patient and finds clients that left.
          out = ": keep-alive\n\n";
        }
        if (!out.empty()) {
          if (!sink.write(out.data(), out.size())) {
            cancel_all();  // the client went away: stop generating for it
            return false;
          }
          st->last_write = Clock::now();
        }
        if (over) sink.done();
        return true;
      },
      [cancel_all](bool success) {
        if (!success) cancel_all();
      });
}

json usage_json(const RunResult& r) {
  json u = {{"prompt_tokens", r.prompt_tokens},
            {"completion_tokens", r.completion_tokens},
            {"total_tokens", r.prompt_tokens + r.completion_tokens},
            {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}}};
  // A speculative run (flashrt's extension): drafts the model verified, and of those accepted.
  if (r.spec_drafted > 0)
    u["speculative"] = {{"drafted_tokens", r.spec_drafted}, {"accepted_tokens", r.spec_accepted}};
  return u;
}

json usage_json(const std::vector<RunResult>& choices) {
  RunResult sum = choices.at(0);
  for (size_t i = 1; i < choices.size(); ++i) {
    sum.completion_tokens += choices[i].completion_tokens;
    sum.spec_drafted += choices[i].spec_drafted;
    sum.spec_accepted += choices[i].spec_accepted;
  }
  return usage_json(sum);
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
          {"session", r.session.empty() ? json(nullptr) : json(r.session)},
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
