// flashrt convert: HF folder (or GGUF) -> GGUF in llama.cpp's names, optionally re-typed.
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "formats/gguf.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::cli {

void register_convert(CLI::App& app) {
  struct Opts {
    std::string in, out, type = "bf16";
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("convert", "Convert an HF folder or GGUF file to GGUF (llama.cpp-compatible)");
  cmd->add_option("input", o->in, "HF folder or .gguf file")->required();
  cmd->add_option("-o,--output", o->out, "Output .gguf path")->required();
  cmd->add_option("--type", o->type, "Type of the weight matrices: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k"}))
      ->capture_default_str();
  cmd->callback([o] {
    auto model = load_model(o->in);
    DType type;
    if (!dtype_from_name(o->type, &type)) fail("unknown type '{}'", o->type);
    GGUFWriter w;
    model->arch->write_gguf(*model, w, type);
    // The tokenizer travels in the GGUF so the file is all a user needs.
    try {
      write_tokenizer_gguf(load_tokenizer(o->in).to_data(), w);
    } catch (const Error& e) {
      std::fprintf(stderr, "warning: no tokenizer written: %s\n", e.what());
    }
    w.write(o->out, "converting");
    std::fprintf(stderr, "wrote %s (%s, %s)\n", o->out.c_str(), model->arch->gguf_name().c_str(), o->type.c_str());
  });
}

}  // namespace flashrt::cli
