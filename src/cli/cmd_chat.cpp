// flashrt chat: an interactive conversation in the terminal. The session keeps its state between
// turns, so each turn prefills only the new tokens; Ctrl-C stops an answer, /reset and /exit.
#include <editline/readline.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "cli/common.h"
#include "core/error.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/stream_decoder.h"

namespace flashrt::cli {

namespace {

std::atomic<bool> g_generating{false};
std::atomic<bool> g_interrupted{false};

void on_sigint(int) {
  if (g_generating.load()) {
    g_interrupted.store(true);
    return;
  }
  const char nl = '\n';
  (void)!::write(STDOUT_FILENO, &nl, 1);
  std::_Exit(130);
}

struct ChatCliOptions {
  ModelOptions m;
  SamplingOptions sampling;
  std::string system, chat_template;
  bool no_think = false;
  int n = 1024;
};

// One line of input: readline with editing and history on a terminal, plain getline otherwise.
bool read_line(bool tty, std::string* out) {
  if (tty) {
    char* line = readline("> ");
    if (!line) return false;
    *out = line;
    if (!out->empty()) add_history(line);
    std::free(line);
    return true;
  }
  return static_cast<bool>(std::getline(std::cin, *out));
}

void chat(const ChatCliOptions& o) {
  auto loaded = load(o.m);
  const Model& model = *loaded.model;
  ChatOptions copt;
  const Tokenizer tok = load_chat_tokenizer(o.m.model, o.chat_template, &copt.family_override);
  Session s(model, *loaded.backend, session_options(o.m));
  s.seed(seed_of(o.sampling));
  const SamplerParams params = sampler_params(o.sampling);
  copt.enable_thinking = !o.no_think;
  std::vector<int32_t> stops = tok.stop_ids();
  stops.insert(stops.end(), model.cfg.eos_ids.begin(), model.cfg.eos_ids.end());

  std::vector<ChatMessage> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system, ""});
  tok.render_chat(std::vector<ChatMessage>{{"user", "check", ""}},
                  copt);  // template errors up front

  const bool tty = ::isatty(STDIN_FILENO);
  std::signal(SIGINT, on_sigint);
  if (tty)
    std::printf(
        "flashrt chat — %s. /reset clears the conversation, /exit quits, Ctrl-C stops an answer.\n",
        model.path.c_str());
  std::string line;
  while (read_line(tty, &line)) {
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      messages.resize(o.system.empty() ? 0 : 1);
      s.reset();
      std::printf("(conversation cleared)\n");
      continue;
    }
    if (line.empty()) continue;
    messages.push_back({"user", line, ""});
    const auto ids = tok.encode(tok.render_chat(messages, copt));
    // Feed only what the session does not hold yet; start over if the history was rewritten.
    const auto held = s.tokens();
    if (held.size() <= ids.size() && std::equal(held.begin(), held.end(), ids.begin())) {
      s.append(std::span<const int32_t>(ids).subspan(held.size()));
    } else {
      s.reset();
      s.append(ids);
    }
    StreamDecoder dec(tok, /*skip_special=*/true);
    std::vector<int32_t> answer;
    g_interrupted = false;
    g_generating = true;
    const auto r = s.generate(o.n, params, stops, [&](int32_t id) {
      answer.push_back(id);
      std::fputs(dec.push(id).c_str(), stdout);
      std::fflush(stdout);
      return !g_interrupted.load();
    });
    g_generating = false;
    std::fputs(dec.flush().c_str(), stdout);
    if (r.finish == FinishReason::kCancelled) std::printf(" [interrupted]");
    if (r.finish == FinishReason::kContextFull) std::printf(" [context full: /reset to continue]");
    std::printf("\n");
    if (!answer.empty() && std::find(stops.begin(), stops.end(), answer.back()) != stops.end())
      answer.pop_back();
    std::string text = tok.decode(answer, /*skip_special=*/true);
    ChatMessage reply{"assistant", text, ""};
    if (const auto end = text.find("</think>"); end != std::string::npos) {  // keep reasoning apart
      std::string think = text.substr(0, end);
      if (think.starts_with("<think>")) think.erase(0, 7);
      reply.reasoning_content = think;
      reply.content = text.substr(end + 8);
    }
    messages.push_back(reply);
  }
}

}  // namespace

void register_chat(CLI::App& app) {
  auto o = std::make_shared<ChatCliOptions>();
  auto* cmd = app.add_subcommand("chat", "Chat with a model in the terminal");
  add_model_options(cmd, o->m);
  add_sampling_options(cmd, o->sampling);
  cmd->add_option("--system", o->system, "System prompt");
  cmd->add_option("--chat-template", o->chat_template, kChatTemplateHelp);
  cmd->add_flag("--no-think", o->no_think, "Ask thinking models to answer without thinking");
  cmd->add_option("-n,--n-predict", o->n, "Maximum tokens per answer")->capture_default_str();
  cmd->callback([o] { chat(*o); });
}

}  // namespace flashrt::cli
