// Loading a Hugging Face tokenizer.json (+ tokenizer_config.json). Only what byte-level BPE models
// use is accepted; anything else is refused with a message naming the field, rather than
// tokenizing differently from transformers without a word.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_state.h"

namespace flashrt {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  FLASHRT_CHECK(in, "cannot open {}", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  FLASHRT_CHECK(!in.bad(), "cannot read {}", path.string());
  return std::move(ss).str();
}

json parse_json(std::string_view text, std::string_view origin) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    fail("{}: not valid JSON (byte {}): {}", origin, e.byte, e.what());
  } catch (const json::exception& e) {  // e.g. a number too large for a double
    fail("{}: not valid JSON: {}", origin, e.what());
  }
}

// Field access with errors that say which field of which file is wrong.
class Fields {
 public:
  Fields(const json& obj, std::string origin, std::string where)
      : obj_(obj), origin_(std::move(origin)), where_(std::move(where)) {
    FLASHRT_CHECK(obj.is_object(), "{}: {} must be an object, not {}", origin_, where_,
                  obj.type_name());
  }
  const json* get(const char* key) const {
    auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }
  const json& require(const char* key, json::value_t type) const {
    const json* v = get(key);
    FLASHRT_CHECK(v, "{}: {}.{} is missing", origin_, where_, key);
    check_type(*v, key, type);
    return *v;
  }
  std::string str(const char* key, std::string fallback = {}) const {
    const json* v = get(key);
    if (!v) return fallback;
    check_type(*v, key, json::value_t::string);
    return v->get<std::string>();
  }
  bool flag(const char* key, bool fallback) const {
    const json* v = get(key);
    if (!v) return fallback;
    check_type(*v, key, json::value_t::boolean);
    return v->get<bool>();
  }
  void check_type(const json& v, const char* key, json::value_t type) const {
    const bool ok =
        type == json::value_t::number_integer ? v.is_number_integer() : v.type() == type;
    if (!ok) {
      fail("{}: {}.{} must be {}, not {}", origin_, where_, key, json(type).type_name(),
           v.type_name());
    }
  }
  const std::string& origin() const { return origin_; }
  std::string path(const char* key) const { return where_ + "." + key; }

 private:
  const json& obj_;
  std::string origin_, where_;
};

void read_normalizer(const json* n, const std::string& origin, TokenizerParts& parts) {
  parts.nfc = false;
  if (!n) return;
  Fields f(*n, origin, "normalizer");
  const std::string type = f.str("type");
  if (type == "NFC") {
    parts.nfc = true;
  } else if (type == "Sequence") {
    const json& list = f.require("normalizers", json::value_t::array);
    FLASHRT_CHECK(list.size() <= 1, "{}: normalizer Sequence of {} normalizers is not supported",
                  origin, list.size());
    for (const json& item : list) read_normalizer(&item, origin, parts);
  } else {
    fail("{}: normalizer type {:?} is not supported (flashrt supports NFC or none)", origin, type);
  }
}

void read_pre_tokenizer(const json* p, const std::string& origin, TokenizerParts& parts) {
  FLASHRT_CHECK(p, "{}: pre_tokenizer is missing; flashrt supports byte-level BPE only", origin);
  std::vector<const json*> steps;
  Fields top(*p, origin, "pre_tokenizer");
  if (top.str("type") == "Sequence") {
    for (const json& item : top.require("pretokenizers", json::value_t::array)) {
      steps.push_back(&item);
    }
  } else {
    steps.push_back(p);
  }
  bool have_split = false, have_byte_level = false;
  for (const json* step : steps) {
    Fields f(*step, origin, "pre_tokenizer");
    const std::string type = f.str("type");
    if (type == "Split" && !have_split && !have_byte_level) {
      const json& pattern = f.require("pattern", json::value_t::object);
      Fields pf(pattern, origin, "pre_tokenizer.pattern");
      FLASHRT_CHECK(pf.get("Regex"),
                    "{}: Split pre-tokenizer with a String pattern is not supported (only Regex)",
                    origin);
      parts.split_regex = pf.str("Regex");
      const std::string behavior = f.str("behavior");
      FLASHRT_CHECK(behavior == "Isolated",
                    "{}: Split pre-tokenizer behavior {:?} is not supported (only Isolated)",
                    origin, behavior);
      FLASHRT_CHECK(!f.flag("invert", false),
                    "{}: Split pre-tokenizer with invert=true is not supported", origin);
      have_split = true;
    } else if (type == "ByteLevel" && !have_byte_level) {
      const bool use_regex = f.flag("use_regex", true);
      const bool prefix = f.flag("add_prefix_space", true);
      if (have_split) {
        FLASHRT_CHECK(!use_regex && !prefix,
                      "{}: a ByteLevel pre-tokenizer after Split must have use_regex=false and "
                      "add_prefix_space=false",
                      origin);
      } else {
        FLASHRT_CHECK(use_regex,
                      "{}: ByteLevel pre-tokenizer with use_regex=false and no Split "
                      "before it is not supported",
                      origin);
        parts.split_regex = std::string(kGpt2SplitRegex);
        parts.add_prefix_space = prefix;
      }
      have_byte_level = true;
    } else {
      fail(
          "{}: pre-tokenizer {:?} is not supported here (flashrt supports [Split(Regex, "
          "Isolated)], ByteLevel)",
          origin, type);
    }
  }
  FLASHRT_CHECK(have_byte_level,
                "{}: the pre-tokenizer has no ByteLevel step; flashrt supports byte-level BPE only",
                origin);
}

