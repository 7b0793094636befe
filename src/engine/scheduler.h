// The scheduler: one thread that owns the backend, the slots and every sequence's state. A Backend
// and its scratch buffers are not thread-safe, so every forward pass, snapshot and restore happens
// here; other threads (the server's HTTP threads) only submit jobs and wait for or stream results.
//
// Names: a Sequence is what the scheduler serves, either an API session (long-lived, named: the
// `sess_...` objects of the server's API) or request-scoped (a completion or chat request, dropped
// when it ends). A slot is executed by an engine Session (engine/session.h), which a Sequence
// holds while it is resident. A sequence is resident in a slot or suspended as a host capsule. The
// thread serves the sequences that have work in turn, one step each per round: a step is one
// prefill chunk or one generated token, so a long prompt never stalls the others' streams. A
// sequence that needs a slot takes a free one, else suspends the least recently used idle session,
// else preempts (suspends) the run that has held its slot the longest once it has had
// `preempt_after` steps and was not preempted before (a run preempted once is spared for
// 8 x preempt_after steps more, so that more streams than slots cost about one suspend each);
// suspended sequences resume exactly where they were (capsules are whole boundaries, the sampler's
// RNG included).
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/errors.h"
#include "engine/prefix_cache.h"
#include "engine/scheduler_stats.h"
#include "engine/session.h"
#include "engine/speculative.h"
#include "engine/stop_matcher.h"
#include "engine/token_stream.h"
#include "tokenizer/stream_decoder.h"

namespace flashrt {

using Clock = std::chrono::steady_clock;

struct SchedulerOptions {
  int slots = 4;
  SessionOptions session;
  size_t cache_bytes = size_t{256} << 20;  // prefix-cache budget (0 disables it)
  // Prompt tokens per step, in all: prefill chunks share what the decoding sequences' rows leave,
  // so a long prompt is absorbed without stalling the others' tokens.
  int prefill_chunk = 256;
  int preempt_after = 32;  // steps a sequence keeps its slot before preemption
  size_t max_sessions = 1024;
};

// One run on a sequence: feed `prefill`, then generate up to `max_tokens`.
struct RunSpec {
  std::vector<int32_t> prefill;
  // Look up and fill the prefix cache (only when the sequence starts empty).
  bool use_cache = false;
  // Prefill lengths whose boundary is cached too (e.g. the end of a chat's history), besides the
  // end of the prompt; and whether the boundary after generation is cached.
  std::vector<size_t> cache_points;
  bool cache_final = false;
  int64_t max_tokens = 0;
  SamplerParams params;
  std::optional<uint64_t> seed;
  std::vector<int32_t> stop_ids;
  std::vector<std::string> stop_strings;
  // Report each sampled token's log-probability with this many alternatives (-1: none).
  int logprobs = -1;
  // Speculative decoding of this run: "" (off), "ngram" (prompt lookup) or "mtp" (the model's MTP
  // head: slots that run it, SessionOptions::mtp), at most draft_max drafts per step. The
  // sequence's verify rows join the round's step with the other sequences' rows.
  std::string speculative;
  int draft_max = 8;
  // Output constrained to a grammar (JSON schema, JSON object, GBNF) from the first generated
  // token on; stop_ids are allowed once the output is complete.
  std::shared_ptr<const ConstraintSpec> constraint;
  Clock::time_point received = Clock::now();
};

struct SessionInfo {
  std::string id;
  int64_t tokens = 0;
  std::string state;  // "resident", "suspended", "empty"
  bool busy = false;
  int64_t created = 0;  // unix seconds
};

class Scheduler {
 public:
  Scheduler(const Model& model, Backend& backend, Tokenizer tokenizer, SchedulerOptions opt);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  const Fingerprint& fingerprint() const { return fingerprint_; }
  int64_t max_ctx() const { return opt_.session.max_ctx; }

  // A completion or chat request on a fresh request-scoped sequence.
  std::shared_ptr<TokenStream> submit(RunSpec spec);
  // n continuations of one prompt (OpenAI's `n`): the prompt is fed once, its state is then forked
  // (one host capsule, restored into a slot per continuation) and the continuations decode side by
  // side in the same steps. Continuation i samples with seed + i (a random seed when none is
  // given). Returns one stream per continuation.
  std::vector<std::shared_ptr<TokenStream>> submit(RunSpec spec, int n);

