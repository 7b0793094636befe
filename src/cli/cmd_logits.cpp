// flashrt logits: one forward pass over ids, every position's logits as a .npy [T, vocab] float32.
#include "cli/common.h"
#include "core/error.h"
#include "formats/npy.h"

namespace flashrt::cli {

void register_logits(CLI::App& app) {
  struct Opts {
    ModelOptions m;
    std::string ids, out;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd =
      app.add_subcommand("logits", "Write the logits of one forward pass as a NumPy .npy file");
  add_model_options(cmd, o->m);
  cmd->add_option("--ids", o->ids, "Token ids: 1,2,3")->required();
  cmd->add_option("-o,--output", o->out, "Output .npy path")->required()->check(kOutputFile);
  cmd->callback([o] {
    auto loaded = load(o->m);
    auto& model = loaded.model;
    const auto ids = parse_ids(o->ids);
    FLASHRT_CHECK(!ids.empty(), "no token ids given");
    SessionOptions so = session_options(o->m);
    so.max_ctx = std::max<int64_t>(so.max_ctx, static_cast<int64_t>(ids.size()));
    Session s(*model, *loaded.backend, so);
    const auto logits = s.forward_all_logits(ids);
    write_npy_f32(o->out, logits.data(), {static_cast<int64_t>(ids.size()), model->cfg.vocab});
  });
}

}  // namespace flashrt::cli
