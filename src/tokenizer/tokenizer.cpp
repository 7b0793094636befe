#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_state.h"
#include "tokenizer/utf8.h"

namespace flashrt {
namespace {

// llama.cpp pre-tokenizer names flashrt knows; all of them NFC-normalise (as Qwen's tokenizer.json
// does) and use no prefix space.
struct PreTokenizerName {
  std::string_view name;
  std::string_view regex;
};
constexpr PreTokenizerName kPreTokenizerNames[] = {
    {"qwen2", kQwen2SplitRegex},
    {"qwen35", kQwen35SplitRegex},
    {"deepseek-r1-qwen", kQwen2SplitRegex},  // llama.cpp maps it to its QWEN2 type as well
};

std::string known_pre_names() {
  std::string s;
  for (const auto& p : kPreTokenizerNames) s.append(s.empty() ? "" : ", ").append(p.name);
  return s;
}

}  // namespace

std::shared_ptr<const Tokenizer::State> build_tokenizer_state(TokenizerParts parts) {
  auto st = std::make_shared<Tokenizer::State>();
  st->origin = parts.origin;
  const std::string_view origin = st->origin;

  int64_t max_id = static_cast<int64_t>(parts.min_vocab_size) - 1;
  for (const auto& [tok, id] : parts.vocab) {
    FLASHRT_CHECK(id >= 0, "{}: token {:?} has negative id {}", origin, tok, id);
    max_id = std::max<int64_t>(max_id, id);
  }
  for (const AddedToken& t : parts.added) {
    FLASHRT_CHECK(t.id >= 0, "{}: added token {:?} has negative id {}", origin, t.content, t.id);
    FLASHRT_CHECK(!t.content.empty(), "{}: added token with id {} is empty", origin, t.id);
    FLASHRT_CHECK(utf8::is_valid(t.content), "{}: added token with id {} is not valid UTF-8",
                  origin, t.id);
    max_id = std::max<int64_t>(max_id, t.id);
  }
  FLASHRT_CHECK(max_id < std::numeric_limits<int32_t>::max(), "{}: token ids are too large",
                origin);
  // Ids are dense in every real vocabulary; one huge id in an untrusted file would otherwise make
  // a table of that many entries (the fuzzer's 433333333 asked for 13.9 GB).
  const int64_t named = static_cast<int64_t>(parts.vocab.size() + parts.added.size());
  const int64_t allowed =
      std::max<int64_t>(static_cast<int64_t>(parts.min_vocab_size), 2 * named + 1024);
  FLASHRT_CHECK(max_id < allowed,
                "{}: token ids run to {} but only {} tokens are named (ids must be dense)", origin,
                max_id, named);
  const auto n = static_cast<size_t>(max_id + 1);
  FLASHRT_CHECK(n > 0, "{}: the vocabulary is empty", origin);
  st->tokens.assign(n, {});
  st->bytes.assign(n, {});
  st->types.assign(n, kTokenUnused);

  for (const auto& [tok, id] : parts.vocab) {
    const auto i = static_cast<size_t>(id);
    FLASHRT_CHECK(st->types[i] == kTokenUnused, "{}: tokens {:?} and {:?} both have id {}", origin,
                  st->tokens[i], tok, id);
    st->tokens[i] = tok;
    st->types[i] = kTokenNormal;
    // Tokens outside the byte-level alphabet decode to their own spelling, as in HF's decoder.
    auto raw = byte_level::decode(tok);
    st->bytes[i] = raw ? std::move(*raw) : tok;
  }
  for (const AddedToken& t : parts.added) {
    const auto i = static_cast<size_t>(t.id);
    // An added token may also be in the model vocabulary (same id); the added entry wins.
    st->tokens[i] = t.content;
    st->bytes[i] = t.content;
    st->types[i] = t.special ? kTokenControl : kTokenUserDefined;
    st->added_index.emplace(t.content, t.id);
  }
  for (auto id : {parts.bos, parts.eos, parts.pad}) {
    FLASHRT_CHECK(!id || (*id >= 0 && static_cast<size_t>(*id) < n),
                  "{}: special token id {} is outside the vocabulary (size {})", origin,
                  id.value_or(0), n);
  }

  st->bpe = BpeModel(std::move(parts.vocab), parts.merges, parts.ignore_merges, origin);
  std::vector<AddedToken> raw, normalized;
  for (AddedToken& t : parts.added) (t.normalized && parts.nfc ? normalized : raw).push_back(t);
  st->raw_added = AddedTokenMatcher(std::move(raw));
  st->normalized_added = AddedTokenMatcher(std::move(normalized));
  st->regex = SplitRegex(parts.split_regex, origin);
  st->nfc = parts.nfc;
  st->add_prefix_space = parts.add_prefix_space;
  st->pre_name = std::move(parts.pre_name);
  if (st->pre_name.empty() && st->nfc && !st->add_prefix_space && !parts.ignore_merges) {
    for (const auto& p : kPreTokenizerNames) {
      if (p.regex == parts.split_regex) {
        st->pre_name = p.name;
        break;
      }
    }
  }
  st->bos = parts.bos;
  st->eos = parts.eos;
  st->pad = parts.pad;
  st->chat_template = std::move(parts.chat_template);
  return st;
}

// ---- encoding ----------------------------------------------------------------------------------

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  const State& st = *state_;
  const size_t bad = utf8::find_invalid(text);
  if (bad != std::string_view::npos) {
    fail("cannot tokenize: the text is not valid UTF-8 at byte offset {} (byte 0x{:02x})", bad,
         static_cast<uint8_t>(text[bad]));
  }
  FLASHRT_CHECK(text.size() < (size_t{1} << 31),
                "cannot tokenize: the text is {} bytes (max 2 GiB)", text.size());
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<std::pair<uint32_t, uint32_t>> scratch;
  size_t pos = 0;
  while (pos <= text.size()) {
    const auto m = st.raw_added.find(text, pos, parse_special);
    const size_t end = m ? m->begin : text.size();
    st.encode_segment(text.substr(pos, end - pos), parse_special, ids, scratch);
    if (!m) break;
    ids.push_back(m->id);
    pos = m->end;
  }
  return ids;
}

