// Where tests find things: the source tree (or FLASHRT_SOURCE, for test binaries run elsewhere, as
// on the GPU machine), and the shared reference fixtures (../shared next to the source tree, or the
// folder named by the environment variable FLASHRT_SHARED).
#pragma once
#include <cstdlib>
#include <string>

inline std::string source_dir() {
  const char* env = std::getenv("FLASHRT_SOURCE");
  if (env && *env) return env;
  return FLASHRT_SOURCE_DIR;
}

inline std::string shared_dir() {
  const char* env = std::getenv("FLASHRT_SHARED");
  if (env && *env) return env;
  return std::string(FLASHRT_SOURCE_DIR) + "/../shared";
}
