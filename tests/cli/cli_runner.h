// Runs the built `flashrt` command and captures its output, for end-to-end CLI tests.
#pragma once
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace flashrt::testing {

struct CommandResult {
  int status = -1;
  std::string out;  // stdout and stderr together
};

inline std::string flashrt_binary() {
  return std::string(FLASHRT_BINARY_DIR) + "/flashrt";
}

inline CommandResult run_flashrt(const std::string& args) {
  CommandResult r;
  const std::string cmd = flashrt_binary() + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

inline std::string join_ids(const std::vector<int32_t>& ids, char sep) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i)
    s += (i ? std::string(1, sep) : "") + std::to_string(ids[i]);
  return s;
}

}  // namespace flashrt::testing
