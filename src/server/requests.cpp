#include "server/requests.h"

#include <cctype>
#include <limits>

#include "server/api_error.h"

namespace flashrt::server {

namespace {

constexpr int64_t kMaxTokensLimit = std::numeric_limits<int32_t>::max();

std::vector<int32_t> token_ids(const Fields& f, const char* key, int32_t vocab) {
  std::vector<int32_t> ids;
  if (auto v = f.integers(key, 0, vocab - 1, kMaxPromptIds))
    for (int64_t x : *v) ids.push_back(static_cast<int32_t>(x));
  return ids;
}

std::vector<std::string> parse_stop(const Fields& f) {
  std::vector<std::string> out;
  const auto* v = f.get("stop");
  if (!v) return out;
  if (v->is_string()) {
    out.push_back(v->get<std::string>());
  } else if (v->is_array()) {
    if (v->size() > kMaxStopStrings)
      bad_request("stop", "invalid_value", "'stop' holds {} strings (at most {})", v->size(),
                  kMaxStopStrings);
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string())
        bad_request("stop", "invalid_type", "'stop[{}]' must be a string", i);
      out.push_back((*v)[i].get<std::string>());
    }
  } else {
    bad_request("stop", "invalid_type", "'stop' must be a string or an array of strings");
  }
  std::erase_if(out, [](const std::string& s) { return s.empty(); });
  return out;
}

std::string message_content(const nlohmann::json& m, const std::string& where) {
  const auto it = m.find("content");
  if (it == m.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array())
    bad_request(where + ".content", "invalid_type",
                "'{}.content' must be a string or an array of text parts", where);
  // [{"type": "text", "text": "..."}, ...]: the text parts joined; other parts are not supported.
  std::string text;
  for (size_t i = 0; i < it->size(); ++i) {
    const auto& part = (*it)[i];
    const std::string pw = where + ".content[" + std::to_string(i) + "]";
    Fields pf(part, pw);
    if (!part.is_object()) bad_request(pw, "invalid_type", "'{}' must be an object", pw);
    const auto type = pf.str("type");
    if (type != "text")
      bad_request(pw + ".type", "invalid_value",
                  "'{}.type' must be \"text\" (only text is supported)", pw);
    const auto t = pf.str("text");
    if (!t) bad_request(pw + ".text", "missing_field", "'{}.text' is required", pw);
    text += *t;
  }
  return text;
}

// The value at `key` of the ordered body when there is one (same content, the client's key order).
nlohmann::ordered_json ordered_field(const Fields& f, const nlohmann::ordered_json* ordered,
                                     const char* key) {
  if (ordered && ordered->is_object()) {
    const auto it = ordered->find(key);
    if (it != ordered->end()) return *it;
  }
  const auto* v = f.get(key);
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json();
}

// OpenAI's function names: letters, digits, underscores and dashes, at most 64.
bool valid_function_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

}  // namespace

SamplingRequest::Constraint parse_constraint(const Fields& f,
                                             const nlohmann::ordered_json* ordered) {
  SamplingRequest::Constraint c;
  if (const auto* rf = f.get("response_format")) {
    if (!rf->is_object())
      bad_request("response_format", "invalid_type", "'response_format' must be an object");
    const Fields rff(*rf, "response_format");
    const auto type = rff.str("type");
    if (!type)
      bad_request("response_format.type", "missing_field", "'response_format.type' is required");
    if (*type == "json_object") {
      c.kind = "json_object";
    } else if (*type == "json_schema") {
      const auto* js = rff.get("json_schema");
      if (!js || !js->is_object())
        bad_request("response_format.json_schema", "missing_field",
                    "'response_format.json_schema' must be an object with 'schema'");
      const nlohmann::ordered_json ojs = ordered_field(rff, nullptr, "json_schema");
      nlohmann::ordered_json schema;
      if (ordered && ordered->contains("response_format") &&
          (*ordered)["response_format"].contains("json_schema"))
        schema =
            (*ordered)["response_format"]["json_schema"].value("schema", nlohmann::ordered_json());
      else
        schema = ojs.value("schema", nlohmann::ordered_json());
      if (!schema.is_object() && !schema.is_boolean())
        bad_request("response_format.json_schema.schema", "missing_field",
                    "'response_format.json_schema.schema' must be a JSON Schema object");
      c.kind = "json_schema";
      c.schema = std::move(schema);
    } else if (*type != "text") {
      bad_request("response_format.type", "invalid_value",
                  "'response_format.type' must be text, json_object or json_schema (got '{}')",
                  *type);
    }
    c.param = "response_format";
  }
  if (const auto g = f.str("grammar")) {
    if (!c.kind.empty())
      bad_request("grammar", "invalid_value", "give 'grammar' or 'response_format', not both");
    c.kind = "grammar";
    c.grammar = *g;
    c.param = "grammar";
  } else if (f.has("grammar")) {
    bad_request("grammar", "invalid_type", "'grammar' must be a string (GBNF)");
  }
  if (const auto* js = f.get("json_schema")) {  // llama.cpp server's shorthand
    if (!c.kind.empty())
      bad_request("json_schema", "invalid_value",
                  "give one of 'json_schema', 'grammar' or 'response_format'");
    if (!js->is_object())
      bad_request("json_schema", "invalid_type", "'json_schema' must be a JSON Schema object");
    c.kind = "json_schema";
    c.schema = ordered_field(f, ordered, "json_schema");
    c.param = "json_schema";
  }
  return c;
}