  // ---- sessions (unknown ids: EngineError kNotFound) ----
  std::string create_session();
  std::shared_ptr<TokenStream> run_session(const std::string& id, RunSpec spec);
  // Cancels the session's generations and waits for them to stop (within one token). Returns the
  // number of tokens each had sampled when the interrupt arrived and when it stopped.
  struct Interrupted {
    int64_t at = 0, final = 0;
  };
  std::vector<Interrupted> interrupt(const std::string& id);
  // The session's whole state as a host capsule (blocks until queued work on it is done).
  Capsule snapshot(const std::string& id);
  // Replaces the session's state with `c` (checked against this model first). Returns its tokens.
  int64_t restore(const std::string& id, const Capsule& c);
  // A new session at the same boundary. Returns its id.
  std::string fork(const std::string& id);
  void remove(const std::string& id);
  SessionInfo info(const std::string& id);
  std::vector<SessionInfo> list();

  // Cancels every generation (server shutdown).
  void cancel_all();
  SchedulerGauges gauges() const;
  const SchedulerStats& stats() const { return stats_; }

 private:
  struct Job;
  struct Sequence;
  struct Slot {
    std::unique_ptr<Session> session;
    std::shared_ptr<Sequence> owner;
  };

  std::shared_ptr<Sequence> find(const std::string& id) const;
  void enqueue(std::shared_ptr<Job> job);
  // Runs `op` on the scheduler thread, in turn with the session's other work; `needs_state` binds
  // a slot first to a session that has never held state.
  void run_op(const std::string& id, std::function<void(Sequence&)> op, bool needs_state);
  std::shared_ptr<TokenStream> start_run(std::shared_ptr<Sequence> seq, RunSpec spec);

  void loop();
  void round();
  void finish_job(Sequence& s);  // pops the front job and reports it
  // Run jobs, in three parts around the round's step: what a sequence feeds (true: the run is
  // over), the token budget shared out, the step itself, then what the fed rows give.
  bool plan_run(Sequence& s, Job& j);
  template <class Part>
  static bool job_part(Job& j, Part&& part);
  bool start_decode(Sequence& s, Job& j);
  void spawn_forks(Sequence& s, Job& j);
  bool plan_token(Sequence& s, Job& j);
  void budget_rows(std::vector<std::shared_ptr<Sequence>>& runs);
  bool aligned_cuts() const;
  void run_step(std::vector<std::shared_ptr<Sequence>>& runs);
  bool after_step(Sequence& s, Job& j);
  // Streams a token; the reason the run ends at it ("stop", "length"), or null. The caller
  // finishes the run (finish_run) once the slot is at the boundary.
  const char* emit_token(Sequence& s, Job& j, int32_t t, std::optional<TokenLogprob> lp);
  // A speculative run's verify step: its drafts, and after the step what they gave.
  void plan_verify(Sequence& s, Job& j);
  bool after_verify(Sequence& s, Job& j, double step_ms);
  void finish_run(Sequence& s, Job& j, const char* reason);
  // The run's output constraint state (made on first use), or null for an unconstrained run.
  OutputConstraint* constraint_of(Job& j);
  void job_failed(Job& j, const ErrorInfo& e);
  void job_over(Sequence& s, Job& j);
  bool acquire_slot(const std::shared_ptr<Sequence>& s);
  void park(Slot& slot);
  void release(Sequence& s);
  Capsule snapshot_state(Sequence& s);
  void note_tokens(Sequence& s);
  void cache_boundary(std::span<const int32_t> ids, Session& ses);
  std::string new_id(const char* prefix);
  // Names `s` and lists it as an API session (EngineError kLimit when there are too many).
  // Called with mu_ held.
  std::string add_api_session(std::shared_ptr<Sequence> s);

  const Model& model_;
  Backend& be_;
  Tokenizer tok_;
  SchedulerOptions opt_;
  SchedulerStats stats_;
  Fingerprint fingerprint_;

  // ---- scheduler thread only ----
  std::vector<Slot> slots_;
  std::unique_ptr<StepRunner> runner_;             // the rounds' steps, over all slots
  std::vector<char> decode_graph_keys_;            // one recording key per decode batch size
  std::list<std::shared_ptr<Sequence>> ring_;      // sequences with work, in service order
  std::vector<std::shared_ptr<Sequence>> forked_;  // spawned in this round: join the next one
  PrefixCache cache_;
  std::shared_ptr<TokenMasker> masker_;  // the vocabulary's, made for the first constrained run
  uint64_t tick_ = 0;
  double step_ms_ = 0;  // the last step's time (adaptive k of speculative runs)

  // ---- shared ----
  mutable std::mutex mu_;  // inbox_, stop_, api_sessions_, each Sequence's live streams
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> inbox_;
  bool stop_ = false;
  std::unordered_map<std::string, std::shared_ptr<Sequence>> api_sessions_;
  std::atomic<int64_t> busy_slots_{0}, suspended_{0}, jobs_{0};
  std::atomic<int64_t> cache_bytes_{0}, cache_max_{0}, cache_entries_{0}, cache_evictions_{0};

  std::thread thread_;
};

}  // namespace flashrt
