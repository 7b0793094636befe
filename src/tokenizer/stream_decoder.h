// Streaming detokenization for generation: text goes out as tokens come in, and never a broken
// UTF-8 sequence (a character split over several byte tokens is held until it is complete).
#pragma once
#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace flashrt {

// The concatenation of all push() results and the final flush() equals Tokenizer::decode of all
// the ids, and every piece is valid UTF-8.
class StreamDecoder {
 public:
  explicit StreamDecoder(Tokenizer tokenizer, bool skip_special = false);
  // The text completed by `id` (possibly empty). A bad id throws flashrt::Error, changing nothing.
  std::string push(int32_t id);
  // Whatever is held back, with bytes that never completed a character replaced by U+FFFD; the
  // decoder is then empty, ready for a new stream.
  std::string flush();
  void reset() { pending_.clear(); }
  // Bytes held back, waiting for the rest of their character.
  size_t pending_bytes() const { return pending_.size(); }

 private:
  Tokenizer tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace flashrt
