// What an architecture's forward pass runs on: the backend, the rows of one step (possibly of
// several sequences), the layout their slots share, and scratch memory. The engine builds it
// (engine/step_runner.h) and keeps the rest of the forward contract: storing the tokens, the LM
// head and the logits, advancing the positions.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

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

// The pairs a step completes for an MTP head (slots that carry MTP state). MTP row j of a
// sequence pairs the main model's hidden state at position j with the token at j + 1, so a step's
// row at position p completes the pair at MTP position p - 1: `rows` are the step's rows but a
// sequence's row at position 0, each at its position - 1 (a sequence with no such row is left
// out). Per MTP sequence: `main_first`, the step row whose hidden state its first pair without the
// slot's takes, and `from_slot`, whether its first pair takes the hidden state kept in the slot
// (the step continues a boundary) rather than a row of the step (it starts at position 0).
struct MtpSeq {
  int main_first = 0;
  bool from_slot = false;
};
struct MtpRows {
  StepRows rows;
  std::span<const MtpSeq> seqs;  // host, one per sequence of `rows`
};

// What one sequence's Gated DeltaNet layers took in during a step, row by row (backend memory): the
// conv input and the GDN inputs of every row, so that the conv and recurrent state after any prefix
// of the rows can be derived again exactly from the state before the step (speculative decoding's
// rollback: Architecture::replay_recurrent). Per GDN layer: qkv_in and qkv [rows, conv_dim],
// alpha and beta [rows, Hv].
struct GdnTrace {
  float* base = nullptr;
  int rows = 0;  // capacity
  int64_t conv_dim = 0, v_heads = 0;
  std::vector<int> slot;  // per layer: its index among the GDN layers, -1 for the others
  int64_t floats_per_layer() const { return rows * (2 * conv_dim + 2 * v_heads); }
  float* qkv_in(int layer) const {
    return base + slot[static_cast<size_t>(layer)] * floats_per_layer();
  }
  float* qkv(int layer) const { return qkv_in(layer) + rows * conv_dim; }
  float* alpha(int layer) const { return qkv(layer) + rows * conv_dim; }
  float* beta(int layer) const { return alpha(layer) + rows * v_heads; }
};

struct ForwardStep {
  Backend& be;
  const StepRows& rows;
  const StateLayout& layout;  // of every slot of the step
  Bump ws;                    // scratch; what the forward pass returns is taken from it
  GdnMode gdn_mode = GdnMode::kAuto;
  const MtpRows* mtp = nullptr;  // set when the slots carry MTP state
                                 // Per sequence of the step (empty: none): where to record its GDN
                                 // layers' inputs, or null.
  std::span<const GdnTrace* const> traces = {};

  int T() const { return rows.n; }
  // The byte offset of a region of the slots (an Error naming it when the layout has none).
  size_t region(const std::string& name) const;
  DType region_dtype(const std::string& name) const;
};

}  // namespace flashrt
