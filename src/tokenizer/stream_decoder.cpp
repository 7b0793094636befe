#include "tokenizer/stream_decoder.h"

#include "tokenizer/utf8.h"

namespace flashrt {

StreamDecoder::StreamDecoder(Tokenizer tokenizer, bool skip_special)
    : tokenizer_(std::move(tokenizer)), skip_special_(skip_special) {}

std::string StreamDecoder::push(int32_t id) {
  const std::string_view bytes = tokenizer_.token_bytes(id);  // throws on a bad id
  if (skip_special_ && tokenizer_.is_special(id)) return {};
  pending_.append(bytes);
  std::string out;
  const size_t used = utf8::append_lossy(out, pending_, /*final=*/false);
  pending_.erase(0, used);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  utf8::append_lossy(out, pending_, /*final=*/true);
  pending_.clear();
  return out;
}

}  // namespace flashrt
