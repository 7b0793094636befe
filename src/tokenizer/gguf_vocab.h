// The tokenizer inside GGUF files, in llama.cpp's keys (tokenizer.ggml.*, tokenizer.chat_template),
// and loading the tokenizer that belongs to a model path (HF folder or GGUF file).
#pragma once
#include <string>

#include "tokenizer/tokenizer.h"

namespace flashrt {

class GGUFFile;
class GGUFWriter;

TokenizerData tokenizer_data_from_gguf(const GGUFFile& f);
void write_tokenizer_gguf(const TokenizerData& d, GGUFWriter& w);

// A folder (tokenizer.json [+ tokenizer_config.json]), a tokenizer.json file, or a .gguf file.
Tokenizer load_tokenizer(const std::string& path);

}  // namespace flashrt
