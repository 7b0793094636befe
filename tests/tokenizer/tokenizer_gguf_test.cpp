// The tokenizer through GGUF: written in llama.cpp's keys by flashrt and read back, it encodes and
// decodes every reference case exactly like the tokenizer.json it came from.
#include "formats/gguf.h"
#include "models/model_fixtures.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer_fixtures.h"

namespace flashrt::tokenizer_test {
namespace {

Tokenizer through_gguf(const Tokenizer& t, const std::string& name) {
  GGUFWriter w;
  w.set("general.architecture", GGUFValue::str("qwen3"));
  write_tokenizer_gguf(t.to_data(), w);
  const std::string path = testing::temp_dir() + "/" + name + "-tokenizer.gguf";
  w.write(path);
  return load_tokenizer(path);
}

TEST(TokenizerGguf, Qwen3CasesThroughGguf) {
  const Tokenizer t = through_gguf(qwen3(), "qwen3");
  const auto& c = qwen3_cases();
  int bad = 0;
  for (size_t i = 0; i < c.texts.size(); ++i) {
    const auto ids = t.encode(c.texts[i]);
    if (ids != c.ids[i] || t.decode(ids) != c.decoded[i]) {
      if (++bad < 4) ADD_FAILURE() << "case " << i << ": " << c.texts[i].substr(0, 80);
    }
  }
  EXPECT_EQ(bad, 0) << "of " << c.texts.size();
  EXPECT_EQ(t.render_chat(std::vector<ChatMessage>{{"user", "Hello!", ""}}),
            "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n");
}

TEST(TokenizerGguf, ConvertedModelCarriesItsTokenizer) {
  // The default model shipped in models/ was converted by flashrt from the pycoder HF folder.
  const Tokenizer t = load_tokenizer(source_dir() + "/models/pycoder-hybrid-12m.gguf");
  const auto samples = read_json(shared_dir() + "/models/pycoder-hybrid-12m/samples.json");
  for (const auto& s : samples) {
    const std::string prompt = s.at("prompt").get<std::string>();
    EXPECT_EQ(t.encode(prompt), pycoder().encode(prompt));
  }
  EXPECT_EQ(t.stop_ids(), pycoder().stop_ids());
}

TEST(TokenizerGguf, GgufWithoutTokenizerIsAClearError) {
  GGUFWriter w;
  w.set("general.architecture", GGUFValue::str("qwen3"));
  const std::string path = testing::temp_dir() + "/no-tokenizer.gguf";
  w.write(path);
  try {
    load_tokenizer(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer"), std::string::npos) << e.what();
  }
}

TEST(TokenizerGguf, TokenIdsOutsideTheVocabularyAreRefused) {
  // GGUF stores token ids as u32: 4000000000 once came out as -294967296.
  const std::string hf = testing::trained_model_dir("pycoder-dense-7m");
  auto m = load_model(hf);
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.bos_token_id"}) {
    GGUFWriter w;
    write_gguf(*m, w, DType::F32);
    write_tokenizer_gguf(load_tokenizer(hf).to_data(), w);
    w.set(key, GGUFValue::u32(4000000000u));
    const std::string path = testing::temp_dir() + "/bad-token-id.gguf";
    w.write(path);
    for (int what = 0; what < 2; ++what) {
      try {
        if (what == 0)
          load_tokenizer(path);
        else
          load_model(path);
        ADD_FAILURE() << key << ": loaded";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("4000000000, outside the vocabulary"),
                  std::string::npos)
            << e.what();
      }
    }
  }
}

}  // namespace
}  // namespace flashrt::tokenizer_test
