// Speculative decoding with exact rollback. A drafter proposes k tokens after the session's
// boundary; one target step feeds [pending token, k drafts] and yields every row's logits; the
// longest agreeing prefix is accepted plus one token of the target's own (the correction, or a
// bonus token when every draft agreed), so one weight read of the target yields up to k+1 tokens.
//
// Exactness. A verify step evaluates the Gated DeltaNet token by token (GdnMode::kRecurrent), and
// every CPU kernel gives each row the bits it gets alone, so the accepted rows are the bits of
// plain decoding whatever k is and wherever the 64-token chunk grid falls (chunked GDN is never
// used by a verify step). Going back to the accepted prefix:
//   - slots with only positional state (dense attention): the rows already written for the
//     accepted tokens are the ones plain decoding writes; the position moves back and the pending
//     logits become the accepted row's (Session::truncate). No copy.
//   - slots with recurrent/conv state (GDN, an MTP head's hidden state): the fixed and meta regions
//     are saved before the step (Checkpoint, one buffer allocated once) and the step records each
//     GDN layer's inputs row by row (GdnTrace); on a rejection the saved state comes back and the
//     conv and recurrence advance again over the kept rows from the trace (Session::replay: no
//     matmul, the KV rows are already the step's), which is the state the step had after them:
//     the conv keeps inputs, and the recurrence runs token by token either way.
// Either way the slot afterwards holds the same live bytes as one where only the accepted tokens
// were fed, so capsules taken between steps are ordinary boundaries.
//
// Sampling. At temperature 0 a draft is accepted when it is the target's pick (the same pick
// Session::generate makes, logit bias and penalties included). At temperature > 0 speculative
// sampling: draft x drawn from q is accepted with probability min(1, p(x)/q(x)), else a token is
// drawn from the residual max(0, p - q) (normalised); drafters without a distribution (n-gram)
// have q one-hot. The output is distributed exactly as the target's sampler, and a seeded run
// repeats: the target's RNG lives in the slot, and k follows a fixed cost model at temperature > 0.
// A capsule holds the target's RNG but not the decoder's acceptance estimate or a draft model's
// RNG, so a sampled continuation after a restore is a valid sample, not the same one.
//
// Exact on the CPU backend (every row gets the bits it gets alone); other backends are refused,
// and so is --gdn chunked (plain decoding would not use the recurrence the verify steps use).
// An exception from the caller's callback or the drafter leaves the slot at the boundary of the
// tokens emitted so far, as Session::generate does.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "engine/session.h"

namespace flashrt {

// Draft tokens for one verify step and, for speculative sampling, the distribution each was drawn
// from (empty: chosen deterministically, q one-hot).
struct Draft {
  std::vector<int32_t> tokens;
  std::vector<TokenDistribution> dists;
};

class Drafter {
 public:
  virtual ~Drafter() = default;
  virtual std::string name() const = 0;
  // Up to `k` tokens to follow `context` (every token of the target's boundary: the fed ones, then
  // the pending one). May return fewer, or none.
  virtual Draft propose(std::span<const int32_t> context, int k, const SamplerParams& p) = 0;
  // Whether proposing costs a forward pass (before anything is measured, adaptive k assumes so).
  virtual bool runs_a_model() const { return false; }
  // Takes in a prompt ahead of the first proposal (a draft model prefills it), so that work is
  // done with the target's prefill rather than in the first decode step.
  virtual void prime(std::span<const int32_t> /*context*/) {}
  // A drafter that reads the target's hidden states (MTP): at the start of a generation (the
  // target's slot is at its boundary), and after each verify step with the final hidden state
  // of the row whose logits chose the pending token (backend memory, [hidden]).
  virtual bool wants_hidden() const { return false; }
  virtual void begin() {}
  virtual void accepted_hidden(const float* /*h*/) {}
};

// Prompt lookup: the tokens that followed the latest earlier occurrence of the longest suffix of
// the context (max_ngram tokens down to min_ngram). No model; strong when the output re-quotes the
// context (code edits, tool output, RAG).
class NgramDrafter : public Drafter {
 public:
  explicit NgramDrafter(int max_ngram = 4, int min_ngram = 2)
      : max_ngram_(max_ngram), min_ngram_(min_ngram) {}
  std::string name() const override { return "ngram"; }
  Draft propose(std::span<const int32_t> context, int k, const SamplerParams& p) override;

