// What the Python objects hold: a loaded model (backend, weights, tokenizer, the lock its sessions
// compute under), a session tied to it, and a capsule. Shared pointers, so a Session keeps its
// Model alive and a device-tier Capsule its backend, whatever order Python frees them in.
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backends/backend.h"
#include "capsule/capsule.h"
#include "core/error.h"
#include "engine/session.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace flashrt::python {

namespace py = pybind11;

// A capsule that cannot be read or restored: raised in Python as flashrt.CapsuleError.
class CapsuleError : public Error {
 public:
  using Error::Error;
};

struct ModelHandle {
  std::string device;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::optional<Tokenizer> tokenizer;
  std::string tokenizer_error;  // why there is none

  const Tokenizer& tok() const {
    if (!tokenizer) throw Error(tokenizer_error);
    return *tokenizer;
  }
};

struct SessionHandle {
  std::shared_ptr<ModelHandle> model;
  std::unique_ptr<Session> session;
  uint64_t seed = 0;  // what reset() seeds the RNG with again
};

struct CapsuleHandle {
  Capsule capsule;
  std::shared_ptr<ModelHandle> owner;  // a device-tier capsule's backend memory
  int64_t tokens = 0;                  // pos plus the pending token
};

// Sessions share the process-wide CPU thread pool (and a backend's stream), so the engine runs one
// call at a time under this lock; any Python thread may drive any session.
std::mutex& compute_lock();

// Runs f with the GIL released and the compute lock held: every call into the engine.
template <class F>
auto compute(ModelHandle&, F&& f) {
  py::gil_scoped_release nogil;
  std::lock_guard<std::mutex> lock(compute_lock());
  return f();
}

// Python's json.dumps of any JSON-able object (keys in their order), for the engine's JSON input.
std::string to_json_text(const py::handle& obj);

void bind_model(py::module_& m);
void bind_session(py::module_& m);
void bind_generation(py::module_& m);
void bind_capsule(py::module_& m);

}  // namespace flashrt::python