void read_model(const json& m, const std::string& origin, TokenizerParts& parts) {
  Fields f(m, origin, "model");
  const std::string type = f.str("type", "BPE");
  FLASHRT_CHECK(type == "BPE", "{}: model type {:?} is not supported (flashrt supports BPE)",
                origin, type);
  FLASHRT_CHECK(!f.flag("byte_fallback", false),
                "{}: model.byte_fallback=true (SentencePiece-style BPE) is not supported", origin);
  FLASHRT_CHECK(f.str("continuing_subword_prefix").empty(),
                "{}: model.continuing_subword_prefix is not supported", origin);
  FLASHRT_CHECK(f.str("end_of_word_suffix").empty(),
                "{}: model.end_of_word_suffix is not supported", origin);
  if (const json* d = f.get("dropout")) {
    FLASHRT_CHECK(d->is_number() && d->get<double>() == 0.0,
                  "{}: model.dropout is set; BPE dropout is not supported", origin);
  }
  parts.ignore_merges = f.flag("ignore_merges", false);

  const json& vocab = f.require("vocab", json::value_t::object);
  parts.vocab.reserve(vocab.size());
  for (const auto& [tok, id] : vocab.items()) {
    FLASHRT_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 &&
                      id.get<int64_t>() < std::numeric_limits<int32_t>::max(),
                  "{}: model.vocab[{:?}] must be a non-negative integer id, not {}", origin, tok,
                  id.dump());
    parts.vocab.emplace(tok, static_cast<int32_t>(id.get<int64_t>()));
  }
  const json& merges = f.require("merges", json::value_t::array);
  parts.merges.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const json& m = merges[r];
    if (m.is_string()) {
      // Old format: "left right".
      const std::string_view s = m.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      FLASHRT_CHECK(sp != std::string_view::npos && s.find(' ', sp + 1) == std::string_view::npos,
                    "{}: model.merges[{}] {:?} is not \"left right\"", origin, r, s);
      parts.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else {
      FLASHRT_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
                    "{}: model.merges[{}] must be a pair of strings, not {}", origin, r,
                    m.dump().substr(0, 80));
      parts.merges.emplace_back(m[0].get_ref<const std::string&>(),
                                m[1].get_ref<const std::string&>());
    }
  }
}

void read_added_tokens(const json* list, const std::string& origin, TokenizerParts& parts) {
  if (!list) return;
  FLASHRT_CHECK(list->is_array(), "{}: added_tokens must be an array, not {}", origin,
                list->type_name());
  for (size_t i = 0; i < list->size(); ++i) {
    Fields f((*list)[i], origin, fmt::format("added_tokens[{}]", i));
    AddedToken t;
    const json& id = f.require("id", json::value_t::number_integer);
    FLASHRT_CHECK(id.get<int64_t>() >= 0 && id.get<int64_t>() < std::numeric_limits<int32_t>::max(),
                  "{}: added_tokens[{}].id {} is out of range", origin, i, id.dump());
    t.id = static_cast<int32_t>(id.get<int64_t>());
    t.content = f.require("content", json::value_t::string).get<std::string>();
    t.special = f.flag("special", false);
    t.lstrip = f.flag("lstrip", false);
    t.rstrip = f.flag("rstrip", false);
    t.single_word = f.flag("single_word", false);
    t.normalized = f.flag("normalized", !t.special);
    parts.added.push_back(std::move(t));
  }
}

