#include "server/logprobs.h"

#include <string>
#include <vector>

namespace flashrt::server {

using nlohmann::json;

namespace {

// Ids the model scores but the tokenizer does not know (a vocabulary padded past the
// tokenizer's, as Qwen's is) have no text.
bool known(const Tokenizer& tok, int32_t id) {
  return id >= 0 && id < tok.vocab_size();
}

// A token's text on its own: bytes that are part of a UTF-8 character come out as U+FFFD (the
// exact bytes are in "bytes", as OpenAI gives them).
std::string token_string(const Tokenizer& tok, int32_t id) {
  if (!known(tok, id)) return "";
  const int32_t one[] = {id};
  return tok.decode(one);
}

json token_bytes(const Tokenizer& tok, int32_t id) {
  json bytes = json::array();
  if (known(tok, id))
    for (unsigned char c : tok.token_bytes(id)) bytes.push_back(static_cast<int>(c));
  return bytes;
}

// How many bytes the token adds to the choice's text, which is decoded as a whole with special
// tokens skipped.
size_t text_bytes(const Tokenizer& tok, int32_t id) {
  return known(tok, id) && !tok.is_special(id) ? tok.token_bytes(id).size() : 0;
}

}  // namespace

json completion_logprobs(const Tokenizer& tok, std::span<const TokenLogprob> lps, size_t& offset) {
  json tokens = json::array(), logprobs = json::array(), top = json::array(),
       offsets = json::array();
  for (const TokenLogprob& lp : lps) {
    const std::string text = token_string(tok, lp.id);
    tokens.push_back(text);
    logprobs.push_back(lp.logprob);
    // OpenAI lists the sampled token among the alternatives too (up to logprobs + 1 entries).
    json alternatives = json::object();
    for (const auto& [id, l] : lp.top) alternatives.emplace(token_string(tok, id), l);
    alternatives.emplace(text, lp.logprob);
    top.push_back(std::move(alternatives));
    offsets.push_back(offset);
    offset += text_bytes(tok, lp.id);
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(logprobs)},
          {"top_logprobs", std::move(top)},
          {"text_offset", std::move(offsets)}};
}

json chat_logprobs(const Tokenizer& tok, std::span<const TokenLogprob> lps) {
  json content = json::array();
  for (const TokenLogprob& lp : lps) {
    json top = json::array();
    for (const auto& [id, l] : lp.top)
      top.push_back(
          {{"token", token_string(tok, id)}, {"logprob", l}, {"bytes", token_bytes(tok, id)}});
    content.push_back({{"token", token_string(tok, lp.id)},
                       {"logprob", lp.logprob},
                       {"bytes", token_bytes(tok, lp.id)},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

}  // namespace flashrt::server