SamplingRequest parse_sampling(const Fields& f, int32_t vocab) {
  SamplingRequest s;
  s.params.temperature = 1.0f;
  s.params.top_k = 0;
  s.params.top_p = 1.0f;
  s.params.min_p = 0.0f;
  s.max_tokens = f.integer("max_tokens", 0, kMaxTokensLimit);
  if (auto m = f.integer("max_completion_tokens", 0, kMaxTokensLimit)) s.max_tokens = m;
  if (auto t = f.number("temperature", 0, 100)) s.params.temperature = static_cast<float>(*t);
  if (auto p = f.number("top_p", 0, 1)) {
    if (*p <= 0) bad_request("top_p", "invalid_value", "'top_p' must be greater than 0");
    s.params.top_p = static_cast<float>(*p);
  }
  if (auto k = f.integer("top_k", 0, std::numeric_limits<int32_t>::max()))
    s.params.top_k = static_cast<int>(*k);
  if (auto m = f.number("min_p", 0, 1)) s.params.min_p = static_cast<float>(*m);
  if (auto r = f.number("repeat_penalty", 0.01, 100))
    s.params.repeat_penalty = static_cast<float>(*r);
  if (auto r = f.number("repetition_penalty", 0.01, 100))
    s.params.repeat_penalty = static_cast<float>(*r);
  if (auto v = f.number("presence_penalty", -2, 2))
    s.params.presence_penalty = static_cast<float>(*v);
  if (auto v = f.number("frequency_penalty", -2, 2))
    s.params.frequency_penalty = static_cast<float>(*v);
  if (auto seed = f.integer("seed", std::numeric_limits<int64_t>::min(),
                            std::numeric_limits<int64_t>::max()))
    s.seed = static_cast<uint64_t>(*seed);
  if (auto b = f.integer("best_of", 1, std::numeric_limits<int32_t>::max()); b && *b != 1)
    bad_request("best_of", "unsupported_value", "only best_of=1 is supported");
  // "speculative": "ngram" | "mtp" | "none", or {"type": ..., "draft_max": 1..16}.
  if (const auto* sp = f.get("speculative")) {
    std::optional<std::string> type;
    if (sp->is_string()) {
      type = sp->get<std::string>();
    } else if (sp->is_object()) {
      const Fields sf(*sp, "speculative");
      type = sf.str("type");
      if (!type) bad_request("speculative.type", "missing_field", "'speculative.type' is required");
      if (auto k = sf.integer("draft_max", 1, 16)) s.draft_max = static_cast<int>(*k);
    } else {
      bad_request("speculative", "invalid_type",
                  "'speculative' must be \"ngram\", \"mtp\", \"none\" or an object with 'type'");
    }
    if (*type != "ngram" && *type != "mtp" && *type != "none")
      bad_request("speculative", "invalid_value",
                  "'speculative' type must be ngram, mtp or none (got '{}')", *type);
    if (*type != "none") s.speculative = *type;
  }
  s.stop = parse_stop(f);
  s.stop_token_ids = token_ids(f, "stop_token_ids", vocab);
  s.ignore_eos = f.boolean("ignore_eos").value_or(false);
  s.stream = f.boolean("stream").value_or(false);
  if (const auto* so = f.get("stream_options")) {
    if (!so->is_object())
      bad_request("stream_options", "invalid_type", "'stream_options' must be an object");
    s.include_usage = Fields(*so, "stream_options").boolean("include_usage").value_or(false);
  }
  if (const auto* lb = f.get("logit_bias")) {
    if (!lb->is_object())
      bad_request("logit_bias", "invalid_type",
                  "'logit_bias' must be an object mapping token ids to biases");
    if (lb->size() > 1024)
      bad_request("logit_bias", "invalid_value", "'logit_bias' holds more than 1024 entries");
    for (const auto& [key, value] : lb->items()) {
      size_t used = 0;
      long long id = -1;
      try {
        id = std::stoll(key, &used);
      } catch (...) {
        used = 0;
      }
      if (used == 0 || used != key.size() || id < 0 || id >= vocab)
        bad_request("logit_bias", "invalid_value",
                    "'logit_bias' key '{}' is not a token id of this model (0..{})", key,
                    vocab - 1);
      if (!value.is_number() || !(value.get<double>() >= -100 && value.get<double>() <= 100))
        bad_request("logit_bias", "invalid_value",
                    "'logit_bias[{}]' must be a number between -100 and 100", key);
      // OpenAI's -100 bans the token.
      const double b = value.get<double>();
      s.params.logit_bias.push_back(
          {static_cast<int32_t>(id),
           b <= -100 ? -std::numeric_limits<float>::infinity() : static_cast<float>(b)});
    }
  }
  return s;
}

