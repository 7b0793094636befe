// flashrt — a latency-first runtime for language models whose whole execution state is a capsule.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"flashrt: a latency-first LLM runtime with execution-state capsules"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "flashrt 0.1.0");
  flashrt::cli::register_run(app);
  flashrt::cli::register_logits(app);
  flashrt::cli::register_convert(app);
  flashrt::cli::register_quantize(app);
  flashrt::cli::register_info(app);
  flashrt::cli::register_tokenize(app);
  flashrt::cli::register_chat(app);
  flashrt::cli::register_capsule(app);
  flashrt::cli::register_demo(app);
  flashrt::cli::register_make_model(app);
  flashrt::cli::register_perplexity(app);
  flashrt::cli::register_serve(app);
  flashrt::cli::register_template(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const flashrt::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
