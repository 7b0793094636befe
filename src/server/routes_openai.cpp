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
  const json body = parse_body(req.body);
  const auto ordered = nlohmann::ordered_json::parse(req.body, nullptr, false);
  const CompletionRequest r = parse_completion_request(body, ctx.vocab(), &ordered);
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

// The tools a required call may use: all of them, or the one tool_choice names.
nlohmann::ordered_json callable_tools(const ChatRequest& r) {
  if (r.tool_choice.mode != "function") return r.conversation.tools;
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& t : r.conversation.tools)
    if (t["function"]["name"] == r.tool_choice.name) out.push_back(t);
  return out;
}

json tool_call_json(const ParsedToolCall& c, size_t index, bool with_index) {
  json j = {{"id", "call_" + random_hex(12)},
            {"type", "function"},
            {"function", {{"name", c.name}, {"arguments", c.arguments}}}};
  if (with_index) j["index"] = index;
  return j;
}

void chat_completions(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  const auto received = Clock::now();
  const json body = parse_body(req.body);
  const auto ordered = nlohmann::ordered_json::parse(req.body, nullptr, false);
  ChatRequest r = parse_chat_request(body, ctx.vocab(), &ordered);
  // tool_choice "none": the model is not offered the tools at all.
  const bool tools_on = r.has_tools() && r.tool_choice.mode != "none";
  if (!tools_on) r.conversation.tools = nullptr;
  const ToolCallFormat& format = ctx.tool_call_format();
  if (tools_on && (r.tool_choice.mode == "required" || r.tool_choice.mode == "function")) {
    r.s.constraint.kind = "grammar";
    r.s.constraint.param = "tool_choice";
    try {
      r.s.constraint.grammar = format.grammar(
          callable_tools(r), r.parallel_tool_calls && r.tool_choice.mode != "function");
    } catch (const Error& e) {
      throw ApiError(400, e.what(), "tools", "invalid_schema");
    }
  }
  ChatConversation conv = r.conversation;
  conv.add_generation_prompt = true;
  const std::string text = ctx.render_chat(conv, "messages");
  const std::vector<int32_t> ids = ctx.encode(text, "messages");
  check_prompt(ctx, ids, "messages");
  RunSpec spec = ctx.run_spec(r.s, ctx.scheduler->max_ctx(), received);
  if (!spec.seed) spec.seed = std::random_device{}();
  // The history before the last message is what the next turn of this conversation shares, and
  // the boundary after the reply is where that turn continues: cache both.
  if (conv.messages.size() >= 2) {
    ChatConversation hist_conv = conv;
    hist_conv.messages.erase(hist_conv.messages.end() - 1);
    hist_conv.add_generation_prompt = false;
    try {
      const auto hist = ctx.tok.encode(ctx.render_chat(hist_conv, "messages"));
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
  // A run that called tools ends with finish_reason "tool_calls", as OpenAI's do.
  auto finish_of = [](const RunResult& out, bool called) -> json {
    return called && out.finish_reason == "stop" ? json("tool_calls") : json(out.finish_reason);
  };
  if (!r.s.stream) {
    const std::vector<RunResult> outs = wait_results(ctx, streams);
    json choices = json::array();
    for (size_t i = 0; i < outs.size(); ++i) {
      json message = {{"role", "assistant"}, {"content", outs[i].text}};
      bool called = false;
      if (tools_on) {
        std::string content;
        std::vector<ParsedToolCall> calls;
        auto reader = format.reader();
        reader->feed(outs[i].text, content, calls);
        reader->finish(content, calls);
        if (!calls.empty()) {
          called = true;
          message["content"] = content.empty() ? json(nullptr) : json(content);
          message["tool_calls"] = json::array();
          for (size_t k = 0; k < calls.size(); ++k)
            message["tool_calls"].push_back(tool_call_json(calls[k], k, false));
        }
      }
      choices.push_back(
          {{"index", i},
           {"message", std::move(message)},
           {"logprobs", logprobs ? chat_logprobs(ctx.tok, outs[i].logprobs) : json(nullptr)},
           {"finish_reason", finish_of(outs[i], called)}});
    }
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
  // Per choice: whether its first chunk (the role) went out, its tool-call reader, calls so far.
  struct ChoiceState {
    bool opened = false;
    std::unique_ptr<ToolCallReader> reader;
    size_t calls = 0;
  };
  auto states = std::make_shared<std::vector<ChoiceState>>(streams.size());
  if (tools_on)
    for (auto& st : *states) st.reader = format.reader();
  auto open = [states, delta](size_t i, std::vector<json>& ev) {
    if ((*states)[i].opened) return;
    (*states)[i].opened = true;  // OpenAI's first chunk of a choice carries the role
    ev.push_back(delta(i, {{"role", "assistant"}, {"content", ""}}, nullptr, nullptr));
  };
  // Content and completed calls as deltas (a call goes out whole, as one tool_calls entry).
  auto text_events = [states, delta](size_t i, std::string content,
                                     std::vector<ParsedToolCall>& calls, json lp,
                                     std::vector<json>& ev) {
    if (!content.empty() || !lp.is_null())
      ev.push_back(delta(i, {{"content", content}}, lp, nullptr));
    for (const auto& c : calls) {
      ChoiceState& st = (*states)[i];
      ev.push_back(delta(i, {{"tool_calls", json::array({tool_call_json(c, st.calls++, true)})}},
                         nullptr, nullptr));
    }
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
        std::string content;
        std::vector<ParsedToolCall> calls;
        if (ChoiceState& st = (*states)[i]; st.reader)
          st.reader->feed(text, content, calls);
        else
          content = std::move(text);
        text_events(i, std::move(content), calls,
                    logprobs && !lps.empty() ? chat_logprobs(c->tok, lps) : json(nullptr), ev);
        return ev;
      },
      [=](size_t i, const RunResult& out) {
        std::vector<json> ev;
        open(i, ev);
        ChoiceState& st = (*states)[i];
        if (st.reader) {
          std::string content;
          std::vector<ParsedToolCall> calls;
          st.reader->finish(content, calls);
          text_events(i, std::move(content), calls, nullptr, ev);
        }
        ev.push_back(delta(i, json::object(), nullptr, finish_of(out, st.calls > 0)));
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
