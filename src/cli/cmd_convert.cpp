// flashrt convert: HF folder (or GGUF) -> GGUF in llama.cpp's names, optionally re-typed.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/common.h"
#include "core/error.h"
#include "formats/gguf.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::cli {

namespace {

const std::vector<std::string> kTypes = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k"};

void convert(const std::string& in, const std::string& out, const std::string& type_name) {
  auto model = load_model(in);
  DType type;
  if (!dtype_from_name(type_name, &type)) fail("unknown type '{}'", type_name);
  GGUFWriter w;
  write_gguf(*model, w, type);
  // The tokenizer travels in the GGUF so the file is all a user needs.
  try {
    write_tokenizer_gguf(load_tokenizer(in).to_data(), w);
  } catch (const Error& e) {
    std::fprintf(stderr, "warning: no tokenizer written: %s\n", e.what());
  }
  w.write(out, "converting");
  std::fprintf(stderr, "wrote %s (%s, %s)\n", out.c_str(), model->arch->gguf_name().c_str(),
               type_name.c_str());
}

}  // namespace

void register_convert(CLI::App& app) {
  struct Opts {
    std::string in, out, type = "bf16";
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "convert", "Convert an HF folder or GGUF file to GGUF (llama.cpp-compatible)");
  cmd->add_option("input", o->in, "HF folder or .gguf file")->required();
  cmd->add_option("-o,--output", o->out, "Output .gguf path")->required()->check(kOutputFile);
  cmd->add_option("--type", o->type,
                  "Type of the weight matrices: f32, f16, bf16, q8_0, q4_0, q4_k, q6_k")
      ->check(CLI::IsMember(kTypes))
      ->capture_default_str();
  cmd->callback([o] {
    check_not_input(o->out, o->in);
    convert(o->in, o->out, o->type);
  });
}

// llama-quantize's shape of the same operation: quantize IN OUT --type T. Norms and other
// vectors stay f32; matrices whose rows are not whole 256-value blocks take q4_0 for q4_k and
// q8_0 for q6_k (llama-quantize falls back the same way), or f32.
void register_quantize(CLI::App& app) {
  struct Opts {
    std::string in, out, type = "q8_0";
  };
  auto o = std::make_shared<Opts>();
  auto* cmd =
      app.add_subcommand("quantize", "Write a GGUF with quantized weights (like llama-quantize)");
  cmd->add_option("input", o->in, "HF folder or .gguf file")->required();
  cmd->add_option("output", o->out, "Output .gguf path")->required()->check(kOutputFile);
  cmd->add_option("--type", o->type,
                  "Type of the weight matrices: q8_0, q4_0, q4_k, q6_k (or f32, f16, bf16)")
      ->check(CLI::IsMember(kTypes))
      ->capture_default_str();
  cmd->callback([o] {
    check_not_input(o->out, o->in);
    convert(o->in, o->out, o->type);
  });
}

}  // namespace flashrt::cli
