#include "formats/tensor_source.h"

#include "core/error.h"

namespace flashrt {

const TensorInfo& TensorSource::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) fail("{}: missing tensor '{}'", describe(), name);
  return *t;
}

}  // namespace flashrt
