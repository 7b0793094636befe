// The OpenAI-compatible routes: /v1/models, /v1/completions, /v1/chat/completions.
#include <fmt/format.h>

#include <ctime>
#include <random>

#include "server/api_error.h"
#include "server/server_context.h"

namespace flashrt::server {

using nlohmann::json;

namespace {

int64_t unix_now() {
  return static_cast<int64_t>(std::time(nullptr));
}

json model_json(const ServerContext& ctx) {
  return {{"id", ctx.model_id},
          {"object", "model"},
          {"created", ctx.started},
          {"owned_by", "flashrt"},
          {"meta",
           {{"architecture", ctx.model.arch->name()},
            {"vocab", ctx.model.cfg.vocab},
            {"n_ctx", ctx.scheduler->max_ctx()},
            {"parameters", ctx.model.param_count()},
            {"fingerprint", ctx.scheduler->fingerprint().hex()}}}};
}

// The prompt must fit the context with room for the first token's logits.
void check_prompt(const ServerContext& ctx, const std::vector<int32_t>& ids, const char* param) {
  if (ids.empty()) bad_request(param, "empty_prompt", "the prompt is empty");
  if (static_cast<int64_t>(ids.size()) > ctx.scheduler->max_ctx())
    throw ApiError(400,
                   fmt::format("the prompt is {} tokens, more than the context size {} (the "
                               "server's --ctx)",
                               ids.size(), ctx.scheduler->max_ctx()),
                   param, "context_length_exceeded");
}

std::string fingerprint_tag(const ServerContext& ctx) {
  return "fp_" + ctx.scheduler->fingerprint().hex().substr(0, 16);
}

void completions(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  const auto received = Clock::now();
  const CompletionRequest r = parse_completion_request(parse_body(req.body), ctx.vocab());
  const std::vector<int32_t> ids =
      r.prompt.is_ids ? r.prompt.ids : ctx.encode(r.prompt.text, "prompt");
  check_prompt(ctx, ids, "prompt");
  RunSpec spec = ctx.run_spec(r.s, 16, received);  // OpenAI's default max_tokens
  if (!spec.seed) spec.seed = std::random_device{}();
  spec.prefill = ids;
  spec.use_cache = true;
  spec.cache_final = true;
  const std::string echo = r.echo ? (r.prompt.is_ids ? ctx.tok.decode(ids) : r.prompt.text) : "";
  auto stream = ctx.scheduler->submit(std::move(spec));

  const std::string id = "cmpl-" + random_hex(12);
  const int64_t created = unix_now();
  auto choice = [](const std::string& text, const json& finish) {
    return json{{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}};
  };
  auto envelope = [&ctx, id, created](json choices) {
    return json{{"id", id},
                {"object", "text_completion"},
                {"created", created},
                {"model", ctx.model_id},
                {"system_fingerprint", fingerprint_tag(ctx)},
                {"choices", std::move(choices)}};
  };
  if (!r.s.stream) {
    const RunResult out = wait_result(ctx, *stream);
    json j = envelope(json::array({choice(echo + out.text, out.finish_reason)}));
    j["usage"] = usage_json(out);
    send_json(res, j);
    return;
  }
  auto echoed = std::make_shared<bool>(echo.empty());
  const bool include_usage = r.s.include_usage;
  stream_sse(
      ctx, res, stream,
      [=](std::vector<StreamChunk>& chunks) {
        std::string text = *echoed ? "" : echo;
        *echoed = true;
        for (const auto& c : chunks) text += c.text;
        std::vector<json> ev;
        if (!text.empty()) ev.push_back(envelope(json::array({choice(text, nullptr)})));
        return ev;
      },
      [=](const RunResult& out) {
        std::vector<json> ev;
        ev.push_back(envelope(json::array({choice(*echoed ? "" : echo, out.finish_reason)})));
        if (include_usage) {
          json u = envelope(json::array());
          u["usage"] = usage_json(out);
          ev.push_back(u);
        }
        return ev;
      });
}

void chat_completions(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  const auto received = Clock::now();
  const ChatRequest r = parse_chat_request(parse_body(req.body), ctx.vocab());
  ChatOptions copt;
  if (r.enable_thinking) copt.enable_thinking = *r.enable_thinking;
  std::string text;
  try {
    text = ctx.tok.render_chat(r.messages, copt);
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "messages", "invalid_messages");
  }
  const std::vector<int32_t> ids = ctx.encode(text, "messages");
  check_prompt(ctx, ids, "messages");
  RunSpec spec = ctx.run_spec(r.s, ctx.scheduler->max_ctx(), received);
  if (!spec.seed) spec.seed = std::random_device{}();
  // The history before the last message is what the next turn of this conversation shares, and
  // the boundary after the reply is where that turn continues: cache both.
  if (r.messages.size() >= 2) {
    ChatOptions hopt = copt;
    hopt.add_generation_prompt = false;
    try {
      const auto hist = ctx.tok.encode(ctx.tok.render_chat(
          std::span<const ChatMessage>(r.messages).first(r.messages.size() - 1), hopt));
      if (!hist.empty() && hist.size() < ids.size() &&
          std::equal(hist.begin(), hist.end(), ids.begin()))
        spec.cache_points.push_back(hist.size());
    } catch (const Error&) {  // a history the template will not render alone: no extra point
    }
  }
  spec.prefill = ids;
  spec.use_cache = true;
  spec.cache_final = true;
  auto stream = ctx.scheduler->submit(std::move(spec));

