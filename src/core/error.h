// Errors: every failure a user can cause (bad file, bad argument, bad request) is a flashrt::Error
// with a message that names the thing and what is wrong. Nothing user-triggered may abort.
#pragma once
#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace flashrt {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace flashrt

// Checks a condition that depends on input; throws flashrt::Error with the formatted message.
#define FLASHRT_CHECK(cond, ...)               \
  do {                                         \
    if (!(cond)) ::flashrt::fail(__VA_ARGS__); \
  } while (0)