namespace {

int parse_n(const Fields& f) {
  return static_cast<int>(f.integer("n", 1, kMaxChoices).value_or(1));
}

}  // namespace

CompletionRequest parse_completion_request(const nlohmann::json& body, int32_t vocab,
                                           const nlohmann::ordered_json* ordered) {
  Fields f(body);
  CompletionRequest r;
  r.model = f.str("model").value_or("");
  const auto* p = f.get("prompt");
  if (!p) bad_request("prompt", "missing_field", "'prompt' is required");
  // A string, one string in an array, token ids, or one array of token ids.
  const nlohmann::json* one = p;
  if (p->is_array() && !p->empty() && ((*p)[0].is_string() || (*p)[0].is_array())) {
    if (p->size() != 1)
      bad_request("prompt", "unsupported_value",
                  "'prompt' holds {} prompts; only one prompt per request is supported", p->size());
    one = &(*p)[0];
  }
  if (one->is_string()) {
    r.prompt.text = one->get<std::string>();
  } else if (one->is_array()) {
    r.prompt.is_ids = true;
    if (one->size() > kMaxPromptIds)
      bad_request("prompt", "invalid_value", "'prompt' holds more than {} token ids",
                  kMaxPromptIds);
    for (size_t i = 0; i < one->size(); ++i)
      r.prompt.ids.push_back(static_cast<int32_t>(
          integer_value((*one)[i], "prompt[" + std::to_string(i) + "]", 0, vocab - 1)));
  } else {
    bad_request("prompt", "invalid_type", "'prompt' must be a string or an array of token ids");
  }
  r.echo = f.boolean("echo").value_or(false);
  if (auto suffix = f.str("suffix"); suffix && !suffix->empty())
    bad_request("suffix", "unsupported_parameter", "'suffix' is not supported");
  r.s = parse_sampling(f, vocab);
  r.s.constraint = parse_constraint(f, ordered);
  r.s.n = parse_n(f);
  // The legacy API's logprobs: how many alternatives to list per token (0: only the token's own).
  if (const auto* lp = f.get("logprobs"); lp && !(lp->is_boolean() && !lp->get<bool>()))
    r.s.logprobs = static_cast<int>(integer_value(*lp, "logprobs", 0, kMaxTopLogprobs));
  return r;
}

std::vector<ChatMessage> parse_messages(const Fields& f, const char* key, bool required) {
  std::vector<ChatMessage> out;
  const auto* v = f.get(key);
  if (!v) {
    if (required) bad_request(key, "missing_field", "'{}' is required", key);
    return out;
  }
  if (!v->is_array()) bad_request(key, "invalid_type", "'{}' must be an array of messages", key);
  if (required && v->empty()) bad_request(key, "invalid_value", "'{}' must not be empty", key);
  for (size_t i = 0; i < v->size(); ++i) {
    const auto& m = (*v)[i];
    const std::string where = std::string(key) + "[" + std::to_string(i) + "]";
    if (!m.is_object()) bad_request(where, "invalid_type", "'{}' must be an object", where);
    Fields mf(m, where);
    auto role = mf.str("role");
    if (!role) bad_request(where + ".role", "missing_field", "'{}.role' is required", where);
    if (*role == "developer") role = "system";
    if (*role != "system" && *role != "user" && *role != "assistant" && *role != "tool")
      bad_request(where + ".role", "invalid_value",
                  "'{}.role' must be system, developer, user, assistant or tool (got '{}')", where,
                  *role);
    ChatMessage msg;
    msg.role = *role;
    msg.content = message_content(m, where);
    msg.reasoning_content = mf.str("reasoning_content").value_or("");
    out.push_back(std::move(msg));
  }
  return out;
}

