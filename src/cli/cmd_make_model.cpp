// flashrt make-model: a random-weight model with a real shape, written as GGUF.
#include <fmt/ranges.h>

#include <cstdio>
#include <optional>

#include "cli/common.h"
#include "core/error.h"
#include "formats/gguf.h"
#include "models/random_model.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::cli {

void register_make_model(CLI::App& app) {
  struct Opts {
    std::string arch = "qwen3_5", shape = "0.8b", out, type = "bf16", tokenizer;
    uint64_t seed = 0;
    bool mtp = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("make-model",
                                 "Write a random-weight model with a real shape (for benchmarks)");
  std::vector<std::string> archs;
  std::string shapes;
  for (const Architecture* a : all_architectures()) {
    archs.push_back(a->name());
    shapes += fmt::format("{}{}: {}", shapes.empty() ? "" : "; ", a->name(),
                          fmt::join(model_shape_names(a->name()), ", "));
  }
  cmd->add_option("--arch", o->arch, fmt::format("{}", fmt::join(archs, " or ")))
      ->check(CLI::IsMember(archs))
      ->capture_default_str();
  cmd->add_option("--shape", o->shape, shapes)->capture_default_str();
  cmd->add_option("-o,--output", o->out, "Output .gguf")->required()->check(kOutputFile);
  cmd->add_option("--type", o->type,
                  "Type of the weight matrices: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k"}))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Random seed")->capture_default_str();
  cmd->add_flag("--mtp", o->mtp,
                "Add a multi-token prediction head (qwen3_5: one MTP layer, as Qwen3.5 has)");
  cmd->add_option("--tokenizer", o->tokenizer,
                  "Embed this tokenizer (HF folder, tokenizer.json or GGUF)");
  cmd->callback([o] {
    DType type;
    if (!dtype_from_name(o->type, &type)) fail("unknown type '{}'", o->type);
    ModelConfig c = model_shape(o->arch, o->shape);
    if (o->mtp) {
      FLASHRT_CHECK(c.arch == "qwen3_5", "--mtp: {} models have no MTP head (qwen3_5 has)", c.arch);
      c.mtp_layers = 1;
    }
    std::optional<TokenizerData> tok;
    if (!o->tokenizer.empty()) {
      tok = load_tokenizer(o->tokenizer).to_data();
      const auto n = static_cast<int64_t>(tok->tokens.size());
      if (n > c.vocab) {
        // A small shape takes the tokenizer's vocabulary (rounded up to 64 rows), so that the
        // model runs from text.
        c.vocab = (n + 63) / 64 * 64;
        std::fprintf(stderr,
                     "note: the vocabulary is sized to the tokenizer's %lld tokens (%lld rows)\n",
                     static_cast<long long>(n), static_cast<long long>(c.vocab));
      }
    }
    auto m = make_random_model(c, o->seed);
    m->path = o->out;
    GGUFWriter w;
    write_gguf(*m, w, type);
    if (tok) {
      TokenizerData& d = *tok;
      // Pad the vocabulary to the embedding rows, as llama.cpp's converter does ([PADn], unused).
      for (int64_t i = static_cast<int64_t>(d.tokens.size()); i < c.vocab; ++i) {
        d.tokens.push_back(fmt::format("[PAD{}]", i));
        d.token_types.push_back(kTokenUnused);
      }
      write_tokenizer_gguf(d, w);
    }
    w.write(o->out, "writing " + o->out);
    std::fprintf(stderr, "wrote %s: %s %s, %.1f M parameters, %s\n", o->out.c_str(),
                 o->arch.c_str(), o->shape.c_str(), m->param_count() / 1e6, o->type.c_str());
  });
}

}  // namespace flashrt::cli
