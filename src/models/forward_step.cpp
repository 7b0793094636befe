#include "models/forward_step.h"

#include "core/error.h"

namespace flashrt {

float* Bump::take(int64_t n) {
  const size_t floats = static_cast<size_t>((n + 15) / 16 * 16);  // keep 64-byte alignment
  FLASHRT_CHECK(n >= 0 && used_ + floats <= cap_,
                "internal: a forward step needs more than its {} floats of scratch", cap_);
  float* r = base_ + used_;
  used_ += floats;
  if (peak_ && used_ > *peak_) *peak_ = used_;
  return r;
}

size_t ForwardStep::region(const std::string& name) const {
  const int i = layout.find(name);
  FLASHRT_CHECK(i >= 0, "internal: the slot has no region '{}'", name);
  return layout.offsets()[static_cast<size_t>(i)];
}

DType ForwardStep::region_dtype(const std::string& name) const {
  const int i = layout.find(name);
  FLASHRT_CHECK(i >= 0, "internal: the slot has no region '{}'", name);
  return layout.regions()[static_cast<size_t>(i)].dtype;
}

}  // namespace flashrt
