#include "core/arena.h"

#include <fmt/format.h>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/host_memory.h"

namespace flashrt {

namespace {
constexpr size_t kAlign = 256;
size_t align_up(size_t x) {
  return (x + kAlign - 1) / kAlign * kAlign;
}
}  // namespace

const char* region_kind_name(RegionKind k) {
  switch (k) {
    case RegionKind::kPositional:
      return "positional";
    case RegionKind::kFixed:
      return "fixed";
    case RegionKind::kMeta:
      return "meta";
  }
  return "?";
}

int64_t RegionSpec::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t RegionSpec::bytes() const {
  return dtype_bytes(dtype, elements());
}

size_t RegionSpec::bytes_per_row() const {
  if (kind != RegionKind::kPositional || shape.empty() || shape[0] == 0) return bytes();
  return bytes() / static_cast<size_t>(shape[0]);
}

int64_t RegionSpec::live_rows(int64_t pos) const {
  return pos > lag ? pos - lag : 0;
}

std::string RegionSpec::kind_text() const {
  if (kind == RegionKind::kPositional && lag) return fmt::format("positional-{}", lag);
  return region_kind_name(kind);
}

size_t RegionSpec::live_bytes(int64_t pos) const {
  if (kind != RegionKind::kPositional) return bytes();
  return bytes_per_row() * static_cast<size_t>(live_rows(pos));
}

void StateLayout::add(RegionSpec spec) {
  FLASHRT_CHECK(find(spec.name) < 0, "state layout: duplicate region '{}'", spec.name);
  if (spec.kind == RegionKind::kPositional) {
    FLASHRT_CHECK(!spec.shape.empty(), "state layout: positional region '{}' has no shape",
                  spec.name);
    FLASHRT_CHECK(spec.lag >= 0, "state layout: region '{}' lags {} rows", spec.name, spec.lag);
    FLASHRT_CHECK(max_ctx_ == 0 || max_ctx_ == spec.shape[0],
                  "state layout: positional region '{}' has {} rows, others {}", spec.name,
                  spec.shape[0], max_ctx_);
    max_ctx_ = spec.shape[0];
  }
  offsets_.push_back(total_);
  total_ = align_up(total_ + spec.bytes());
  regions_.push_back(std::move(spec));
}

int StateLayout::find(const std::string& name) const {
  for (size_t i = 0; i < regions_.size(); ++i)
    if (regions_[i].name == name) return static_cast<int>(i);
  return -1;
}

std::string StateLayout::describe() const {
  std::string s;
  for (const auto& r : regions_) {
    s += fmt::format("{} {} {} [{}]\n", r.name, dtype_name(r.dtype), r.kind_text(),
                     fmt::join(r.shape, ","));
  }
  return s;
}

Arena::Arena(std::shared_ptr<const StateLayout> layout, uint8_t* base,
             std::function<void(uint8_t*)> free_fn, bool on_host)
    : layout_(std::move(layout)), base_(base), free_(std::move(free_fn)), on_host_(on_host) {}

Arena::~Arena() {
  if (free_) free_(base_);
}

std::unique_ptr<Arena> Arena::host(std::shared_ptr<const StateLayout> layout) {
  const size_t n = std::max<size_t>(kAlign, layout->total_bytes());
  uint8_t* p = host_alloc(align_up(n), "slot state", /*zero=*/true);
  return std::make_unique<Arena>(
      std::move(layout), p, [](uint8_t* q) { host_free(q); }, true);
}

uint8_t* Arena::region(const std::string& name) const {
  const int i = layout_->find(name);
  FLASHRT_CHECK(i >= 0, "slot has no state region '{}'", name);
  return region(i);
}

}  // namespace flashrt