  const std::string id = "chatcmpl-" + random_hex(12);
  const int64_t created = unix_now();
  auto envelope = [&ctx, id, created](const char* object, json choices) {
    return json{{"id", id},
                {"object", object},
                {"created", created},
                {"model", ctx.model_id},
                {"system_fingerprint", fingerprint_tag(ctx)},
                {"choices", std::move(choices)}};
  };
  if (!r.s.stream) {
    const RunResult out = wait_result(ctx, *stream);
    json j = envelope("chat.completion",
                      json::array({{{"index", 0},
                                    {"message", {{"role", "assistant"}, {"content", out.text}}},
                                    {"logprobs", nullptr},
                                    {"finish_reason", out.finish_reason}}}));
    j["usage"] = usage_json(out);
    send_json(res, j);
    return;
  }
  auto delta = [envelope](json d, json finish) {
    return envelope("chat.completion.chunk", json::array({{{"index", 0},
                                                           {"delta", std::move(d)},
                                                           {"logprobs", nullptr},
                                                           {"finish_reason", std::move(finish)}}}));
  };
  auto opened = std::make_shared<bool>(false);
  auto open = [opened, delta](std::vector<json>& ev) {
    if (*opened) return;
    *opened = true;  // OpenAI's first chunk carries the role
    ev.push_back(delta({{"role", "assistant"}, {"content", ""}}, nullptr));
  };
  const bool include_usage = r.s.include_usage;
  stream_sse(
      ctx, res, stream,
      [=](std::vector<StreamChunk>& chunks) {
        std::vector<json> ev;
        open(ev);
        std::string text;
        for (const auto& c : chunks) text += c.text;
        if (!text.empty()) ev.push_back(delta({{"content", text}}, nullptr));
        return ev;
      },
      [=](const RunResult& out) {
        std::vector<json> ev;
        open(ev);
        ev.push_back(delta(json::object(), out.finish_reason));
        if (include_usage) {
          json u = envelope("chat.completion.chunk", json::array());
          u["usage"] = usage_json(out);
          ev.push_back(u);
        }
        return ev;
      });
}

}  // namespace

void add_openai_routes(httplib::Server& http, ServerContext& ctx) {
  http.Get("/v1/models", guarded([&ctx](const httplib::Request&, httplib::Response& res) {
             send_json(res, {{"object", "list"}, {"data", json::array({model_json(ctx)})}});
           }));
  http.Get(R"(/v1/models/([^/]+))",
           guarded([&ctx](const httplib::Request& req, httplib::Response& res) {
             if (req.matches[1] != ctx.model_id)
               throw ApiError(404,
                              fmt::format("no model '{}' (this server has '{}')",
                                          req.matches[1].str(), ctx.model_id),
                              "model", "model_not_found");
             send_json(res, model_json(ctx));
           }));
  http.Post("/v1/completions", guarded([&ctx](const httplib::Request& req, httplib::Response& res) {
              completions(ctx, req, res);
            }));
  http.Post("/v1/chat/completions",
            guarded([&ctx](const httplib::Request& req, httplib::Response& res) {
              chat_completions(ctx, req, res);
            }));
}

}  // namespace flashrt::server
