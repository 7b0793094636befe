// `flashrt serve` as a child process (the real binary, for restart tests): started with --port 0,
// its port read from the line it prints, stopped with SIGTERM.
#pragma once
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_runner.h"

extern char** environ;

namespace flashrt::testing {

class ServeProcess {
 public:
  explicit ServeProcess(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {flashrt_binary(), "serve", "--port", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    int fds[2];
    if (::pipe(fds) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    if (posix_spawn(&pid_, cargv[0], &fa, nullptr, cargv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    out_ = ::fdopen(fds[0], "r");
    // "flashrt serve: ... listening on http://127.0.0.1:PORT"
    char line[1024];
    while (pid_ > 0 && out_ && std::fgets(line, sizeof line, out_)) {
      log_ += line;
      const std::string l = line;
      const size_t at = l.find("listening on http://");
      if (at == std::string::npos) continue;
      port_ = std::stoi(l.substr(l.rfind(':') + 1));
      break;
    }
  }
  ~ServeProcess() { stop(); }

  int port() const { return port_; }
  const std::string& log() const { return log_; }

  // SIGTERM, then the exit status (0: a clean shutdown).
  int stop() {
    if (pid_ <= 0) return status_;
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (out_) {
      char buf[1024];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, out_)) > 0) log_.append(buf, n);
      std::fclose(out_);
      out_ = nullptr;
    }
    return status_;
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  int port_ = -1;
  int status_ = -1;
  std::string log_;
};

}  // namespace flashrt::testing
