#include "engine/errors.h"

namespace flashrt {

ErrorInfo ErrorInfo::from(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const EngineError& x) {
    return {x.kind(), x.what(), x.param(), x.code()};
  } catch (const Error& x) {
    return {ErrorKind::kInvalid, x.what(), "", ""};
  } catch (const std::exception& x) {
    return {ErrorKind::kInternal, std::string("internal error: ") + x.what(), "", ""};
  } catch (...) {
    return {ErrorKind::kInternal, "internal error", "", ""};
  }
}

}  // namespace flashrt