void Tokenizer::State::encode_segment(std::string_view segment, bool parse_special,
                                      std::vector<int32_t>& ids,
                                      std::vector<std::pair<uint32_t, uint32_t>>& scratch) const {
  if (segment.empty()) return;
  if (!nfc) return encode_words(segment, ids, scratch);
  const std::string normalized = flashrt::nfc(segment);
  const std::string_view text = normalized;
  size_t pos = 0;
  while (pos <= text.size()) {
    const auto m = normalized_added.find(text, pos, parse_special);
    const size_t end = m ? m->begin : text.size();
    encode_words(text.substr(pos, end - pos), ids, scratch);
    if (!m) break;
    ids.push_back(m->id);
    pos = m->end;
  }
}

void Tokenizer::State::encode_words(std::string_view text, std::vector<int32_t>& ids,
                                    std::vector<std::pair<uint32_t, uint32_t>>& scratch) const {
  if (text.empty()) return;
  std::string prefixed;
  if (add_prefix_space && text[0] != ' ') {
    prefixed.reserve(text.size() + 1);
    prefixed.append(" ").append(text);
    text = prefixed;
  }
  scratch.clear();
  regex.split(text, scratch);
  for (const auto& [b, e] : scratch) bpe.encode_word(text.substr(b, e - b), ids);
}

// ---- decoding and lookups ----------------------------------------------------------------------

std::string_view Tokenizer::token_bytes(int32_t id) const {
  const State& st = *state_;
  if (id < 0 || static_cast<size_t>(id) >= st.bytes.size()) {
    fail("token id {} is not in the vocabulary of {} (vocabulary size {})", id, st.origin,
         st.bytes.size());
  }
  return st.bytes[static_cast<size_t>(id)];
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string raw;
  raw.reserve(ids.size() * 4);
  for (int32_t id : ids) {
    const std::string_view b = token_bytes(id);
    if (skip_special && is_special(id)) continue;
    raw.append(b);
  }
  if (utf8::is_valid(raw)) return raw;
  std::string out;
  out.reserve(raw.size() + 8);
  utf8::append_lossy(out, raw, /*final=*/true);
  return out;
}

std::string_view Tokenizer::token_text(int32_t id) const {
  token_bytes(id);  // range check
  return state_->tokens[static_cast<size_t>(id)];
}

