// The native module flashrt._flashrt: models, sessions, generations and capsules (the package
// python/flashrt re-exports them). Errors become flashrt.Error / flashrt.CapsuleError with the C++
// message; nothing a Python caller does may crash the interpreter.
#include <pybind11/pybind11.h>

#include "python/handles.h"

#ifndef FLASHRT_VERSION
#define FLASHRT_VERSION "0.0.0"
#endif

namespace flashrt::python {

std::mutex& compute_lock() {
  static std::mutex m;
  return m;
}

std::string to_json_text(const py::handle& obj) {
  return py::module_::import("json")
      .attr("dumps")(obj, py::arg("ensure_ascii") = false)
      .cast<std::string>();
}

}  // namespace flashrt::python

PYBIND11_MODULE(_flashrt, m) {
  namespace py = pybind11;
  using namespace flashrt::python;
  m.doc() = "flashrt native module: models, sessions and execution-state capsules";
  m.attr("__version__") = FLASHRT_VERSION;
  // pybind11 tries translators newest first: CapsuleError (derived) before Error.
  static py::exception<flashrt::Error> error(m, "Error", PyExc_RuntimeError);
  static py::exception<CapsuleError> capsule_error(m, "CapsuleError", error.ptr());
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const CapsuleError& e) {
      PyErr_SetString(capsule_error.ptr(), e.what());
    } catch (const flashrt::Error& e) {
      PyErr_SetString(error.ptr(), e.what());
    }
  });
  bind_model(m);
  bind_capsule(m);
  bind_generation(m);
  bind_session(m);
}
