// The registry: every architecture flashrt runs, one line each. FLASHRT_ARCH(x) names the
// architecture defined in models/x.cpp (its `const Architecture& x_architecture()`).
#include "models/model.h"

namespace flashrt {

#define FLASHRT_ARCHITECTURES(FLASHRT_ARCH) \
  FLASHRT_ARCH(qwen3)                       \
  FLASHRT_ARCH(qwen3_5)

#define FLASHRT_DECLARE(x) const Architecture& x##_architecture();
FLASHRT_ARCHITECTURES(FLASHRT_DECLARE)
#undef FLASHRT_DECLARE

std::vector<const Architecture*> all_architectures() {
#define FLASHRT_LIST(x) &x##_architecture(),
  return {FLASHRT_ARCHITECTURES(FLASHRT_LIST)};
#undef FLASHRT_LIST
}

const Architecture* find_architecture(const std::string& name) {
  for (const auto* a : all_architectures())
    if (a->name() == name) return a;
  return nullptr;
}

const Architecture* find_architecture_by_hf_type(const std::string& model_type) {
  for (const auto* a : all_architectures())
    for (const auto& t : a->hf_model_types())
      if (t == model_type) return a;
  return nullptr;
}

const Architecture* find_architecture_by_gguf_name(const std::string& name) {
  for (const auto* a : all_architectures())
    if (a->gguf_name() == name) return a;
  return nullptr;
}

}  // namespace flashrt
