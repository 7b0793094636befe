// The OpenAI-compatible routes: /v1/models, /v1/completions, /v1/chat/completions.
#include <fmt/format.h>

#include <ctime>
#include <random>

#include "server/api_error.h"
#include "server/logprobs.h"
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

// The runs of a request's n choices, in order; the first failure is thrown.
std::vector<RunResult> wait_results(ServerContext& ctx,
                                    const std::vector<std::shared_ptr<TokenStream>>& streams) {
  std::vector<RunResult> out;
  try {
    for (const auto& s : streams) out.push_back(wait_result(ctx, *s));
  } catch (...) {
    for (const auto& s : streams) s->cancel();
    throw;
  }
  return out;
}

std::vector<TokenLogprob> chunk_logprobs(const std::vector<StreamChunk>& chunks) {
  std::vector<TokenLogprob> out;
  for (const auto& c : chunks) out.insert(out.end(), c.logprobs.begin(), c.logprobs.end());
  return out;
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
  const auto streams = ctx.scheduler->submit(std::move(spec), r.s.n);

  const std::string id = "cmpl-" + random_hex(12);
  const int64_t created = unix_now();
  const bool logprobs = r.s.logprobs >= 0;
  auto choice = [](size_t index, const std::string& text, json lp, const json& finish) {
    return json{
        {"text", text}, {"index", index}, {"logprobs", std::move(lp)}, {"finish_reason", finish}};
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
    const std::vector<RunResult> outs = wait_results(ctx, streams);
    json choices = json::array();
    for (size_t i = 0; i < outs.size(); ++i) {
      size_t offset = echo.size();
      choices.push_back(
          choice(i, echo + outs[i].text,
                 logprobs ? completion_logprobs(ctx.tok, outs[i].logprobs, offset) : json(nullptr),
                 outs[i].finish_reason));
    }
    json j = envelope(std::move(choices));
    j["usage"] = usage_json(outs);
    send_json(res, j);
    return;
  }
  // Per choice: whether the echo went out, and where its next token's text starts.
  struct Progress {
    bool echoed = false;
    size_t offset = 0;
  };
  auto progress = std::make_shared<std::vector<Progress>>(streams.size());
  for (auto& p : *progress) p = {echo.empty(), echo.size()};
  const bool include_usage = r.s.include_usage;
  const ServerContext* c = &ctx;
  stream_choices_sse(
      ctx, res, streams,
      [=](size_t i, std::vector<StreamChunk>& chunks) {
        Progress& p = (*progress)[i];
        std::string text = p.echoed ? "" : echo;
        p.echoed = true;
        for (const auto& ch : chunks) text += ch.text;
        const std::vector<TokenLogprob> lps = chunk_logprobs(chunks);
        std::vector<json> ev;
        if (!text.empty() || !lps.empty())
          ev.push_back(envelope(json::array({choice(
              i, text, logprobs ? completion_logprobs(c->tok, lps, p.offset) : json(nullptr),
              nullptr)})));
        return ev;
      },
      [=](size_t i, const RunResult& out) {
        Progress& p = (*progress)[i];
        const std::string text = p.echoed ? "" : echo;
        p.echoed = true;
        return std::vector<json>{
            envelope(json::array({choice(i, text, nullptr, out.finish_reason)}))};
      },
      [=](const std::vector<RunResult>& outs) {
        std::vector<json> ev;
        if (include_usage) {
          json u = envelope(json::array());
          u["usage"] = usage_json(outs);
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
  const auto streams = ctx.scheduler->submit(std::move(spec), r.s.n);

  const std::string id = "chatcmpl-" + random_hex(12);
  const int64_t created = unix_now();
  const bool logprobs = r.s.logprobs >= 0;
  auto envelope = [&ctx, id, created](const char* object, json choices) {
    return json{{"id", id},
                {"object", object},
                {"created", created},
                {"model", ctx.model_id},
                {"system_fingerprint", fingerprint_tag(ctx)},
                {"choices", std::move(choices)}};
  };
  if (!r.s.stream) {
    const std::vector<RunResult> outs = wait_results(ctx, streams);
    json choices = json::array();
    for (size_t i = 0; i < outs.size(); ++i)
      choices.push_back(
          {{"index", i},
           {"message", {{"role", "assistant"}, {"content", outs[i].text}}},
           {"logprobs", logprobs ? chat_logprobs(ctx.tok, outs[i].logprobs) : json(nullptr)},
           {"finish_reason", outs[i].finish_reason}});
    json j = envelope("chat.completion", std::move(choices));
    j["usage"] = usage_json(outs);
    send_json(res, j);
    return;
  }
  auto delta = [envelope](size_t i, json d, json lp, json finish) {
    return envelope("chat.completion.chunk", json::array({{{"index", i},
                                                           {"delta", std::move(d)},
                                                           {"logprobs", std::move(lp)},
                                                           {"finish_reason", std::move(finish)}}}));
  };
  auto opened = std::make_shared<std::vector<bool>>(streams.size(), false);
  auto open = [opened, delta](size_t i, std::vector<json>& ev) {
    if ((*opened)[i]) return;
    (*opened)[i] = true;  // OpenAI's first chunk of a choice carries the role
    ev.push_back(delta(i, {{"role", "assistant"}, {"content", ""}}, nullptr, nullptr));
  };
  const bool include_usage = r.s.include_usage;
  const ServerContext* c = &ctx;
  stream_choices_sse(
      ctx, res, streams,
      [=](size_t i, std::vector<StreamChunk>& chunks) {
        std::vector<json> ev;
        open(i, ev);
        std::string text;
        for (const auto& ch : chunks) text += ch.text;
        const std::vector<TokenLogprob> lps = chunk_logprobs(chunks);
        if (!text.empty() || !lps.empty())
          ev.push_back(delta(i, {{"content", text}},
                             logprobs ? chat_logprobs(c->tok, lps) : json(nullptr), nullptr));
        return ev;
      },
      [=](size_t i, const RunResult& out) {
        std::vector<json> ev;
        open(i, ev);
        ev.push_back(delta(i, json::object(), nullptr, out.finish_reason));
        return ev;
      },
      [=](const std::vector<RunResult>& outs) {
        std::vector<json> ev;
        if (include_usage) {
          json u = envelope("chat.completion.chunk", json::array());
          u["usage"] = usage_json(outs);
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
