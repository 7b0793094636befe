// flashrt::Tokenizer — byte-level BPE as Qwen (and most current models) use it, identical in its
// ids to Hugging Face tokenizers: added/special tokens first, then NFC, the split regex, BPE.
// Loaded from HF tokenizer.json (+ tokenizer_config.json) or from GGUF tokenizer.ggml.* data.
// Immutable once built and cheap to copy (shared state); safe to use from several threads.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/chat_template.h"

namespace flashrt {

// llama.cpp token types (GGUF tokenizer.ggml.token_type).
enum TokenType : int32_t {
  kTokenUndefined = 0,
  kTokenNormal = 1,
  kTokenUnknown = 2,
  kTokenControl = 3,      // special added token
  kTokenUserDefined = 4,  // non-special added token
  kTokenUnused = 5,       // padding slot without a token
  kTokenByte = 6,
};

// A tokenizer as plain data, in GGUF's terms (tokenizer.ggml.model = "gpt2").
struct TokenizerData {
  // index = id; normal tokens in their byte-level spelling ("Ġthe"), control and user-defined
  // tokens as their text ("<|im_end|>"), unused slots as "[PAD<id>]".
  std::vector<std::string> tokens;
  std::vector<int32_t> token_types;  // TokenType per token (empty: all normal)
  std::vector<std::string> merges;   // "left right", rank = index
  std::string pre;                   // llama.cpp pre-tokenizer name: "qwen2", "qwen35"
  std::optional<int32_t> bos, eos, pad;
  std::string chat_template;
};

class Tokenizer {
 public:
  // `path`: a folder holding tokenizer.json (and optionally tokenizer_config.json /
  // chat_template.jinja), or a tokenizer.json file (its folder is searched for the others).
  static Tokenizer from_hf_dir_or_file(const std::string& path);
  // From the texts of tokenizer.json and tokenizer_config.json (empty: none). `origin` names the
  // source in error messages.
  static Tokenizer from_hf_json(std::string_view tokenizer_json, std::string_view config_json = {},
                                std::string_view origin = "tokenizer.json");
  static Tokenizer from_data(TokenizerData data);
  // Throws flashrt::Error when the tokenizer cannot be expressed in GGUF terms (a split regex
  // llama.cpp has no pre-tokenizer name for).
  TokenizerData to_data() const;

  // Text -> ids. No BOS/EOS is added. With parse_special, control tokens written in the text
  // ("<|im_start|>") become their ids; without, they are tokenized as plain text (user-defined
  // added tokens are matched either way, as in HF and llama.cpp). Invalid UTF-8: flashrt::Error.
  std::vector<int32_t> encode(std::string_view text, bool parse_special = true) const;
  // Ids -> text. Incomplete or invalid UTF-8 in the result is replaced by U+FFFD (as HF does).
  // An id outside the vocabulary: flashrt::Error.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  // The raw bytes a token stands for (possibly part of a UTF-8 character). Throws on a bad id.
  std::string_view token_bytes(int32_t id) const;
  // The token as spelled in the vocabulary (byte-level form; added tokens as written).
  std::string_view token_text(int32_t id) const;
  // Vocabulary spelling -> id (model and added tokens).
  std::optional<int32_t> token_id(std::string_view token_text) const;
  int32_t vocab_size() const;
  TokenType token_type(int32_t id) const;
  bool is_special(int32_t id) const { return token_type(id) == kTokenControl; }

  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> pad_id() const;
  // Ids that end a generated turn: eos plus the usual end-of-turn control tokens present in the
  // vocabulary (<|im_end|>, <|endoftext|>, ...).
  std::vector<int32_t> stop_ids() const;
  const std::string& chat_template() const;
  // The llama.cpp pre-tokenizer name ("qwen2", "qwen35"), or empty if there is none.
  const std::string& pre_name() const;

  // Renders a conversation with this model's chat template (or options.family_override: a
  // native family).
  std::string render_chat(std::span<const ChatMessage> messages,
                          const ChatOptions& options = {}) const;
  // Renders a conversation with the chat template (Jinja, as transformers' apply_chat_template:
  // messages, tools, add_generation_prompt, bos_token, eos_token and the kwargs). Throws
  // flashrt::Error when there is no template, it does not parse, or it raises for this input.
  std::string apply_chat_template(const ChatConversation& conversation) const;
  // apply_chat_template, or with a native family (`--chat-template qwen3`) that family's C++
  // renderer over the conversation's roles, contents and reasoning (tools refused: it renders
  // none).
  std::string render_conversation(const ChatConversation& conversation,
                                  std::string_view family) const;
  // This tokenizer with `jinja_source` as its chat template (`--chat-template FILE`).
  Tokenizer with_chat_template(std::string jinja_source) const;

  // Drops the word cache (benchmarks use it to measure cold encoding).
  void clear_cache() const;

  struct State;
  struct ChatTemplate;  // the template's text and its parse

 private:
  explicit Tokenizer(std::shared_ptr<const State> state);
  std::shared_ptr<const State> state_;
  std::shared_ptr<const ChatTemplate> chat_;
};

}  // namespace flashrt