ChatRequest parse_chat_request(const nlohmann::json& body, int32_t vocab,
                               const nlohmann::ordered_json* ordered) {
  Fields f(body);
  ChatRequest r;
  r.model = f.str("model").value_or("");
  r.messages = parse_messages(f, "messages", /*required=*/true);
  // The template's view of the same messages, in the client's key order.
  const nlohmann::ordered_json msgs = ordered_field(f, ordered, "messages");
  for (size_t i = 0; i < msgs.size(); ++i) {
    const std::string where = "messages[" + std::to_string(i) + "]";
    nlohmann::ordered_json m;
    try {
      m = template_message(msgs[i], where);
    } catch (const Error& e) {
      bad_request(where, "invalid_value", "{}", e.what());
    }
    if (m["role"] == "developer") m["role"] = "system";
    if (m.contains("content") && m["content"].is_array()) m["content"] = r.messages[i].content;
    r.conversation.messages.push_back(std::move(m));
  }
  if (const auto* kw = f.get("chat_template_kwargs")) {
    if (!kw->is_object())
      bad_request("chat_template_kwargs", "invalid_type",
                  "'chat_template_kwargs' must be an object");
    r.enable_thinking = Fields(*kw, "chat_template_kwargs").boolean("enable_thinking");
    const nlohmann::ordered_json kwargs = ordered_field(f, ordered, "chat_template_kwargs");
    for (const auto& [k, v] : kwargs.items()) r.conversation.kwargs[k] = v;
  }
  // tools: [{"type": "function", "function": {"name", "description", "parameters"}}]
  if (const auto* tools = f.get("tools")) {
    if (!tools->is_array())
      bad_request("tools", "invalid_type", "'tools' must be an array of tool objects");
    if (tools->size() > 128) bad_request("tools", "invalid_value", "'tools' holds more than 128");
    for (size_t i = 0; i < tools->size(); ++i) {
      const std::string where = "tools[" + std::to_string(i) + "]";
      const auto& t = (*tools)[i];
      if (!t.is_object()) bad_request(where, "invalid_type", "'{}' must be an object", where);
      const Fields tf(t, where);
      if (tf.str("type").value_or("") != "function")
        bad_request(where + ".type", "invalid_value", "'{}.type' must be \"function\"", where);
      const auto* fn = tf.get("function");
      if (!fn || !fn->is_object())
        bad_request(where + ".function", "missing_field", "'{}.function' must be an object", where);
      const Fields ff(*fn, where + ".function");
      const auto name = ff.str("name");
      if (!name || !valid_function_name(*name))
        bad_request(where + ".function.name", "invalid_value",
                    "'{}.function.name' must be 1-64 letters, digits, underscores or dashes",
                    where);
      if (const auto* p = ff.get("parameters"); p && !p->is_object())
        bad_request(where + ".function.parameters", "invalid_type",
                    "'{}.function.parameters' must be a JSON Schema object", where);
    }
    r.conversation.tools = ordered_field(f, ordered, "tools");
    if (r.conversation.tools.empty()) r.conversation.tools = nullptr;
  }
  if (const auto* tc = f.get("tool_choice")) {
    if (tc->is_string()) {
      r.tool_choice.mode = tc->get<std::string>();
      if (r.tool_choice.mode != "none" && r.tool_choice.mode != "auto" &&
          r.tool_choice.mode != "required")
        bad_request("tool_choice", "invalid_value",
                    "'tool_choice' must be none, auto, required or {{\"type\": \"function\", "
                    "\"function\": {{\"name\": ...}}}} (got '{}')",
                    r.tool_choice.mode);
    } else if (tc->is_object()) {
      const Fields tf(*tc, "tool_choice");
      const auto* fn = tf.get("function");
      const auto name = fn && fn->is_object() ? Fields(*fn).str("name") : std::nullopt;
      if (!name)
        bad_request("tool_choice.function.name", "missing_field",
                    "'tool_choice.function.name' is required");
      r.tool_choice = {"function", *name};
    } else {
      bad_request("tool_choice", "invalid_type", "'tool_choice' must be a string or an object");
    }
    if (r.tool_choice.mode == "required" || r.tool_choice.mode == "function") {
      if (!r.has_tools())
        bad_request("tool_choice", "invalid_value", "'tool_choice' {} needs 'tools'",
                    r.tool_choice.mode);
      if (r.tool_choice.mode == "function") {
        bool found = false;
        for (const auto& t : r.conversation.tools)
          found = found || t["function"]["name"] == r.tool_choice.name;
        if (!found)
          bad_request("tool_choice.function.name", "invalid_value",
                      "'tool_choice' names '{}', which is not in 'tools'", r.tool_choice.name);
      }
    }
  }
  r.parallel_tool_calls = f.boolean("parallel_tool_calls").value_or(true);
  r.s = parse_sampling(f, vocab);
  r.s.constraint = parse_constraint(f, ordered);
  if (!r.s.constraint.kind.empty() &&
      (r.tool_choice.mode == "required" || r.tool_choice.mode == "function"))
    bad_request(r.s.constraint.param.c_str(), "invalid_value",
                "'{}' cannot be combined with tool_choice {} (the call has its own grammar)",
                r.s.constraint.param, r.tool_choice.mode);
  r.s.n = parse_n(f);
  const bool logprobs = f.boolean("logprobs").value_or(false);
  const auto top = f.integer("top_logprobs", 0, kMaxTopLogprobs);
  if (top && !logprobs)
    bad_request("top_logprobs", "invalid_value", "'top_logprobs' needs 'logprobs': true");
  if (logprobs) r.s.logprobs = static_cast<int>(top.value_or(0));
  return r;
}

