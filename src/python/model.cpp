// flashrt.Model and flashrt.Tokenizer.
#include <pybind11/stl.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/thread_pool.h"
#include "python/handles.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::python {

namespace {

std::shared_ptr<ModelHandle> load(const std::string& path, const std::string& device,
                                  std::optional<int> threads) {
  if (threads) {
    if (*threads < 1) throw py::value_error("threads must be at least 1");
    // More threads than cores only make them wait for each other.
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    ThreadPool::set_default_threads(std::min(*threads, cores));
  }
  auto h = std::make_shared<ModelHandle>();
  h->device = device;
  {
    py::gil_scoped_release nogil;
    h->backend = make_backend(device);
    h->model = load_model(path, *h->backend);
    try {
      h->tokenizer = load_tokenizer(path);
    } catch (const Error& e) {  // an ids-only model (a random GGUF without a vocabulary)
      h->tokenizer_error = fmt::format("{} has no usable tokenizer: {}", path, e.what());
    }
  }
  return h;
}

py::dict info_of(const ModelHandle& h) {
  const Model& m = *h.model;
  const ModelConfig& c = m.cfg;
  size_t per_token = 0, fixed = 0;
  m.state_bytes(&per_token, &fixed);
  py::dict d;
  d["architecture"] = c.arch;
  d["format"] = m.format;
  d["path"] = m.path;
  d["device"] = h.device;
  d["parameters"] = m.param_count();
  d["weight_bytes"] = m.weight_bytes();
  d["vocab"] = c.vocab;
  d["hidden"] = c.hidden;
  d["ffn"] = c.ffn;
  d["layers"] = c.n_layers;
  d["attention_layers"] = c.n_layers_of(LayerKind::kAttention);
  d["gated_deltanet_layers"] = c.n_layers_of(LayerKind::kGatedDeltaNet);
  d["heads"] = c.n_heads;
  d["kv_heads"] = c.n_kv_heads;
  d["head_dim"] = c.head_dim;
  d["max_positions"] = c.max_positions;
  d["tied_embeddings"] = c.tied_embeddings;
  d["mtp_layers"] = c.mtp_layers;
  d["eos_ids"] = c.eos_ids;
  d["state_bytes_per_token"] = per_token;
  d["state_bytes_fixed"] = fixed;
  d["weights_hash"] = fmt::format("{:016x}", m.weights_hash());
  return d;
}

std::optional<int32_t> opt_id(std::optional<int32_t> v) {
  return v;
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<Tokenizer>(m, "Tokenizer",
                        "The model's tokenizer (byte-level BPE; the same ids as Hugging Face "
                        "tokenizers). Immutable: safe to use from several threads.")
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size)
      .def("__len__", &Tokenizer::vocab_size)
      .def_property_readonly("bos_id", [](const Tokenizer& t) { return opt_id(t.bos_id()); })
      .def_property_readonly("eos_id", [](const Tokenizer& t) { return opt_id(t.eos_id()); })
      .def_property_readonly("stop_ids", &Tokenizer::stop_ids)
      .def_property_readonly("chat_template", &Tokenizer::chat_template)
      .def(
          "encode",
          [](const Tokenizer& t, const std::string& text, bool parse_special) {
            py::gil_scoped_release nogil;
            return t.encode(text, parse_special);
          },
          py::arg("text"), py::arg("parse_special") = true,
          "Text -> ids (no BOS/EOS added); with parse_special, control tokens written in the text "
          "become their ids.")
      .def(
          "decode",
          [](const Tokenizer& t, const std::vector<int32_t>& ids, bool skip_special) {
            return t.decode(ids, skip_special);
          },
          py::arg("ids"), py::arg("skip_special") = false)
      .def(
          "token_bytes",
          [](const Tokenizer& t, int32_t id) { return py::bytes(std::string(t.token_bytes(id))); },
          py::arg("id"))
      .def(
          "apply_chat_template",
          [](const Tokenizer& t, const py::object& messages, const py::object& tools,
             bool add_generation_prompt, const py::kwargs& kwargs) {
            py::dict conv;
            conv["messages"] = messages;
            conv["tools"] = tools;
            conv["add_generation_prompt"] = add_generation_prompt;
            conv["kwargs"] = kwargs;
            const auto j = nlohmann::ordered_json::parse(to_json_text(conv));
            const ChatConversation c = chat_conversation_from_json(j);
            return t.apply_chat_template(c);
          },
          py::arg("messages"), py::arg("tools") = py::none(),
          py::arg("add_generation_prompt") = true,
          "Renders the model's Jinja chat template as transformers' apply_chat_template does; "
          "keyword arguments (enable_thinking=False, ...) are template variables.")
      .def("__repr__", [](const Tokenizer& t) {
        return fmt::format("<flashrt.Tokenizer vocab_size={}>", t.vocab_size());
      });

  py::class_<ModelHandle, std::shared_ptr<ModelHandle>>(
      m, "Model",
      "A model loaded from a GGUF file or a Hugging Face folder onto a backend (\"cpu\", "
      "\"cuda\"). Its sessions may be used from several threads: their compute runs one call at a "
      "time.")
      .def(py::init(
               [](const py::object& path, const std::string& device, std::optional<int> threads) {
                 return load(py::str(path).cast<std::string>(), device, threads);
               }),
           py::arg("path"), py::arg("device") = "cpu", py::arg("threads") = py::none(),
           "threads: compute threads (process-wide, read when the first model loads; default: "
           "one per core).")
      .def_property_readonly("info", &info_of)
      .def_property_readonly("device", [](const ModelHandle& h) { return h.device; })
      .def_property_readonly(
          "tokenizer", [](const ModelHandle& h) { return h.tok(); },
          "The model's tokenizer (flashrt.Error when it ships none).")
      .def("__repr__", [](const ModelHandle& h) {
        return fmt::format("<flashrt.Model {} ({}, {:.2f} M parameters) on {}>", h.model->path,
                           h.model->cfg.arch, h.model->param_count() / 1e6, h.device);
      });
}

}  // namespace flashrt::python
