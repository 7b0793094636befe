// The native sessions API: /v1/sessions (create, list), /v1/sessions/{id} (info, delete) and
// /v1/sessions/{id}/{append,generate,interrupt,snapshot,restore,fork}.
#include <fmt/format.h>

#include "server/api_error.h"
#include "server/server_context.h"

namespace flashrt::server {

using nlohmann::json;

namespace {

json session_json(const SessionInfo& s) {
  return {{"id", s.id},       {"object", "session"}, {"tokens", s.tokens},
          {"state", s.state}, {"busy", s.busy},      {"created", s.created}};
}

// The ids a session is fed: an optional system prompt rendered as the conversation's first
// message, then messages rendered with the chat template, or text, or ids.
std::vector<int32_t> input_ids(const ServerContext& ctx, const SessionInput& in,
                               const std::optional<std::string>& system) {
  std::vector<ChatMessage> messages;
  if (system) messages.push_back({"system", *system, ""});
  messages.insert(messages.end(), in.messages.begin(), in.messages.end());
  std::vector<int32_t> ids;
  if (!messages.empty()) {
    ChatOptions opt;
    opt.add_generation_prompt = in.add_generation_prompt && !in.messages.empty();
    const std::string text = ctx.render_chat(conversation_of(messages, opt),
                                             in.messages.empty() ? "system" : "messages");
    ids = ctx.encode(text, "messages");
  }
  if (in.text) {
    const auto t = ctx.encode(*in.text, "text");
    ids.insert(ids.end(), t.begin(), t.end());
  }
  if (in.ids) ids.insert(ids.end(), in.ids->begin(), in.ids->end());
  return ids;
}

// A prefill-only run; a session that is still empty looks up and fills the prefix cache.
RunResult prefill(ServerContext& ctx, const std::string& id, std::vector<int32_t> ids,
                  std::optional<uint64_t> seed) {
  RunSpec spec;
  spec.prefill = std::move(ids);
  spec.use_cache = true;
  spec.seed = seed;
  auto stream = ctx.scheduler->run_session(id, std::move(spec));
  return wait_result(ctx, *stream);
}

void create(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  const CreateSessionRequest r = parse_create_session(body_json(req, true), ctx.vocab());
  std::vector<int32_t> ids = input_ids(ctx, r.input, r.system);
  const std::string id = ctx.scheduler->create_session();
  RunResult out;
  if (!ids.empty() || r.seed) {
    try {
      out = prefill(ctx, id, std::move(ids), r.seed);
    } catch (...) {
      ctx.scheduler->remove(id);  // a session that could not take its prompt is not kept
      throw;
    }
  }
  json j = session_json(ctx.scheduler->info(id));
  j["cached_tokens"] = out.cached_tokens;
  send_json(res, j);
}

void append(ServerContext& ctx, const std::string& id, const httplib::Request& req,
            httplib::Response& res) {
  const json body = parse_body(req.body);
  const SessionInput in = parse_session_input(Fields(body), ctx.vocab());
  if (in.empty())
    bad_request("text", "missing_field", "give 'text', 'ids' or 'messages' to append");
  std::vector<int32_t> ids = input_ids(ctx, in, std::nullopt);
  const size_t n = ids.size();
  const RunResult out = prefill(ctx, id, std::move(ids), std::nullopt);
  send_json(res, {{"id", id},
                  {"object", "session"},
                  {"tokens", out.session_tokens},
                  {"appended", n},
                  {"cached_tokens", out.cached_tokens}});
}

void generate(ServerContext& ctx, const std::string& id, const httplib::Request& req,
              httplib::Response& res) {
  const auto received = Clock::now();
  const json body = body_json(req, true);
  const auto ordered = nlohmann::ordered_json::parse(req.body, nullptr, false);
  const GenerateRequest r = parse_generate(body, ctx.vocab(), &ordered);
  const SessionInput in = parse_session_input(Fields(body), ctx.vocab());
  RunSpec spec = ctx.run_spec(r.s, 256, received);
  spec.prefill = input_ids(ctx, in, std::nullopt);  // optional: append, then generate
  auto stream = ctx.scheduler->run_session(id, std::move(spec));
  auto final_json = [id](const RunResult& out) {
    return json{{"id", id},
                {"object", "session.generation"},
                {"text", out.text},
                {"token_ids", out.ids},
                {"finish_reason", out.finish_reason},
                {"tokens", out.session_tokens},
                {"usage", usage_json(out)}};
  };
  if (!r.s.stream) {
    send_json(res, final_json(wait_result(ctx, *stream)));
    return;
  }
  stream_sse(
      ctx, res, stream,
      [id](std::vector<StreamChunk>& chunks) {
        json text = "", ids = json::array();
        std::string t;
        for (const auto& c : chunks) {
          t += c.text;
          for (int32_t x : c.ids) ids.push_back(x);
        }
        return std::vector<json>{{{"id", id},
                                  {"object", "session.generation.chunk"},
                                  {"text", t},
                                  {"token_ids", ids},
                                  {"finish_reason", nullptr}}};
      },
      [id](const RunResult& out) {
        return std::vector<json>{{{"id", id},
                                  {"object", "session.generation.chunk"},
                                  {"text", ""},
                                  {"token_ids", json::array()},
                                  {"finish_reason", out.finish_reason},
                                  {"tokens", out.session_tokens},
                                  {"usage", usage_json(out)}}};
      });
}

void interrupt(ServerContext& ctx, const std::string& id, httplib::Response& res) {
  const auto stopped = ctx.scheduler->interrupt(id);
  json j = {{"id", id}, {"object", "session"}, {"interrupted", !stopped.empty()}};
  if (!stopped.empty()) {
    // Tokens sampled when the interrupt arrived and when generation stopped: at most one apart.
    j["tokens_at_interrupt"] = stopped[0].at;
    j["tokens_generated"] = stopped[0].final;
  }
  send_json(res, j);
}

// Routes take the session id from the path's first group.
using SessionHandler =
    std::function<void(const std::string&, const httplib::Request&, httplib::Response&)>;
httplib::Server::Handler with_id(SessionHandler h) {
  return guarded([h = std::move(h)](const httplib::Request& req, httplib::Response& res) {
    h(req.matches[1].str(), req, res);
  });
}

}  // namespace

void add_session_routes(httplib::Server& http, ServerContext& ctx) {
  http.Post("/v1/sessions", guarded([&ctx](const httplib::Request& req, httplib::Response& res) {
              create(ctx, req, res);
            }));
  http.Get("/v1/sessions", guarded([&ctx](const httplib::Request&, httplib::Response& res) {
             json data = json::array();
             for (const auto& s : ctx.scheduler->list()) data.push_back(session_json(s));
             send_json(res, {{"object", "list"}, {"data", data}});
           }));
  http.Get(R"(/v1/sessions/([^/]+))",
           with_id([&ctx](const std::string& id, const httplib::Request&, httplib::Response& res) {
             send_json(res, session_json(ctx.scheduler->info(id)));
           }));
  http.Delete(
      R"(/v1/sessions/([^/]+))",
      with_id([&ctx](const std::string& id, const httplib::Request&, httplib::Response& res) {
        ctx.scheduler->remove(id);
        send_json(res, {{"id", id}, {"object", "session"}, {"deleted", true}});
      }));
  http.Post(R"(/v1/sessions/([^/]+)/append)",
            with_id([&ctx](const std::string& id, const httplib::Request& req,
                           httplib::Response& res) { append(ctx, id, req, res); }));
  http.Post(R"(/v1/sessions/([^/]+)/generate)",
            with_id([&ctx](const std::string& id, const httplib::Request& req,
                           httplib::Response& res) { generate(ctx, id, req, res); }));
  http.Post(R"(/v1/sessions/([^/]+)/interrupt)",
            with_id([&ctx](const std::string& id, const httplib::Request&, httplib::Response& res) {
              interrupt(ctx, id, res);
            }));
  http.Post(
      R"(/v1/sessions/([^/]+)/snapshot)",
      with_id([&ctx](const std::string& id, const httplib::Request& req, httplib::Response& res) {
        body_json(req, true);  // no fields yet, but a body must still be JSON
        send_json(res, capsule_json(ctx.capsules->add(ctx.scheduler->snapshot(id), id)));
      }));
  http.Post(
      R"(/v1/sessions/([^/]+)/restore)",
      with_id([&ctx](const std::string& id, const httplib::Request& req, httplib::Response& res) {
        const RestoreRequest r = parse_restore(parse_body(req.body));
        ctx.scheduler->info(id);  // 404 before reading a capsule file
        const int64_t tokens = ctx.scheduler->restore(id, ctx.capsules->load(r.capsule));
        send_json(res,
                  {{"id", id}, {"object", "session"}, {"tokens", tokens}, {"capsule", r.capsule}});
      }));
  http.Post(
      R"(/v1/sessions/([^/]+)/fork)",
      with_id([&ctx](const std::string& id, const httplib::Request& req, httplib::Response& res) {
        body_json(req, true);
        const std::string child = ctx.scheduler->fork(id);
        json j = session_json(ctx.scheduler->info(child));
        j["parent"] = id;
        send_json(res, j);
      }));
}

}  // namespace flashrt::server
