// What an architecture's forward pass runs on: the backend, the rows of one step (possibly of
// several sequences), the layout their slots share, and scratch memory. The engine builds it
// (engine/step_runner.h) and keeps the rest of the forward contract: storing the tokens, the LM
// head and the logits, advancing the positions.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "backends/backend.h"
#include "core/arena.h"

namespace flashrt {

// A bump allocator over the step's scratch buffer. It has an end: taking more than the buffer
// holds is an internal error, never a write past it. Copies share the buffer, so a block that
// takes from a copy gives its temporaries back when it returns. Every take raises the shared
// `peak`, which is how the engine sizes the buffer: it runs the forward pass once on a backend
// that does nothing and reads the peak (a "dry run", so no block states its size twice).
class Bump {
 public:
  Bump(float* base, size_t floats, size_t* peak = nullptr)
      : base_(base), cap_(floats), peak_(peak) {}
  float* take(int64_t n);
  size_t used() const { return used_; }

 private:
  float* base_;
  size_t cap_;
  size_t used_ = 0;
  size_t* peak_;
};

struct ForwardStep {
  Backend& be;
  const StepRows& rows;
  const StateLayout& layout;  // of every slot of the step
  Bump ws;                    // scratch; what the forward pass returns is taken from it
  GdnMode gdn_mode = GdnMode::kAuto;

  int T() const { return rows.n; }
  // The byte offset of a region of the slots (an Error naming it when the layout has none).
  size_t region(const std::string& name) const;
  DType region_dtype(const std::string& name) const;
};

}  // namespace flashrt