 private:
  int max_ngram_, min_ngram_;
};

// A smaller model with the same tokenizer, in its own slot, kept in step with the target: before
// each proposal it goes back to the longest prefix it shares with the target's boundary (truncate
// or its own checkpoint) and feeds the rest. It drafts greedily at temperature 0 and samples from
// its own distribution otherwise (its own RNG, seeded from `seed`).
class DraftModelDrafter : public Drafter {
 public:
  DraftModelDrafter(const Model& draft, Backend& be, SessionOptions opt, uint64_t seed = 0);
  std::string name() const override { return "draft"; }
  Draft propose(std::span<const int32_t> context, int k, const SamplerParams& p) override;
  bool runs_a_model() const override { return true; }
  void prime(std::span<const int32_t> context) override;
  const Session& session() const { return *s_; }

 private:
  // Goes back to the longest prefix shared with `ctx` (at most all but its last token) and feeds
  // the rest: afterwards the slot holds exactly `ctx`.
  void sync(std::span<const int32_t> ctx);
  std::unique_ptr<Session> s_;
  std::unique_ptr<Checkpoint> ck_;  // at the end of the last context fed (recurrent drafts)
  std::vector<int32_t> fed_;        // the tokens in the draft's slot (host mirror)
  RngState rng_;
};

// The target's own MTP head (a session with SessionOptions::mtp): draft i pairs the previous
// token with a hidden state (the target's for the first, the head's own after that) in one step
// of the MTP layer and its LM head, as llama.cpp's draft-mtp chains a single head. The head's KV
// rows for the drafts lie past the slot's live rows; the verify step's catch-up rewrites the ones
// it keeps, so the slot's boundary never sees them. Greedy at temperature 0, otherwise sampled
// from its own distribution with its own RNG (seeded from `seed`).
// Drafts come from the first `draft_vocab` tokens only (0: all), the LM head rows a draft step
// reads: a BPE vocabulary lists its tokens in merge order, roughly by frequency, so a prefix
// keeps most of what gets accepted while a draft step reads a fraction of the head (FR-Spec's
// frequency-ranked drafting; Qwen's 248k-token head is most of an MTP step). Exactness does not
// depend on it: the target verifies every draft.
class MtpDrafter : public Drafter {
 public:
  explicit MtpDrafter(Session& target, uint64_t seed = 0, int64_t draft_vocab = 0);
  std::string name() const override { return "mtp"; }
  Draft propose(std::span<const int32_t> context, int k, const SamplerParams& p) override;
  bool runs_a_model() const override { return true; }
  bool wants_hidden() const override { return true; }
  void begin() override { have_hidden_ = false; }
  void accepted_hidden(const float* h) override;

