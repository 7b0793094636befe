// libFuzzer target for the tokenizer's inputs (not part of the default build):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc fuzz/tokenizer_json.cpp \
//     src/tokenizer/*.cpp $(pkg-config --cflags --libs libpcre2-8 libutf8proc libxxhash) -lfmt \
//     -o fuzz_tokenizer && ./fuzz_tokenizer -max_len=65536 CORPUS_DIR
// The first byte picks what the rest is: a tokenizer.json, text to encode, or ids to decode and
// stream. Any flashrt::Error is a correct answer; a crash, a sanitizer report or another exception
// type is a bug.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace {

const flashrt::Tokenizer& reference_tokenizer() {
  static const flashrt::Tokenizer t = [] {
    const char* env = std::getenv("FLASHRT_SHARED");
    const std::filesystem::path shared =
        env && *env
            ? std::filesystem::path(env)
            : std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "shared";
    return flashrt::Tokenizer::from_hf_dir_or_file(
        (shared / "models/pycoder-hybrid-12m/tokenizer.json").string());
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 3) {
      case 0: {
        const auto tok = flashrt::Tokenizer::from_hf_json(rest);
        const auto ids = tok.encode("def f(x):\n    return x  # <|im_end|> ünïcödé 👍");
        (void)tok.decode(ids);
        break;
      }
      case 1: {
        const auto& tok = reference_tokenizer();
        (void)tok.decode(tok.encode(rest, (size & 1) != 0));
        break;
      }
      case 2: {
        std::vector<int32_t> ids(rest.size() / 2);
        for (size_t i = 0; i < ids.size(); ++i) {
          ids[i] = static_cast<int32_t>((static_cast<uint8_t>(rest[2 * i]) << 8) |
                                        static_cast<uint8_t>(rest[2 * i + 1])) -
                   100;
        }
        flashrt::StreamDecoder stream(reference_tokenizer());
        std::string streamed;
        for (int32_t id : ids) streamed += stream.push(id);
        streamed += stream.flush();
        if (streamed != reference_tokenizer().decode(ids)) std::abort();
        break;
      }
    }
  } catch (const flashrt::Error&) {
  }
  return 0;
}
