// The request bodies of the API, parsed from untrusted JSON into plain structs. Parsing needs no
// model or tokenizer (only the vocabulary size, to range-check token ids), so it can be fuzzed on
// its own. Every problem is an ApiError 400 naming the field.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "server/json_fields.h"
#include "tokenizer/chat_template.h"

namespace flashrt::server {

inline constexpr size_t kMaxStopStrings = 16;
inline constexpr size_t kMaxPromptIds = 1 << 20;
inline constexpr int kMaxChoices = 64;      // n
inline constexpr int kMaxTopLogprobs = 20;  // logprobs alternatives per token

// Fields shared by completions, chat and session generation. Defaults are OpenAI's (temperature 1,
// top_p 1, no top-k or min-p), not the CLI's llama.cpp-style ones.
struct SamplingRequest {
  std::optional<int64_t> max_tokens;
  SamplerParams params;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;        // strings that end generation (not included in the text)
  std::vector<int32_t> stop_token_ids;  // extra token ids that end generation
  bool ignore_eos = false;              // do not stop at the model's end-of-turn tokens
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int n = 1;                   // continuations of the prompt (completions and chat only)
  int logprobs = -1;           // alternatives per sampled token's log-probability; -1: none
  // flashrt's extension: speculative decoding of the run, "" (off), "ngram" or "mtp", with at most
  // draft_max drafts per step.
  std::string speculative;
  int draft_max = 8;
  // The output constraint: OpenAI's response_format ("json_object", "json_schema" with `schema`)
  // or flashrt's "grammar" (GBNF `grammar`); "" for none. `param` names the field for errors.
  struct Constraint {
    std::string kind;
    nlohmann::ordered_json schema;
    std::string grammar;
    std::string param;
  } constraint;
};
SamplingRequest parse_sampling(const Fields& f, int32_t vocab);
// response_format and grammar of a request body; `ordered` is the same body parsed with its key
// order (a schema's properties are generated in the order written), or null.
SamplingRequest::Constraint parse_constraint(const Fields& f,
                                             const nlohmann::ordered_json* ordered);

struct PromptInput {
  std::string text;
  std::vector<int32_t> ids;
  bool is_ids = false;
};

struct CompletionRequest {
  std::string model;
  PromptInput prompt;
  bool echo = false;
  SamplingRequest s;
};
CompletionRequest parse_completion_request(const nlohmann::json& body, int32_t vocab,
                                           const nlohmann::ordered_json* ordered = nullptr);

struct ToolChoice {
  std::string mode = "auto";  // "none" | "auto" | "required" | "function"
  std::string name;           // mode "function": the function that must be called
};

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  // The messages as the chat template takes them (tool calls, tool results), the tools (OpenAI
  // tool objects, checked) and chat_template_kwargs, in the order the client wrote them.
  ChatConversation conversation;
  std::optional<bool> enable_thinking;  // chat_template_kwargs.enable_thinking
  ToolChoice tool_choice;
  bool parallel_tool_calls = true;
  SamplingRequest s;
  bool has_tools() const { return conversation.tools.is_array() && !conversation.tools.empty(); }
};
// `ordered`: the same body parsed with its key order (null: the order of `body`).
ChatRequest parse_chat_request(const nlohmann::json& body, int32_t vocab,
                               const nlohmann::ordered_json* ordered = nullptr);
std::vector<ChatMessage> parse_messages(const Fields& f, const char* key, bool required);

// What a session is fed: text, token ids, or chat messages rendered with the model's template
// (at most one of them).
struct SessionInput {
  std::optional<std::string> text;
  std::optional<std::vector<int32_t>> ids;
  std::vector<ChatMessage> messages;
  bool add_generation_prompt = false;  // for messages: open the assistant's turn
  bool empty() const { return !text && !ids && messages.empty(); }
};
SessionInput parse_session_input(const Fields& f, int32_t vocab);

struct CreateSessionRequest {
  std::optional<std::string> system;  // rendered as the conversation's system message
  SessionInput input;                 // fed after the system prompt
  std::optional<uint64_t> seed;
};
CreateSessionRequest parse_create_session(const nlohmann::json& body, int32_t vocab);

struct GenerateRequest {
  SamplingRequest s;  // max_tokens defaults to 256
};
GenerateRequest parse_generate(const nlohmann::json& body, int32_t vocab,
                               const nlohmann::ordered_json* ordered = nullptr);

struct RestoreRequest {
  std::string capsule;
};
RestoreRequest parse_restore(const nlohmann::json& body);

// Runs every parser over `data` as a request body, swallowing the ApiErrors they are meant to
// throw; anything else escaping (or a crash) is a bug. The libFuzzer target and the fuzz test call
// this.
void fuzz_request_parsers(const uint8_t* data, size_t size);

}  // namespace flashrt::server
