// A session: one sequence's execution boundary, owning one slot (arena) of a model on a backend.
// append() prefills to a committed boundary; next_token()/generate() decode. Everything the next
// token depends on (position, pending logits, the sampled-but-not-yet-fed token, the RNG) lives in
// the arena, so a capsule of the arena is a complete boundary.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "capsule/capsule.h"
#include "engine/constraint.h"
#include "engine/sampler.h"
#include "engine/step_runner.h"
#include "models/model.h"

namespace flashrt {

struct SessionOptions {
  int64_t max_ctx = 4096;  // tokens of state allocated for this slot
  int max_batch = 512;     // prompt tokens per forward pass
  GdnMode gdn_mode = GdnMode::kAuto;
  // KV cache element type: F32 (exact: logits match the f32 reference) or F16 (half the memory,
  // capsule bytes and decode attention traffic at long context; llama.cpp's default).
  DType kv_dtype = DType::F32;
  // Run the model's MTP head along (its state in the slot), for MTP speculative decoding: each
  // step also advances its layer (about one decoder layer more per token).
  bool mtp = false;
};

namespace regions {
inline constexpr const char* kPending =
    "meta.pending";                              // i32 [1]: sampled token not yet fed, or -1
inline constexpr const char* kRng = "meta.rng";  // u8 [32]: the sampler's RNG state
}  // namespace regions

enum class FinishReason { kLength, kStop, kCancelled, kContextFull };
const char* finish_reason_name(FinishReason r);

struct GenerateResult {
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::kLength;
};

class Session {
 public:
  Session(const Model& model, Backend& backend, SessionOptions opt = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Model& model() const { return model_; }
  Backend& backend() const { return be_; }
  Arena& arena() { return *arena_; }
  const Arena& arena() const { return *arena_; }
  const SessionOptions& options() const { return opt_; }

  // Tokens whose state is in the slot (not counting a pending token).
  int64_t pos() const { return pos_; }
  int32_t pending() const { return pending_; }  // -1 when none
  int64_t max_ctx() const { return opt_.max_ctx; }

  // Feeds `ids` (after any pending token) in batches of max_batch. Throws on bad ids or overflow,
  // leaving the session unchanged.
  void append(std::span<const int32_t> ids);
  // Runs one forward over `ids` and returns every position's logits [ids.size(), vocab].
  std::vector<float> forward_all_logits(std::span<const int32_t> ids);
  // Logits of the last fed token.
  std::vector<float> logits() const;
  // Samples the next token from the pending logits (feeding a pending token first); the new token
  // becomes pending.
  // With `constraint`, only tokens it allows can be drawn, and the drawn one advances it.
  int32_t next_token(const SamplerParams& p, OutputConstraint* constraint = nullptr);
  // Decodes up to max_new tokens; stops after a token in `stop_ids` (included in the result), or
  // when on_token returns false.
  GenerateResult generate(int max_new, const SamplerParams& p, std::span<const int32_t> stop_ids,
                          const std::function<bool(int32_t)>& on_token = nullptr,
                          OutputConstraint* constraint = nullptr);

  // ---- steps run outside the session: the scheduler advances several sessions in one step of
  // its own StepRunner (continuous batching) ----
  // The input of a step feeding `ids` after any pending token. The fed ids are put in `buf`,
  // which must live until the step has run. Checks ids and room as append() does.
  StepInput step_input(std::span<const int32_t> ids, std::vector<int32_t>& buf) const;
  // After that step ran: the session's mirrors catch up with its slot and a fed pending token is
  // no longer pending. With `sampling` the caller samples next (sample() rewrites meta.pending);
  // otherwise meta.pending is cleared here.
  void step_done(const StepInput& in, bool sampling);
  // Samples the next token from the logits of the last fed token; it becomes pending. (next_token
  // is "feed the pending token, then sample".)
  int32_t sample(const SamplerParams& p, OutputConstraint* constraint = nullptr);

  // ---- speculative decoding (engine/speculative.h) ----
  // Feeds `ids` (after any pending token) in one step with the GDN evaluated token by token, so
  // every row gets the bits that feeding the tokens one at a time gives; every row's logits go to
  // `all_logits` (backend memory, [fed tokens, vocab]). At most max_batch tokens.
  void feed_rows(std::span<const int32_t> ids, float* all_logits);
  // Runs a step built by step_input (its outputs set: StepInput::row_logits, ...) the same way,
  // then step_done.
  void feed_rows(StepInput& in);
  // After a Checkpoint::restore to the boundary where the step `trace` recorded began (its
  // pending token is pending again): the slot moves to the boundary after that step's first
  // `rows` rows. The recurrent and conv state advance again from the trace (no matmul), the
  // positional rows are the step's, and `logits` / `hidden` (backend memory: the step's row
  // `rows` - 1) become the pending logits and the MTP head's hidden state. No token is pending.
  void replay(int rows, const GdnTrace& trace, const float* logits, const float* hidden);
  // A trace for steps of up to `rows` rows of this model, its memory in `storage` (backend).
  GdnTrace new_trace(int rows, std::shared_ptr<uint8_t>* storage) const;
  // One step of the MTP head alone (options().mtp): StepRunner::run_mtp on this slot.
  void mtp_step(std::span<const int32_t> ids, int64_t mtp_pos, const float* h_in, float* logits,
                float* hidden, int64_t vocab = 0);
  // Makes `id` the pending token (a choice made outside the session) with the RNG state it was
  // drawn with.
  void set_pending(int32_t id, const RngState& rng);
  const RngState& rng_state() const { return rng_; }
  // Whether the slot holds state besides positional rows and metadata (a recurrent or conv state):
  // then going back to an earlier boundary needs that state saved (Checkpoint); otherwise moving
  // the position back is enough (truncate).
  bool has_recurrent_state() const;
  // Moves the boundary back to `pos` tokens (at most the current position), with `logits` (backend
  // memory, [vocab]: the logits after token pos-1) as the pending logits and no pending token (null
  // leaves them stale, for a caller that feeds next). Rows before `pos` are kept; only for slots
  // without recurrent state.
  void truncate(int64_t pos, const float* logits);

  void seed(uint64_t seed);
  void reset();  // back to an empty boundary (position 0)
  // The tokens of the boundary: the fed ones, then the pending one if any.
  std::vector<int32_t> tokens() const;
  // Re-reads the host mirrors (position, pending token, RNG) after the arena was overwritten
  // (restore) or advanced by a step run outside the session.
  void sync_from_arena();

  // ---- capsules (at any committed boundary: between calls) ----
  // Ties capsules to this model's weights and this slot's layout.
  const Fingerprint& fingerprint() const { return fingerprint_; }
  Capsule snapshot(Tier tier = Tier::kHost, const std::string& path = "") const;
  // Replaces the whole state with the capsule's. Everything is checked first: on any error the
  // session is unchanged.
  void restore(const Capsule& c);
  // Throws the Error restore() would throw for `c`, without restoring; where a session option
  // would make it fit (the context size, the KV cache type), the message names it.
  void check_restorable(const Capsule& c) const;
  // Restores only the regions `only` accepts (an experiment tool: e.g. KV only).
  void restore_regions(const Capsule& c, const std::function<bool(const std::string&)>& only);
  // A new session (own slot, same model and options) at this exact boundary.
  std::unique_ptr<Session> fork() const;
  // Returns to an earlier boundary (speculative rejection, interrupts, undo): a restore.
  void rollback(const Capsule& c) { restore(c); }

 private:
  // Checks ids and room for them, then runs them in steps of max_batch. With pending_first, ids[0]
  // is the pending token, cleared once its step has run; otherwise meta.pending is left alone.
  void feed(std::span<const int32_t> ids, bool pending_first);
  void run(std::span<const int32_t> ids, float* all_logits);
  int32_t sample_pending(const SamplerParams& p, OutputConstraint* constraint);
  void set_pending(int32_t id);
  void check_feed(std::span<const int32_t> ids) const;
  // The boundary at `pos` tokens (rows before it already written), `logits` (backend memory, or
  // null: left stale) pending, no token pending: truncate and replay end this way.
  void move_boundary(int64_t pos, const float* logits);

  const Model& model_;
  Backend& be_;
  SessionOptions opt_;
  std::unique_ptr<Arena> arena_;
  std::unique_ptr<StepRunner> runner_;  // steps of this one sequence
  // Host mirrors of meta.pos, meta.pending and meta.rng: what the arena holds at every boundary,
  // so reading them costs no transfer (on a GPU each would be a stream sync).
  int64_t pos_ = 0;
  int32_t pending_ = -1;
  RngState rng_{};
  Fingerprint fingerprint_;
};

// A boundary of a session to come back to in a copy: its fixed and meta regions (recurrent and
// conv state, position, logits, pending token, RNG) copied aside in backend memory allocated once.
// Positional rows before the saved position are never rewritten by later steps, so restore()
// brings back exactly the saved boundary as long as the session did not go below it meanwhile
// (speculative decoding: save before a verify step, restore on a rejection, feed what was
// accepted).
class Checkpoint {
 public:
  explicit Checkpoint(Session& s);
  void save();
  void restore();
  int64_t pos() const { return pos_; }

 private:
  Session& s_;
  std::vector<std::pair<size_t, size_t>> spans_;  // (offset, bytes) of every non-positional region
  std::shared_ptr<uint8_t> copy_;
  int64_t pos_ = -1;
};

// Tokens of the boundary a host capsule of a session holds: its position plus its pending token
// (0 or 1).
int64_t capsule_tokens(const Capsule& c);

// The fingerprint of a slot layout of a model: architecture, hyper-parameters, the weights' hash,
// every region's name, dtype, kind and shape (positional regions without their length, so capsules
// move between slots of different context sizes) and the capsule format version.
Fingerprint capsule_fingerprint(const Model& m, const StateLayout& layout);

// The full slot layout: the model's regions plus the engine's meta regions.
std::shared_ptr<const StateLayout> session_layout(const Model& m, int64_t max_ctx,
                                                  DType kv_dtype = DType::F32, bool mtp = false);

}  // namespace flashrt
