#include "server/api_error.h"

namespace flashrt::server {

std::string ApiError::default_type(int status) {
  if (status == 401) return "authentication_error";
  if (status == 403) return "permission_error";
  if (status == 404) return "not_found_error";
  if (status == 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

nlohmann::json ApiError::to_json() const {
  nlohmann::json e = {{"message", what()}, {"type", type_}, {"param", nullptr}, {"code", nullptr}};
  if (!param_.empty()) e["param"] = param_;
  if (!code_.empty()) e["code"] = code_;
  return {{"error", e}};
}

int http_status(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalid:
      return 400;
    case ErrorKind::kNotFound:
      return 404;
    case ErrorKind::kLimit:
      return 429;
    case ErrorKind::kUnavailable:
      return 503;
    case ErrorKind::kInternal:
      return 500;
  }
  return 500;
}

nlohmann::json error_body(const std::exception& e, int* status) {
  if (const auto* api = dynamic_cast<const ApiError*>(&e)) {
    *status = api->status();
    return api->to_json();
  }
  if (const auto* x = dynamic_cast<const EngineError*>(&e)) {
    *status = http_status(x->kind());
    return ApiError(*status, x->what(), x->param(), x->code()).to_json();
  }
  if (dynamic_cast<const Error*>(&e)) {
    *status = 400;
    return ApiError(400, e.what()).to_json();
  }
  *status = 500;
  return ApiError(500, std::string("internal error: ") + e.what()).to_json();
}

}  // namespace flashrt::server
