// flashrt perplexity: how well a model predicts a text file.
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

#include "cli/common.h"
#include "core/error.h"
#include "core/progress.h"
#include "engine/perplexity.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::cli {

void register_perplexity(CLI::App& app) {
  struct Opts {
    ModelOptions m;
    std::string file;
    int window = 512;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("perplexity", "Perplexity of a model on a text file");
  add_model_options(cmd, o->m, /*with_session=*/false);
  cmd->add_option("-f,--file", o->file, "Text file")->required();
  cmd->add_option("-w,--window", o->window, "Tokens per evaluation window")->capture_default_str();
  cmd->callback([o] {
    std::ifstream in(o->file, std::ios::binary);
    if (!in) fail("{}: cannot open", o->file);
    std::stringstream ss;
    ss << in.rdbuf();
    auto loaded = load(o->m);
    const auto ids = load_tokenizer(o->m.model).encode(ss.str(), /*parse_special=*/false);
    std::optional<Progress> bar;
    const auto r =
        perplexity(*loaded.model, *loaded.backend, ids, o->window, [&](int done, int total) {
          if (!bar) bar.emplace("perplexity", static_cast<uint64_t>(total));
          bar->update(static_cast<uint64_t>(done));
        });
    if (bar) bar->finish();
    std::printf("perplexity %.4f (mean NLL %.5f nats) over %lld tokens in %d windows of %d\n",
                r.perplexity, r.mean_nll, static_cast<long long>(r.tokens_scored), r.windows,
                o->window);
  });
}

}  // namespace flashrt::cli