SessionInput parse_session_input(const Fields& f, int32_t vocab) {
  SessionInput in;
  in.text = f.str("text");
  if (f.has("ids")) in.ids = token_ids(f, "ids", vocab);
  in.messages = parse_messages(f, "messages", /*required=*/false);
  in.add_generation_prompt = f.boolean("add_generation_prompt").value_or(false);
  const int given = (in.text ? 1 : 0) + (in.ids ? 1 : 0) + (in.messages.empty() ? 0 : 1);
  if (given > 1)
    bad_request("text", "invalid_value", "give one of 'text', 'ids' or 'messages', not several");
  return in;
}

CreateSessionRequest parse_create_session(const nlohmann::json& body, int32_t vocab) {
  Fields f(body);
  CreateSessionRequest r;
  r.system = f.str("system");
  r.input = parse_session_input(f, vocab);
  if (auto seed = f.integer("seed", std::numeric_limits<int64_t>::min(),
                            std::numeric_limits<int64_t>::max()))
    r.seed = static_cast<uint64_t>(*seed);
  return r;
}

GenerateRequest parse_generate(const nlohmann::json& body, int32_t vocab,
                               const nlohmann::ordered_json* ordered) {
  GenerateRequest r;
  const Fields f(body);
  r.s = parse_sampling(f, vocab);
  r.s.constraint = parse_constraint(f, ordered);
  // A session is one sequence: several continuations are forks (POST /v1/sessions/{id}/fork).
  if (auto n = f.integer("n", 1, kMaxChoices); n && *n != 1)
    bad_request("n", "unsupported_value",
                "a session generates one continuation (got n={}): fork it for more", *n);
  if (const auto* lp = f.get("logprobs"); lp && !(lp->is_boolean() && !lp->get<bool>()))
    bad_request("logprobs", "unsupported_parameter",
                "'logprobs' is supported by /v1/completions and /v1/chat/completions");
  if (!r.s.max_tokens) r.s.max_tokens = 256;
  return r;
}

RestoreRequest parse_restore(const nlohmann::json& body) {
  Fields f(body);
  RestoreRequest r;
  auto c = f.str("capsule");
  if (!c) bad_request("capsule", "missing_field", "'capsule' (a capsule id) is required");
  r.capsule = *c;
  return r;
}

void fuzz_request_parsers(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  nlohmann::json j;
  try {
    j = parse_body(body);
  } catch (const ApiError&) {
    return;
  }
  constexpr int32_t kVocab = 1000;
  auto quiet = [](auto&& f) {
    try {
      f();
    } catch (const ApiError&) {
    }
  };
  quiet([&] { parse_completion_request(j, kVocab); });
  quiet([&] { parse_chat_request(j, kVocab); });
  quiet([&] { parse_create_session(j, kVocab); });
  quiet([&] { parse_generate(j, kVocab); });
  quiet([&] { parse_restore(j); });
  quiet([&] { parse_session_input(Fields(j), kVocab); });
}

}  // namespace flashrt::server
