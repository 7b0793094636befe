#include "tokenizer/gguf_vocab.h"

#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "formats/gguf.h"

namespace flashrt {

TokenizerData tokenizer_data_from_gguf(const GGUFFile& f) {
  const std::string model = f.get_string_opt("tokenizer.ggml.model").value_or("");
  if (model.empty())
    fail("{}: no tokenizer in this GGUF (tokenizer.ggml.model is missing)", f.describe());
  if (model != "gpt2")
    fail("{}: tokenizer type '{}' is not supported (flashrt reads byte-level BPE, 'gpt2')",
         f.describe(), model);
  TokenizerData d;
  auto read = [&](const char* key, auto fn) {
    const GGUFValue* v = f.get_meta(key);
    if (!v) return false;
    try {
      fn(*v);
    } catch (const Error& e) {
      fail("{}: metadata '{}': {}", f.describe(), key, e.what());
    }
    return true;
  };
  if (!read("tokenizer.ggml.tokens", [&](const GGUFValue& v) { d.tokens = v.as_string_array(); }))
    fail("{}: missing tokenizer.ggml.tokens", f.describe());
  read("tokenizer.ggml.token_type", [&](const GGUFValue& v) {
    for (int64_t t : v.as_int_array()) d.token_types.push_back(static_cast<int32_t>(t));
  });
  read("tokenizer.ggml.merges", [&](const GGUFValue& v) { d.merges = v.as_string_array(); });
  d.pre = f.get_string_opt("tokenizer.ggml.pre").value_or("default");
  // Token ids are u32 in GGUF: checked against the vocabulary before they become int32.
  auto token_id = [&](const char* key) -> std::optional<int32_t> {
    const auto v = f.get_int_opt(key);
    if (!v) return std::nullopt;
    const auto n = static_cast<int64_t>(d.tokens.size());
    FLASHRT_CHECK(*v >= 0 && *v < n, "{}: {} is {}, outside the vocabulary (0..{})", f.describe(),
                  key, *v, n - 1);
    return static_cast<int32_t>(*v);
  };
  d.bos = token_id("tokenizer.ggml.bos_token_id");
  d.eos = token_id("tokenizer.ggml.eos_token_id");
  // A bad padding id is common in the wild and harmless here (llama.cpp warns too): dropped.
  if (auto v = f.get_int_opt("tokenizer.ggml.padding_token_id")) {
    if (*v >= 0 && *v < static_cast<int64_t>(d.tokens.size()))
      d.pad = static_cast<int32_t>(*v);
    else
      std::fprintf(stderr,
                   "warning: %s: ignoring tokenizer.ggml.padding_token_id %lld (outside the "
                   "vocabulary)\n",
                   f.describe().c_str(), static_cast<long long>(*v));
  }
  d.chat_template = f.get_string_opt("tokenizer.chat_template").value_or("");
  return d;
}

void write_tokenizer_gguf(const TokenizerData& d, GGUFWriter& w) {
  w.set("tokenizer.ggml.model", GGUFValue::str("gpt2"));
  w.set("tokenizer.ggml.pre", GGUFValue::str(d.pre));
  w.set("tokenizer.ggml.tokens", GGUFValue::str_array(d.tokens));
  w.set("tokenizer.ggml.token_type", GGUFValue::i32_array(d.token_types));
  w.set("tokenizer.ggml.merges", GGUFValue::str_array(d.merges));
  if (d.bos) w.set("tokenizer.ggml.bos_token_id", GGUFValue::u32(static_cast<uint32_t>(*d.bos)));
  if (d.eos) w.set("tokenizer.ggml.eos_token_id", GGUFValue::u32(static_cast<uint32_t>(*d.eos)));
  if (d.pad)
    w.set("tokenizer.ggml.padding_token_id", GGUFValue::u32(static_cast<uint32_t>(*d.pad)));
  w.set("tokenizer.ggml.add_bos_token", GGUFValue::boolean(false));
  if (!d.chat_template.empty()) w.set("tokenizer.chat_template", GGUFValue::str(d.chat_template));
}

Tokenizer load_tokenizer(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec) && path.ends_with(".gguf")) {
    const auto g = GGUFFile::open(path);
    return Tokenizer::from_data(tokenizer_data_from_gguf(*g));
  }
  return Tokenizer::from_hf_dir_or_file(path);
}

}  // namespace flashrt
