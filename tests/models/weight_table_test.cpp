// The weight tables (models/weights.h) against real files: every tensor of a file is named by a
// table entry and consumed, every entry is found with its shape, names are unique, and what the
// tables drive (parameter counts, GGUF export, errors for missing tensors) agrees with the files.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "formats/gguf.h"
#include "models/model_fixtures.h"
#include "models/random_model.h"

namespace flashrt::testing {
namespace {

struct ModelFile {
  std::string label, path;
};

// HF folders of the reference and trained models, and GGUF files converted from them.
std::vector<ModelFile> model_files() {
  std::vector<ModelFile> out;
  for (const std::string n : {"qwen3", "qwen3-tied", "qwen35"}) {
    out.push_back({n + " hf", ref_model_dir(n)});
    out.push_back({n + " q8_0", converted_gguf(ref_model_dir(n), "q8_0")});
  }
  for (const std::string n : {"pycoder-dense-7m", "pycoder-hybrid-12m", "pycoder-hybrid-12m-mtp"}) {
    out.push_back({n + " hf", trained_model_dir(n)});
    out.push_back({n + " bf16", converted_gguf(trained_model_dir(n), "bf16")});
  }
  out.push_back(
      {"default model", std::string(FLASHRT_SOURCE_DIR) + "/models/pycoder-hybrid-12m.gguf"});
  return out;
}

// The tensors of a model's files, by name, with their element counts.
std::map<std::string, int64_t> file_tensors(const Model& m) {
  std::map<std::string, int64_t> out;
  for (const auto& src : m.sources)
    for (const std::string& n : src->names()) out[n] = src->get(n).elements();
  return out;
}

TEST(WeightTable, EveryTensorOfAFileIsConsumedAndEveryEntryIsFound) {
  for (const ModelFile& f : model_files()) {
    SCOPED_TRACE(f.label);
    const auto m = load_model(f.path);
    const auto tensors = file_tensors(*m);
    const bool hf = m->format == "hf";
    std::set<std::string> named, names, gguf, hfn;
    for (const BoundWeight& b : m->weights()) {
      EXPECT_TRUE(names.insert(b.name).second) << "flashrt name twice: " << b.name;
      EXPECT_TRUE(gguf.insert(b.gguf).second) << "GGUF name twice: " << b.gguf;
      EXPECT_TRUE(hfn.insert(b.hf).second) << "HF name twice: " << b.hf;
      ASSERT_FALSE(b.mat->empty()) << b.name;
      EXPECT_EQ(b.mat->rows, b.rows) << b.name;
      EXPECT_EQ(b.mat->cols, b.cols) << b.name;
      if (b.tied) {
        EXPECT_EQ(b.mat->data, b.tied->data) << b.name;
        continue;
      }
      const std::string& file_name = hf ? b.hf : b.gguf;
      ASSERT_TRUE(tensors.contains(file_name)) << file_name;
      EXPECT_EQ(tensors.at(file_name), b.rows * b.cols) << file_name;
      named.insert(file_name);
    }
    // Consumed = named by a table (the MTP head's 15 tensors included); the rest is reported.
    std::vector<std::string> left;
    for (const auto& [n, count] : tensors)
      if (!named.contains(n)) left.push_back(n);
    EXPECT_EQ(left, m->unused_tensors);
    EXPECT_TRUE(left.empty()) << left.size() << " unused, the first " << left.front();
    if (f.label == "pycoder-hybrid-12m-mtp hf") {
      EXPECT_EQ(m->cfg.mtp_layers, 1);
      EXPECT_EQ(std::count_if(named.begin(), named.end(),
                              [](const std::string& n) { return n.rfind("mtp.", 0) == 0; }),
                15);
    }
  }
}

TEST(WeightTable, ParameterCountIsTheSumOfTheFileTensors) {
  for (const ModelFile& f : model_files()) {
    if (f.label.find("mtp") != std::string::npos) continue;  // its MTP head is not counted yet
    SCOPED_TRACE(f.label);
    const auto m = load_model(f.path);
    int64_t n = 0;
    for (const auto& [name, count] : file_tensors(*m)) n += count;
    EXPECT_EQ(m->param_count(), n);
  }
}

TEST(WeightTable, RandomModelsHaveEveryTableEntryWithItsShape) {
  for (const Architecture* a : all_architectures()) {
    for (const std::string& shape : model_shape_names(a->name())) {
      if (shape != "tiny") continue;
      SCOPED_TRACE(a->name() + " " + shape);
      const auto m = make_random_model(model_shape(a->name(), shape), 1);
      for (const BoundWeight& b : m->weights()) {
        ASSERT_FALSE(b.mat->empty()) << b.name;
        EXPECT_EQ(b.mat->rows, b.rows) << b.name;
        EXPECT_EQ(b.mat->cols, b.cols) << b.name;
      }
      // Exported, loaded and exported again, it is the same model (the first export may reorder
      // value heads into llama.cpp's order; the second has nothing left to reorder).
      const std::string path = temp_dir() + "/random-" + a->name() + ".gguf";
      const std::string again = temp_dir() + "/random-" + a->name() + "-again.gguf";
      GGUFWriter w;
      write_gguf(*m, w, DType::BF16);
      w.write(path);
      const auto back = load_model(path);
      GGUFWriter w2;
      write_gguf(*back, w2, DType::BF16);
      w2.write(again);
      EXPECT_EQ(load_model(again)->weights_hash(), back->weights_hash());
      EXPECT_EQ(back->param_count(), m->param_count());
      EXPECT_TRUE(back->unused_tensors.empty());
    }
  }
}

// Copies a GGUF file leaving out one tensor and adding another.
void rewrite_gguf(const std::string& in, const std::string& out, const std::string& drop,
                  const std::string& extra) {
  const auto f = GGUFFile::open(in);
  GGUFWriter w;
  for (const auto& [k, v] : f->metadata()) w.set(k, v);
  for (const TensorInfo& t : f->tensors())
    if (t.name != drop) w.add_tensor_bytes(t.name, t.dtype, t.shape, t.data);
  const float one = 1.0f;  // the writer reads it when it writes the file
  if (!extra.empty()) w.add_tensor_bytes(extra, DType::F32, {1}, &one);
  w.write(out);
}

TEST(WeightTable, AMissingTensorIsAnErrorNamingItAndAnExtraOneIsReported) {
  const std::string src = converted_gguf(ref_model_dir("qwen35"), "bf16");
  const std::string path = temp_dir() + "/qwen35-edited.gguf";
  rewrite_gguf(src, path, "blk.1.ssm_a", "blk.1.something_new.weight");
  try {
    load_model(path);
    FAIL() << "loaded a model without blk.1.ssm_a";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'blk.1.ssm_a' is missing"), std::string::npos)
        << e.what();
  }
  rewrite_gguf(src, path, "", "blk.1.something_new.weight");
  const auto m = load_model(path);
  EXPECT_EQ(m->unused_tensors, std::vector<std::string>{"blk.1.something_new.weight"});
}

}  // namespace
}  // namespace flashrt::testing