void check_decoder(const json* d, const std::string& origin) {
  if (!d) return;
  Fields f(*d, origin, "decoder");
  const std::string type = f.str("type");
  FLASHRT_CHECK(type == "ByteLevel",
                "{}: decoder type {:?} is not supported (flashrt supports ByteLevel)", origin,
                type);
}

// tokenizer_config.json names special tokens by content, as a string or {"content": ...}.
std::optional<int32_t> config_token(const Fields& f, const char* key, const TokenizerParts& parts) {
  const json* v = f.get(key);
  if (!v) return std::nullopt;
  std::string content;
  if (v->is_object()) {
    content =
        Fields(*v, f.origin(), key).require("content", json::value_t::string).get<std::string>();
  } else {
    f.check_type(*v, key, json::value_t::string);
    content = v->get<std::string>();
  }
  for (const AddedToken& t : parts.added) {
    if (t.content == content) return t.id;
  }
  auto it = parts.vocab.find(content);
  FLASHRT_CHECK(it != parts.vocab.end(), "{}: {} {:?} is not in the vocabulary", f.origin(), key,
                content);
  return it->second;
}

void read_config(std::string_view config_text, const std::string& origin, TokenizerParts& parts) {
  if (config_text.empty()) return;
  const json config = parse_json(config_text, origin);
  Fields f(config, origin, "tokenizer_config");
  parts.bos = config_token(f, "bos_token", parts);
  parts.eos = config_token(f, "eos_token", parts);
  parts.pad = config_token(f, "pad_token", parts);
  if (const json* t = f.get("chat_template")) {
    if (t->is_string()) {
      parts.chat_template = t->get<std::string>();
    } else {
      // A list of named templates: use the default one.
      FLASHRT_CHECK(t->is_array(), "{}: chat_template must be a string or a list, not {}", origin,
                    t->type_name());
      for (const json& item : *t) {
        Fields it(item, origin, "chat_template[]");
        if (it.str("name") == "default") parts.chat_template = it.str("template");
      }
    }
  }
}

std::shared_ptr<const Tokenizer::State> load_hf(std::string_view tokenizer_json,
                                                std::string_view config_json,
                                                const std::string& name,
                                                std::string fallback_template) {
  const json doc = parse_json(tokenizer_json, name);
  TokenizerParts parts;
  parts.origin = name;
  try {
    Fields top(doc, name, "tokenizer");
    read_model(top.require("model", json::value_t::object), name, parts);
    read_added_tokens(top.get("added_tokens"), name, parts);
    read_normalizer(top.get("normalizer"), name, parts);
    read_pre_tokenizer(top.get("pre_tokenizer"), name, parts);
    check_decoder(top.get("decoder"), name);
    const fs::path config_origin = fs::path(name).parent_path() / "tokenizer_config.json";
    read_config(config_json, config_origin.string(), parts);
    if (parts.chat_template.empty()) parts.chat_template = std::move(fallback_template);
    // The views in parts.merges point into `doc`, which outlives this call.
    return build_tokenizer_state(std::move(parts));
  } catch (const json::exception& e) {
    // A shape the checks above did not foresee; still an error message, never a crash.
    fail("{}: unexpected content: {}", name, e.what());
  }
}

}  // namespace

Tokenizer Tokenizer::from_hf_json(std::string_view tokenizer_json, std::string_view config_json,
                                  std::string_view origin) {
  return Tokenizer(load_hf(tokenizer_json, config_json, std::string(origin), {}));
}

Tokenizer Tokenizer::from_hf_dir_or_file(const std::string& path) {
  fs::path file(path);
  std::error_code ec;
  if (fs::is_directory(file, ec)) {
    file /= "tokenizer.json";
    FLASHRT_CHECK(fs::exists(file, ec), "{}: no tokenizer.json in this folder", path);
  } else {
    FLASHRT_CHECK(fs::exists(file, ec), "{}: no such file or folder", path);
  }
  const std::string text = read_text_file(file);
  const fs::path dir = file.parent_path();
  std::string config, jinja;
  if (fs::exists(dir / "tokenizer_config.json", ec)) {
    config = read_text_file(dir / "tokenizer_config.json");
  }
  // Newer checkpoints keep the template in a file of its own.
  if (fs::exists(dir / "chat_template.jinja", ec))
    jinja = read_text_file(dir / "chat_template.jinja");
  return Tokenizer(load_hf(text, config, file.string(), std::move(jinja)));
}

}  // namespace flashrt
