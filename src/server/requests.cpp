#include "server/requests.h"

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

}  // namespace

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

CompletionRequest parse_completion_request(const nlohmann::json& body, int32_t vocab) {
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

ChatRequest parse_chat_request(const nlohmann::json& body, int32_t vocab) {
  Fields f(body);
  ChatRequest r;
  r.model = f.str("model").value_or("");
  r.messages = parse_messages(f, "messages", /*required=*/true);
  if (const auto* kw = f.get("chat_template_kwargs")) {
    if (!kw->is_object())
      bad_request("chat_template_kwargs", "invalid_type",
                  "'chat_template_kwargs' must be an object");
    r.enable_thinking = Fields(*kw, "chat_template_kwargs").boolean("enable_thinking");
  }
  r.s = parse_sampling(f, vocab);
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

GenerateRequest parse_generate(const nlohmann::json& body, int32_t vocab) {
  GenerateRequest r;
  const Fields f(body);
  r.s = parse_sampling(f, vocab);
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
