// The state arena: a sequence's whole live execution state as a closed list of named regions, laid
// out once per slot. Nothing that affects the next token lives outside it, so copying the live
// bytes of every region (a capsule) and copying them back reproduces the next token bit for bit.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace flashrt {

enum class RegionKind : uint8_t {
  kPositional,  // axis 0 is the token position (max_ctx long); only `pos` rows are live
  kFixed,       // constant size, always live (recurrent state, conv state)
  kMeta,        // position, pending logits, sampler state: always live
};

const char* region_kind_name(RegionKind k);

struct RegionSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  RegionKind kind;
  // Positional regions only: rows behind the position. Row j of an MTP layer's KV pairs the hidden
  // state at j with the token after it, so it is written only once that token is fed: after pos
  // tokens pos - 1 rows are live (lag 1).
  int64_t lag = 0;

  int64_t elements() const;
  int64_t live_rows(int64_t pos) const;  // positional: max(0, pos - lag)
  // "positional", "fixed", "meta"; a lagging positional region adds it ("positional-1").
  std::string kind_text() const;
  size_t bytes() const;          // the whole region
  size_t bytes_per_row() const;  // positional: bytes of one token position
  // Bytes that hold state after `pos` tokens: positional regions pos rows, the others all.
  size_t live_bytes(int64_t pos) const;
};

// The list of regions of one slot, in order. Offsets are aligned to 256 bytes (the widest vector
// loads and a CUDA-friendly alignment).
class StateLayout {
 public:
  void add(RegionSpec spec);
  const std::vector<RegionSpec>& regions() const { return regions_; }
  const std::vector<size_t>& offsets() const { return offsets_; }
  size_t total_bytes() const { return total_; }
  int64_t max_ctx() const { return max_ctx_; }
  int find(const std::string& name) const;  // -1 when absent
  // A canonical text of the layout (names, dtypes, shapes, kinds) for fingerprints and messages.
  std::string describe() const;

 private:
  std::vector<RegionSpec> regions_;
  std::vector<size_t> offsets_;
  size_t total_ = 0;
  int64_t max_ctx_ = 0;
};

// One slot: a layout and the memory that holds it. Memory may be host or device memory; the owner
// (a backend) passes a deleter. Host arenas come from Arena::host().
class Arena {
 public:
  Arena(std::shared_ptr<const StateLayout> layout, uint8_t* base,
        std::function<void(uint8_t*)> free_fn, bool on_host);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  static std::unique_ptr<Arena> host(std::shared_ptr<const StateLayout> layout);

  const StateLayout& layout() const { return *layout_; }
  std::shared_ptr<const StateLayout> layout_ptr() const { return layout_; }
  uint8_t* base() const { return base_; }
  bool on_host() const { return on_host_; }
  uint8_t* region(int i) const { return base_ + layout_->offsets()[i]; }
  uint8_t* region(const std::string& name) const;  // throws when absent
  template <class T>
  T* region_as(const std::string& name) const {
    return reinterpret_cast<T*>(region(name));
  }

 private:
  std::shared_ptr<const StateLayout> layout_;
  uint8_t* base_;
  std::function<void(uint8_t*)> free_;
  bool on_host_;
};

}  // namespace flashrt
