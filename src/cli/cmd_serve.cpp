// flashrt serve: the HTTP server (OpenAI-compatible API, sessions, capsules). Runs until SIGINT or
// SIGTERM, then stops taking connections, cancels running generations and exits.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <thread>

#include "cli/common.h"
#include "core/error.h"
#include "server/server.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::cli {

namespace {

struct ServeOptions {
  ModelOptions m;
  server::ServerOptions s;
  int64_t cache_mb = 256;
  bool mtp = false;
  std::string chat_template;
};

void serve(ServeOptions o) {
  // Signals go to one waiting thread (not a handler), which may then call Server::stop(); every
  // thread started from here on inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  auto loaded = load(o.m);
  Tokenizer tok = load_chat_tokenizer(o.m.model, o.chat_template, &o.s.chat_family);
  o.s.scheduler.session = session_options(o.m);
  o.s.scheduler.session.mtp = o.mtp;
  o.s.scheduler.cache_bytes = static_cast<size_t>(std::max<int64_t>(o.cache_mb, 0)) << 20;
  server::Server srv(*loaded.model, *loaded.backend, std::move(tok), o.s);
  const int port = srv.bind();
  std::printf("flashrt serve: %s (%s), %d slots x %lld tokens, listening on http://%s:%d\n",
              o.m.model.c_str(), loaded.model->arch->name().c_str(), o.s.scheduler.slots,
              static_cast<long long>(o.m.ctx), o.s.host.c_str(), port);
  if (!o.s.capsule_dir.empty()) std::printf("capsules: %s\n", o.s.capsule_dir.c_str());
  std::fflush(stdout);

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    srv.stop();
  });
  srv.serve();
  pthread_kill(waiter.native_handle(), SIGTERM);  // wakes the waiter if serve() ended by itself
  waiter.join();
  std::printf("flashrt serve: stopped\n");
}

}  // namespace

void register_serve(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand(
      "serve", "Serve an OpenAI-compatible HTTP API with sessions and capsules (docs/API.md)");
  add_model_options(cmd, o->m);
  cmd->add_option("--host", o->s.host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->s.port, "Port (0: any free port, printed at start)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--slots", o->s.scheduler.slots,
                  "Sequences resident at once, advancing together in each forward step (more "
                  "sessions are suspended to host memory)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--capsule-dir", o->s.capsule_dir,
                  "Keep capsules as files here (they survive a restart); default: memory only");
  cmd->add_option("--api-key", o->s.api_key, "Require 'Authorization: Bearer KEY' on /v1/*");
  cmd->add_option("--cache-mb", o->cache_mb, "Prefix-capsule cache budget in MiB (0: off)")
      ->check(CLI::Range(0, 1 << 24))
      ->capture_default_str();
  cmd->add_option("--max-sessions", o->s.scheduler.max_sessions, "Open sessions allowed")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  cmd->add_option("--prefill-chunk", o->s.scheduler.prefill_chunk,
                  "Prompt tokens per forward step, shared by the prompts being prefilled (decoding "
                  "sequences' tokens ride in the same step)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option(
         "--preempt-after", o->s.scheduler.preempt_after,
         "Steps a running sequence keeps its slot while others wait; a run preempted once is "
         "spared for 8 times as many steps (0: never preempt)")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--http-threads", o->s.http_threads, "Connections served at once")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->add_flag("--mtp", o->mtp,
                "Run the model's MTP head in every slot (about a decoder layer more per token), "
                "so requests may ask for \"speculative\": \"mtp\"");
  cmd->add_option("--chat-template", o->chat_template, kChatTemplateHelp);
  cmd->add_option("--model-name", o->s.model_name,
                  "Model id reported by /v1/models (default: the file name)");
  cmd->callback([o] { serve(*o); });
}

}  // namespace flashrt::cli
