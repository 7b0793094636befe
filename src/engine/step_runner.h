// Forward steps over the rows of one or more sequences, and the forward contract that every
// architecture shares, kept here once so that no architecture can forget part of it. A step feeds
// each of its sequences' tokens at the sequence's position; afterwards each sequence's tokens are
// in its slot's "tokens" region, its state has advanced over them, its "meta.pos" is past them and
// its "meta.logits" holds the logits of its last row (every row's logits are also in all_logits
// when asked for). The architecture's forward() only runs the layers (models/model.h).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backends/backend.h"
#include "core/arena.h"
#include "models/model.h"

namespace flashrt {

// One sequence's part of a step.
struct StepInput {
  Arena* slot;                   // every slot of one step has the runner's layout
  std::span<const int32_t> ids;  // the tokens it feeds, at least one
  int64_t pos;                   // the slot's position (the host's mirror of its meta.pos)
  // Optional outputs of this sequence's rows (backend memory), for speculative verification:
  // every row's logits [ids, vocab] and final hidden state [ids, hidden], and its GDN layers'
  // inputs (a trace of at least ids rows, for Architecture::replay_recurrent).
  float* row_logits = nullptr;
  float* row_hidden = nullptr;
  const GdnTrace* trace = nullptr;
};

class StepRunner {
 public:
  // Steps of up to max_rows rows from up to max_seqs sequences, on slots of `layout`.
  StepRunner(const Model& m, Backend& be, std::shared_ptr<const StateLayout> layout, int max_rows,
             int max_seqs = 1);

  // Runs one step (every sequence in a different slot). all_logits (backend memory,
  // [rows, vocab]) receives every row's logits when given. With a graph_key the backend may record
  // the step on its first calls for that key and replay it afterwards: every call with that key
  // must come through this runner (the recording holds its arrays' and scratch addresses) with the
  // same shape (rows per sequence, all_logits or not); the slots may differ.
  void run(std::span<const StepInput> seqs, float* all_logits = nullptr,
           GdnMode mode = GdnMode::kAuto, const void* graph_key = nullptr);
  // The recurrent and conv state of `slot` (back at its values before the step `trace` recorded,
  // which started at position `pos`) advanced again over that step's first `rows` rows.
  void run_replay(Arena* slot, int rows, int64_t pos, const GdnTrace& trace);

  // A step of the MTP layer alone (slots that carry MTP state): `ids` at MTP positions from
  // `mtp_pos` on, paired with the hidden states h_in [ids, hidden] (backend memory). Leaves each
  // row's logits in `logits` [ids, vocab] and its MTP hidden state in `hidden` [ids, hidden]
  // (both backend memory). Writes the MTP KV rows there, which lie past the slot's live rows:
  // the slot's boundary is unchanged. With `vocab` > 0 only the first `vocab` tokens' logits
  // ([ids, vocab]: the LM head's first rows).
  void run_mtp(Arena* slot, std::span<const int32_t> ids, int64_t mtp_pos, const float* h_in,
               float* logits, float* hidden, int64_t vocab = 0);
  bool runs_mtp() const { return mtp_; }

  int max_rows() const { return max_rows_; }
  int max_seqs() const { return max_seqs_; }
  size_t scratch_floats() const { return scratch_floats_; }

 private:
  // The contract: tokens stored, the architecture's layers, LM head and logits, positions.
  void forward(Backend& be, const StepRows& rows, const MtpRows* mtp, float* scratch, size_t floats,
               size_t* peak, float* all_logits, GdnMode mode,
               std::span<const StepInput> outs = {}) const;
  // One sequence's rows [0, n) at positions from `pos`, staged and copied (run_mtp, run_replay).
  StepRows one_seq_rows(Arena* slot, std::span<const int32_t> ids, int n, int64_t pos);
  void mtp_forward(Backend& be, const StepRows& rows, const float* h_in, float* scratch,
                   size_t floats, size_t* peak, float* logits, float* hidden, int64_t vocab) const;

  const Model& m_;
  Backend& be_;
  std::shared_ptr<const StateLayout> layout_;
  int max_rows_, max_seqs_;
  size_t tokens_ = 0, pos_ = 0, logits_ = 0;  // the standard regions' offsets
  bool mtp_ = false;                          // the slots carry MTP state
  size_t scratch_floats_ = 0;
  // The step's arrays in backend memory, and their host staging: positions i64, slot bases, ids
  // i32, packed for each step's shape, then the same for the MTP rows. One copy per step.
  std::shared_ptr<uint8_t> table_;
  std::vector<uint8_t> staging_;
  std::vector<SeqRows> seqs_, mtp_seqs_;
  std::vector<MtpSeq> mtp_info_;
};

}  // namespace flashrt
