// flashrt tokenize / detokenize: text <-> ids with a model's tokenizer.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/common.h"
#include "core/error.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::cli {

void register_tokenize(CLI::App& app) {
  struct Opts {
    std::string model, prompt, file, ids;
    bool json = false, no_special = false, skip_special = false;
  };
  auto o = std::make_shared<Opts>();
  auto* tok = app.add_subcommand("tokenize", "Print the token ids of a text");
  tok->add_option("-m,--model", o->model,
                  "HF folder, tokenizer.json (or a folder holding it) or .gguf")
      ->required();
  auto* p = tok->add_option("-p,--prompt", o->prompt, "Text to tokenize");
  tok->add_option("-f,--file", o->file, "Read the text from a file")->excludes(p);
  tok->add_flag("--json", o->json, "Print JSON with ids and pieces");
  tok->add_flag("--no-special", o->no_special, "Treat special-token text as plain text");
  tok->callback([o] {
    std::string text = o->prompt;
    if (!o->file.empty()) {
      std::ifstream in(o->file, std::ios::binary);
      if (!in) fail("{}: cannot open", o->file);
      std::stringstream ss;
      ss << in.rdbuf();
      text = ss.str();
    }
    const Tokenizer t = load_tokenizer(o->model);
    const auto ids = t.encode(text, !o->no_special);
    if (o->json) {
      nlohmann::json j;
      j["ids"] = ids;
      auto& pieces = j["pieces"] = nlohmann::json::array();
      for (int32_t id : ids) pieces.push_back(t.decode(std::span<const int32_t>(&id, 1)));
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
      std::printf("\n");
    }
  });

  auto* det = app.add_subcommand("detokenize", "Print the text of token ids");
  det->add_option("-m,--model", o->model, "HF folder, tokenizer.json or .gguf")->required();
  det->add_option("--ids", o->ids, "Token ids: 1,2,3 or \"1 2 3\"")->required();
  det->add_flag("--skip-special", o->skip_special, "Leave special tokens out");
  det->callback([o] {
    const Tokenizer t = load_tokenizer(o->model);
    std::fputs(t.decode(parse_ids(o->ids), o->skip_special).c_str(), stdout);
    std::printf("\n");
  });
}

}  // namespace flashrt::cli
