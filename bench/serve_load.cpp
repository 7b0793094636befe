// bench_serve_load: starts `flashrt serve` in-process on 127.0.0.1 (any free port) and drives it
// with N concurrent loopback clients mixing streamed chat completions, session forks and
// snapshot/restore round trips for a fixed time (default 60 s), then prints throughput and
// p50/p99 TTFT and inter-token latency as the clients saw them. Exits 1 on any error.
//   ./build/bench_serve_load [-m MODEL] [-d cpu|cuda] [--clients 16] [--duration 60] [--slots 4]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <thread>

#include "backends/backend.h"
#include "core/thread_pool.h"
#include "models/model.h"
#include "server/load_generator.h"
#include "server/server.h"
#include "tokenizer/gguf_vocab.h"

int main(int argc, char** argv) {
  using namespace flashrt;
  CLI::App app{"Loopback load test of flashrt serve"};
  std::string model_path = "models/pycoder-hybrid-12m.gguf";
  server::ServerOptions so;
  so.host = "127.0.0.1";
  so.port = 0;
  so.scheduler.session.max_ctx = 2048;
  server::LoadOptions lo;
  int threads = 0;
  std::string device = "cpu";
  app.add_option("-m,--model", model_path, "Model")->capture_default_str();
  app.add_option("--clients", lo.clients, "Concurrent clients")->capture_default_str();
  app.add_option("--duration", lo.seconds, "Seconds to run")->capture_default_str();
  app.add_option("--max-tokens", lo.max_tokens, "Tokens per generation")->capture_default_str();
  app.add_option("--slots", so.scheduler.slots, "Server slots")->capture_default_str();
  app.add_option("--ctx", so.scheduler.session.max_ctx, "Server context per slot")
      ->capture_default_str();
  app.add_option("-t,--threads", threads, "CPU threads for the model (default: all cores)");
  app.add_option("-d,--device", device, "Backend: cpu or cuda")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) ThreadPool::set_default_threads(threads);
    auto backend = make_backend(device);
    auto model = load_model(model_path, *backend);
    server::Server srv(*model, *backend, load_tokenizer(model_path), so);
    lo.port = srv.start();
    std::printf(
        "model %s on %s, %d slots x %lld tokens, %d clients for %.0f s on 127.0.0.1:%d, %u "
        "cores\n",
        model_path.c_str(), device.c_str(), so.scheduler.slots,
        static_cast<long long>(so.scheduler.session.max_ctx), lo.clients, lo.seconds, lo.port,
        std::thread::hardware_concurrency());
    std::fflush(stdout);
    const server::LoadReport r = server::run_load(lo);
    srv.stop();
    std::printf("%s", server::format_report(r, lo).c_str());
    return r.errors == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
