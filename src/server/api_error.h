// Errors the HTTP API reports: a status code plus OpenAI's error shape
// {"error": {"message", "type", "param", "code"}}. Anything a client sends that the server cannot
// serve becomes one of these (4xx); only the server's own failures are 5xx.
#pragma once
#include <fmt/format.h>

#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "core/error.h"
#include "engine/errors.h"

namespace flashrt::server {

class ApiError : public Error {
 public:
  ApiError(int status, std::string message, std::string param = "", std::string code = "",
           std::string type = "")
      : Error(std::move(message)),
        status_(status),
        param_(std::move(param)),
        code_(std::move(code)),
        type_(type.empty() ? default_type(status) : std::move(type)) {}

  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }
  const std::string& type() const { return type_; }

  nlohmann::json to_json() const;

 private:
  static std::string default_type(int status);
  int status_;
  std::string param_, code_, type_;
};

// The HTTP status of an engine error's kind.
int http_status(ErrorKind kind);

// 400 invalid_request_error naming the offending field.
template <class... Args>
[[noreturn]] void bad_request(const std::string& param, const std::string& code,
                              fmt::format_string<Args...> f, Args&&... args) {
  throw ApiError(400, fmt::format(f, std::forward<Args>(args)...), param, code);
}

// The error body for any exception escaping a handler: ApiError keeps its status, an EngineError
// gets its kind's (http_status), a plain flashrt::Error (a user-caused failure deeper down: bad
// ids, a capsule that does not fit) is a 400, anything else a 500.
nlohmann::json error_body(const std::exception& e, int* status);

}  // namespace flashrt::server
