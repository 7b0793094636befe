// Errors the engine raises for what a caller asked and cannot get (no such session, too many
// sessions, a prompt that does not fit, shutting down), with a kind that says which. The engine
// knows nothing of HTTP: the server maps kinds to status codes (server/api_error.cpp). A plain
// flashrt::Error from deeper down (bad ids, a capsule that does not fit) is an invalid request too.
#pragma once
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include "core/error.h"

namespace flashrt {

enum class ErrorKind : uint8_t {
  kInvalid,      // the request cannot be served as asked
  kNotFound,     // it names something that does not exist
  kLimit,        // a limit is reached (sessions)
  kUnavailable,  // the engine is shutting down
  kInternal,     // a bug
};

class EngineError : public Error {
 public:
  EngineError(ErrorKind kind, std::string message, std::string param = "", std::string code = "")
      : Error(std::move(message)), kind_(kind), param_(std::move(param)), code_(std::move(code)) {}
  ErrorKind kind() const { return kind_; }
  const std::string& param() const { return param_; }  // the request field at fault, if any
  const std::string& code() const { return code_; }    // a stable machine-readable name

 private:
  ErrorKind kind_;
  std::string param_, code_;
};

// An error as plain values, to hand from one thread to another: the scheduler thread turns a
// failure into this and the waiting thread throws a fresh EngineError from it, so no exception
// object (whose reference counts live in the uninstrumented C++ runtime) is shared between threads.
struct ErrorInfo {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message, param, code;
  static ErrorInfo from(std::exception_ptr e);
  [[noreturn]] void raise() const { throw EngineError(kind, message, param, code); }
};

}  // namespace flashrt