std::optional<int32_t> Tokenizer::token_id(std::string_view text) const {
  const State& st = *state_;
  if (auto it = st.added_index.find(text); it != st.added_index.end()) return it->second;
  if (auto it = st.bpe.vocab().find(text); it != st.bpe.vocab().end()) return it->second;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const {
  return static_cast<int32_t>(state_->tokens.size());
}

TokenType Tokenizer::token_type(int32_t id) const {
  token_bytes(id);
  return state_->types[static_cast<size_t>(id)];
}

std::optional<int32_t> Tokenizer::bos_id() const {
  return state_->bos;
}
std::optional<int32_t> Tokenizer::eos_id() const {
  return state_->eos;
}
std::optional<int32_t> Tokenizer::pad_id() const {
  return state_->pad;
}

const std::string& Tokenizer::pre_name() const {
  return state_->pre_name;
}
void Tokenizer::clear_cache() const {
  state_->bpe.clear_cache();
}

std::vector<int32_t> Tokenizer::stop_ids() const {
  std::vector<int32_t> ids;
  if (state_->eos) ids.push_back(*state_->eos);
  for (std::string_view name : {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>",
                                "<end_of_turn>", "<|end|>"}) {
    auto it = state_->added_index.find(name);
    if (it != state_->added_index.end() && is_special(it->second) &&
        std::find(ids.begin(), ids.end(), it->second) == ids.end()) {
      ids.push_back(it->second);
    }
  }
  return ids;
}

// ---- plain data (GGUF) -------------------------------------------------------------------------

Tokenizer Tokenizer::from_data(TokenizerData data) {
  const std::string origin = "GGUF tokenizer";
  TokenizerParts parts;
  parts.origin = origin;
  const PreTokenizerName* pre = nullptr;
  for (const auto& p : kPreTokenizerNames) {
    if (p.name == data.pre) pre = &p;
  }
  FLASHRT_CHECK(pre, "{}: unsupported pre-tokenizer {:?} (tokenizer.ggml.pre); flashrt knows: {}",
                origin, data.pre, known_pre_names());
  FLASHRT_CHECK(data.token_types.empty() || data.token_types.size() == data.tokens.size(),
                "{}: {} token types for {} tokens", origin, data.token_types.size(),
                data.tokens.size());
  FLASHRT_CHECK(!data.tokens.empty(), "{}: no tokens", origin);
  FLASHRT_CHECK(data.tokens.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()),
                "{}: too many tokens", origin);
  parts.split_regex = std::string(pre->regex);
  parts.pre_name = std::string(pre->name);
  parts.nfc = true;
  parts.min_vocab_size = static_cast<int32_t>(data.tokens.size());

  std::vector<size_t> added_ids;
  for (size_t i = 0; i < data.tokens.size(); ++i) {
    const int32_t type = data.token_types.empty() ? kTokenNormal : data.token_types[i];
    const std::string& tok = data.tokens[i];
    FLASHRT_CHECK(utf8::is_valid(tok), "{}: token {} is not valid UTF-8", origin, i);
    const auto id = static_cast<int32_t>(i);
    switch (type) {
      case kTokenUndefined:
      case kTokenNormal:
      case kTokenByte:
        FLASHRT_CHECK(parts.vocab.emplace(tok, id).second,
                      "{}: token {:?} appears twice ({} and {})", origin, tok, parts.vocab.at(tok),
                      i);
        break;
      case kTokenControl:
      case kTokenUnknown:
      case kTokenUserDefined:
        parts.added.push_back(
            AddedToken{.content = tok, .id = id, .special = type != kTokenUserDefined});
        added_ids.push_back(i);
        break;
      case kTokenUnused:
        break;
      default:
        fail("{}: token {} ({:?}) has unknown token type {}", origin, i, tok, type);
    }
  }
  // Merges may name added tokens' spellings too; let them resolve (encoding is unaffected).
  for (size_t i : added_ids) parts.vocab.emplace(data.tokens[i], static_cast<int32_t>(i));

  parts.merges.reserve(data.merges.size());
  for (size_t r = 0; r < data.merges.size(); ++r) {
    const std::string_view m = data.merges[r];
    // Split at the first space after the first character, as llama.cpp does.
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
    FLASHRT_CHECK(sp != std::string_view::npos, "{}: merge #{} {:?} is not \"left right\"", origin,
                  r, m);
    parts.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
  }
  parts.bos = data.bos;
  parts.eos = data.eos;
  parts.pad = data.pad;
  parts.chat_template = std::move(data.chat_template);
  // `data` (which the merge views point into) lives until the state is built.
  return Tokenizer(build_tokenizer_state(std::move(parts)));
}

TokenizerData Tokenizer::to_data() const {
  const State& st = *state_;
  FLASHRT_CHECK(!st.pre_name.empty(),
                "{}: its pre-tokenizer (split regex {:?}{}) has no llama.cpp name, so it cannot be "
                "written as GGUF tokenizer metadata",
                st.origin, st.regex.pattern(), st.nfc ? "" : ", no NFC");
  TokenizerData d;
  const size_t n = st.tokens.size();
  d.tokens.resize(n);
  d.token_types.resize(n);
  for (size_t i = 0; i < n; ++i) {
    d.token_types[i] = st.types[i];
    d.tokens[i] = st.types[i] == kTokenUnused ? fmt::format("[PAD{}]", i) : st.tokens[i];
  }
  // Merges are spelled with the model vocabulary (an added token may share an id with it).
  std::vector<std::string_view> model_spelling(n);
  for (const auto& [tok, id] : st.bpe.vocab()) model_spelling[static_cast<size_t>(id)] = tok;
  d.merges.reserve(st.bpe.merges().size());
  for (const auto& [a, b] : st.bpe.merges()) {
    std::string m(model_spelling[static_cast<size_t>(a)]);
    m.append(" ").append(model_spelling[static_cast<size_t>(b)]);
    d.merges.push_back(std::move(m));
  }
  d.pre = st.pre_name;
  d.bos = st.bos;
  d.eos = st.eos;
  d.pad = st.pad;
  d.chat_template = st.chat_template;
  return d;
}

}  // namespace flashrt
