// Picks a backend by name. The CUDA backend exists only in builds where nvcc was found.
#include "backends/backend.h"
#include "core/error.h"

namespace flashrt {

#ifdef FLASHRT_HAVE_CUDA
std::unique_ptr<Backend> make_cuda_backend();  // backends/cuda
bool cuda_device_present();
#endif

bool cuda_available() {
#ifdef FLASHRT_HAVE_CUDA
  return cuda_device_present();
#else
  return false;
#endif
}

std::unique_ptr<Backend> make_backend(const std::string& name) {
  if (name == "cpu") return make_cpu_backend();
  if (name == "cuda") {
#ifdef FLASHRT_HAVE_CUDA
    if (!cuda_device_present()) fail("no CUDA device found (use --device cpu)");
    return make_cuda_backend();
#else
    fail("this flashrt was built without CUDA (nvcc was not found at build time)");
#endif
  }
  fail("unknown device '{}' (cpu or cuda)", name);
}

}  // namespace flashrt