 private:
  Session& s_;
  // Backend memory: the hidden state the next draft pairs with, the one a draft step returns,
  // and a draft step's logits.
  std::shared_ptr<uint8_t> buf_;
  float *h_in_ = nullptr, *h_out_ = nullptr, *logits_ = nullptr;
  bool have_hidden_ = false;  // h_in_ holds the verify step's (else: the slot's mtp.hidden)
  int64_t vocab_;             // tokens a draft may be
  std::vector<float> host_logits_;
  RngState rng_;
};

struct SpecOptions {
  int draft_max = 8;     // k at most (1..16)
  bool adaptive = true;  // choose k per step from the recent acceptance; off: always draft_max
};

struct SpecStats {
  int64_t steps = 0;        // verify steps
  int64_t plain_steps = 0;  // steps without a draft (none proposed, or drafting paused)
  int64_t drafted = 0, accepted = 0;
  std::vector<int> k_history;          // k of every step (0: a plain step)
  double draft_ms = 0, verify_ms = 0;  // wall time proposing, and in verify steps
  double acceptance_rate() const {
    return drafted ? static_cast<double>(accepted) / static_cast<double>(drafted) : 0;
  }
  // Tokens per target step: accepted drafts plus the target's own token, over all steps.
  double mean_accepted_length() const {
    const int64_t n = steps + plain_steps;
    return n ? static_cast<double>(accepted + n) / static_cast<double>(n) : 0;
  }
};

// Session::generate with speculative steps: the same result contract (tokens, finish reason; the
// last token is left pending) and, at temperature 0, the same tokens.
class SpeculativeDecoder {
 public:
  SpeculativeDecoder(Session& target, Drafter& drafter, SpecOptions opt = {});
  GenerateResult generate(int max_new, const SamplerParams& p, std::span<const int32_t> stop_ids,
                          const std::function<bool(int32_t)>& on_token = nullptr,
                          OutputConstraint* constraint = nullptr);
  const SpecStats& stats() const { return stats_; }
  // Speculation under an output constraint (engine/constraint.h), or none (null): drafts are cut
  // at the first token the grammar forbids, every row's logits are masked at the state after the
  // drafts before it, and commit() advances the constraint by the tokens kept. Not owned.
  void set_constraint(OutputConstraint* c) { constraint_ = c; }

  // ---- one verify step at a time, for a caller that runs the target's steps itself (the
  // scheduler: a sequence's verify rows join the step it shares with other sequences) ----
  // Starts a generation at the session's boundary (the drafter's begin()).
  void begin();
  // The drafts of the next step (possibly none: a plain step), at most `room`; the session's
  // boundary has its token pending. Re-reads the boundary when the session moved since.
  const Draft& propose(const SamplerParams& p, int room);
  const Draft& drafts() const { return draft_; }  // the last proposal
  // Before the step: saves what a rollback needs and sets `in`'s outputs (every row's logits,
  // hidden states for an MTP drafter, the GDN trace of a recurrent target). `in` feeds the
  // pending token and the drafts (Session::step_input(propose().tokens, ...)).
  void prepare(StepInput& in);
  // After the step and Session::step_done: the tokens it yields, in order (the accepted drafts,
  // then the target's own). `step_ms` (when known) is the step's time, for adaptive k.
  const std::vector<int32_t>& accept(const SamplerParams& p, double step_ms = 0);
  // The caller emitted the first n (>= 1) of them: the slot moves to the boundary after the nth,
  // which is left pending.
  void commit(size_t n);

 private:
  int choose_k(int room, bool measured);
  void observe(int k, int accepted);

  Session& s_;
  Drafter& drafter_;
  SpecOptions opt_;
  SpecStats stats_;
  std::unique_ptr<Checkpoint> ck_;   // recurrent targets
  std::shared_ptr<uint8_t> logits_;  // backend memory: [draft_max + 1, vocab]
  std::shared_ptr<uint8_t> hidden_;  // backend memory: [rows, hidden] (a drafter that wants it)
  // A recurrent target's verify steps record their GDN inputs here, so that a rejection restores
  // the checkpoint and replays the kept rows' recurrence instead of running them again.
  std::shared_ptr<uint8_t> trace_storage_;
  GdnTrace trace_;
  std::vector<float> host_logits_;
  std::vector<double> dense_q_;   // a draft distribution over the vocabulary, for the residual
  std::vector<int32_t> context_;  // the target's boundary tokens (host mirror)
  OutputConstraint* constraint_ = nullptr;
  std::vector<float> masked_;  // a row's logits under the constraint (scratch)
  // The step in flight: its drafts, where it started, the tokens it yields, the RNG after them.
  Draft draft_;
  int64_t p0_ = 0;
  bool traced_ = false;
  std::vector<int32_t> out_;
  RngState rng_{};
  // Adaptive k: acceptance per drafted token (an exponential average), and a pause counter.
  double alpha_ = 0.6;
  int paused_ = 0;
  // Measured costs (exponential averages, ms): drafting one token, and a verify step.
  double draft_ms_per_token_ = 0, verify_ms_ = 0;
};

}  // namespace flashrt
