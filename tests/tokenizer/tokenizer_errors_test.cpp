// Bad input of every kind gets a flashrt::Error that says what is wrong, never a crash.
#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>

#include <fstream>

#include "tokenizer/tokenizer.h"
#include "tokenizer_fixtures.h"

namespace flashrt {
namespace {

using namespace tokenizer_test;
namespace fs = std::filesystem;

// A temporary folder holding one tokenizer.json with the given text.
class TempTokenizerDir {
 public:
  explicit TempTokenizerDir(const std::string& json) {
    dir_ = fs::temp_directory_path() /
           ("flashrt_tok_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "tokenizer.json", std::ios::binary) << json;
  }
  ~TempTokenizerDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path() const { return dir_.string(); }
  std::string file() const { return (dir_ / "tokenizer.json").string(); }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
};

// A small valid byte-level BPE tokenizer.json, as JSON, for tests to break.
nlohmann::json small_tokenizer() {
  const auto full = read_json(shared_dir() + "/models/pycoder-hybrid-12m/tokenizer.json");
  return full;
}

TEST(TokenizerErrors, InvalidUtf8SaysWhere) {
  expect_error(
      [] {
        qwen3().encode(
            "abc\xff"
            "def");
      },
      {"UTF-8", "byte offset 3", "0xff"});
  expect_error([] { qwen3().encode("ok \xe4\xb8"); }, {"byte offset 3"});    // truncated
  expect_error([] { qwen3().encode("\xc0\xaf"); }, {"byte offset 0"});       // overlong
  expect_error([] { qwen3().encode("x\xed\xa0\x80"); }, {"byte offset 1"});  // surrogate
  expect_error([] { qwen3().encode("<|im_end|>\x80"); }, {"byte offset 10"});
}

TEST(TokenizerErrors, UnknownIdsNameIdAndVocabSize) {
  expect_error(
      [] {
        qwen3().decode(std::vector<int32_t>{1, 151669});
      },
      {"151669", "vocabulary size 151669"});
  expect_error([] { qwen3().decode(std::vector<int32_t>{-1}); }, {"-1", "151669"});
  expect_error([] { qwen3().token_text(200000); }, {"200000"});
}

TEST(TokenizerErrors, MissingFileOrFolder) {
  expect_error([] { Tokenizer::from_hf_dir_or_file("/nonexistent/flashrt/tok.json"); },
               {"/nonexistent/flashrt/tok.json", "no such file"});
  const fs::path empty =
      fs::temp_directory_path() / ("flashrt_tok_empty_" + std::to_string(::getpid()));
  fs::create_directories(empty);
  expect_error([&] { Tokenizer::from_hf_dir_or_file(empty.string()); }, {"no tokenizer.json"});
  fs::remove_all(empty);
}

TEST(TokenizerErrors, TruncatedJson) {
  const std::string text = read_file(shared_dir() + "/models/pycoder-hybrid-12m/tokenizer.json");
  for (size_t cut : {size_t{0}, size_t{1}, text.size() / 3, text.size() - 2}) {
    TempTokenizerDir d(text.substr(0, cut));
    expect_error([&] { Tokenizer::from_hf_dir_or_file(d.path()); }, {d.file(), "not valid JSON"});
  }
}

TEST(TokenizerErrors, NotJsonAtAll) {
  TempTokenizerDir d("\x89PNG\r\n\x1a\n binary junk");
  expect_error([&] { Tokenizer::from_hf_dir_or_file(d.file()); }, {"not valid JSON"});
}

struct BrokenCase {
  const char* what;
  std::function<void(nlohmann::json&)> edit;
  std::vector<std::string> expect;
};

TEST(TokenizerErrors, WrongTypesAndUnsupportedParts) {
  const std::vector<BrokenCase> cases = {
      {"top level array",
       [](auto& j) {
         j = nlohmann::json::array({1, 2});
       },
       {"must be an object"}},
      {"no model", [](auto& j) { j.erase("model"); }, {"tokenizer.model is missing"}},
      {"vocab is array",
       [](auto& j) { j["model"]["vocab"] = nlohmann::json::array(); },
       {"model.vocab must be object, not array"}},
      {"vocab id string", [](auto& j) { j["model"]["vocab"]["Ġ"] = "x"; }, {"model.vocab[\"Ġ\"]"}},
      {"merges not array",
       [](auto& j) { j["model"]["merges"] = 5; },
       {"model.merges must be array"}},
      {"merge of numbers",
       [](auto& j) {
         j["model"]["merges"][3] = {1, 2};
       },
       {"model.merges[3]"}},
      {"merge one string", [](auto& j) { j["model"]["merges"][4] = "abc"; }, {"model.merges[4]"}},
      {"merge unknown token",
       [](auto& j) {
         j["model"]["merges"][5] = {"Ġ", "qqqqzz"};
       },
       {"merge #5", "qqqqzz", "not in the vocabulary"}},
      {"wordpiece",
       [](auto& j) { j["model"]["type"] = "WordPiece"; },
       {"model type \"WordPiece\""}},
      {"byte fallback", [](auto& j) { j["model"]["byte_fallback"] = true; }, {"byte_fallback"}},
      {"normalizer NFKC",
       [](auto& j) {
         j["normalizer"] = {{"type", "NFKC"}};
       },
       {"normalizer type \"NFKC\""}},
      {"no pre-tokenizer",
       [](auto& j) { j["pre_tokenizer"] = nullptr; },
       {"pre_tokenizer is missing"}},
      {"metaspace",
       [](auto& j) {
         j["pre_tokenizer"] = {{"type", "Metaspace"}};
       },
       {"\"Metaspace\""}},
      {"split behaviour",
       [](auto& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; },
       {"behavior \"Removed\""}},
      {"bad regex",
       [](auto& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(abc"; },
       {"cannot compile", "(abc"}},
      {"added id string",
       [](auto& j) { j["added_tokens"][0]["id"] = "zero"; },
       {"added_tokens[0].id must be number"}},
      {"added content missing",
       [](auto& j) { j["added_tokens"][1].erase("content"); },
       {"added_tokens[1].content is missing"}},
      {"added flag wrong",
       [](auto& j) { j["added_tokens"][0]["lstrip"] = "yes"; },
       {"added_tokens[0].lstrip must be boolean"}},
      {"decoder",
       [](auto& j) {
         j["decoder"] = {{"type", "WordPiece"}};
       },
       {"decoder type \"WordPiece\""}},
      {"duplicate id", [](auto& j) { j["model"]["vocab"]["zzzq"] = 100; }, {"both have id 100"}},
      // One huge id made a table of that many tokens (the fuzzer's out-of-memory case).
      {"sparse id",
       [](auto& j) { j["model"]["vocab"]["zzzq"] = 433333333; },
       {"ids run to 433333333", "ids must be dense"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    auto j = small_tokenizer();
    c.edit(j);
    TempTokenizerDir d(j.dump());
    auto expect = c.expect;
    expect.push_back(d.file());
    expect_error([&] { Tokenizer::from_hf_dir_or_file(d.path()); }, expect);
  }
}

TEST(TokenizerErrors, BadTokenizerConfig) {
  const std::string tok = read_file(shared_dir() + "/models/pycoder-hybrid-12m/tokenizer.json");
  expect_error([&] { Tokenizer::from_hf_json(tok, "{\"eos_token\": \"<|nope|>\"}"); },
               {"eos_token", "<|nope|>", "not in the vocabulary"});
  expect_error([&] { Tokenizer::from_hf_json(tok, "{\"eos_token\": 5}"); },
               {"eos_token must be string"});
  expect_error([&] { Tokenizer::from_hf_json(tok, "{\"chat_template\": "); }, {"not valid JSON"});
  const Tokenizer t =
      Tokenizer::from_hf_json(tok, "{\"eos_token\": {\"content\": \"<|im_end|>\"}}");
  EXPECT_EQ(t.eos_id(), 2);
}

TEST(TokenizerErrors, BadData) {
  TokenizerData d = pycoder().to_data();
  auto with = [&](auto edit) {
    TokenizerData x = d;
    edit(x);
    return x;
  };
  expect_error([&] { Tokenizer::from_data(with([](auto& x) { x.pre = "llama-bpe"; })); },
               {"unsupported pre-tokenizer \"llama-bpe\"", "qwen2"});
  expect_error([&] { Tokenizer::from_data(with([](auto& x) { x.token_types.pop_back(); })); },
               {"8191 token types for 8192 tokens"});
  expect_error([&] { Tokenizer::from_data(with([](auto& x) { x.merges[7] = "nospace"; })); },
               {"merge #7"});
  expect_error(
      [&] {
        Tokenizer::from_data(
            with([](auto& x) { x.tokens[300] = std::string(1, static_cast<char>(0xff)); }));
      },
      {"token 300 is not valid UTF-8"});
  expect_error([&] { Tokenizer::from_data(with([](auto& x) { x.token_types[9] = 42; })); },
               {"unknown token type 42"});
  expect_error([&] { Tokenizer::from_data(with([](auto& x) { x.eos = 9000; })); },
               {"9000", "outside the vocabulary"});
  expect_error(
      [&] {
        Tokenizer::from_data(with([](auto& x) {
          x.tokens.clear();
          x.token_types.clear();
        }));
      },
      {"no tokens"});
}

TEST(TokenizerErrors, UnnamedRegexCannotBecomeGguf) {
  auto j = small_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\p{L}+|\\s+|.";
  const Tokenizer t = Tokenizer::from_hf_json(j.dump());
  EXPECT_EQ(t.pre_name(), "");
  expect_error([&] { t.to_data(); }, {"no llama.cpp name"});
}

}  // namespace
}  // namespace flashrt
