#include "engine/scheduler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <random>

#include "engine/errors.h"

namespace flashrt {

namespace {

enum class Need { kNothing, kState, kSlot };
constexpr int kRepreemptFactor = 8;
enum class Where : int { kEmpty, kResident, kSuspended };

const char* where_name(Where w) {
  switch (w) {
    case Where::kResident:
      return "resident";
    case Where::kSuspended:
      return "suspended";
    default:
      return "empty";
  }
}

int64_t session_tokens(const Session& s) {
  return s.pos() + (s.pending() >= 0 ? 1 : 0);
}

int64_t unix_now() {
  return static_cast<int64_t>(std::time(nullptr));
}

}  // namespace

struct Scheduler::Sequence {
  std::string id;  // empty: request-scoped
  int slot = -1;
  std::optional<Capsule> parked;  // suspended state
  bool deleted = false;
  bool in_ring = false;
  std::deque<std::shared_ptr<Job>> queue;
  uint64_t last_used = 0;
  int turns = 0;       // steps since it got its slot
  uint64_t binds = 0;  // times it got a slot (a speculative run's decoder is bound to one)
  int64_t created = unix_now();
  // Mirrors for other threads.
  std::atomic<int64_t> tokens{0};
  std::atomic<int> where{static_cast<int>(Where::kEmpty)};
  std::atomic<int> jobs{0};
  std::vector<std::shared_ptr<TokenStream>> live;  // guarded by Scheduler::mu_
};

struct Scheduler::Job {
  std::shared_ptr<Sequence> seq;
  Need need = Need::kNothing;
  // An operation: runs once.
  std::function<void(Sequence&)> op;
  std::promise<std::optional<ErrorInfo>> done;  // an op's outcome
  // A run: prefill, then generate token by token.
  bool is_run = false;
  RunSpec spec;
  std::shared_ptr<TokenStream> stream;
  enum class Phase { kStart, kPrefill, kDecode } phase = Phase::kStart;
  // The streams of the other continuations of an n > 1 request, spawned from this run's state
  // when its prompt is in; `forked`: this run is one of those.
  std::vector<std::shared_ptr<TokenStream>> forks;
  bool forked = false;
  size_t fed = 0;
  bool from_empty = false;  // started from an empty boundary: prefill[0, k) keys the cache
  std::optional<StreamDecoder> dec;
  std::optional<StopMatcher> stop;
  RunResult result;
  Clock::time_point prefill_start, last_token;
  std::exception_ptr error;  // set when the job failed
  // This round's part in the step: feed prefill[fed, chunk_end) or the pending token (decode).
  enum class Work { kNone, kPrefill, kDecodeFeed, kSample, kVerify } work = Work::kNone;
  // A speculative run (spec.speculative): its drafter and decoder, made for the slot it holds
  // (`bound`: the Sequence::binds they were made at), remade after a suspend and resume.
  std::unique_ptr<Drafter> drafter;
  std::unique_ptr<SpeculativeDecoder> decoder;
  uint64_t bound = 0;
  std::optional<OutputConstraint> constraint;  // spec.constraint's state, from the first token
  bool preempted = false;                      // suspended once to give its slot to a waiting run
  size_t chunk_end = 0;
  std::vector<int32_t> fed_ids;  // what the step feeds (StepInput::ids points here)
  StepInput in{};
};

Scheduler::Scheduler(const Model& model, Backend& backend, Tokenizer tokenizer,
                     SchedulerOptions opt)
    : model_(model), be_(backend), tok_(std::move(tokenizer)), opt_(opt), cache_(opt.cache_bytes) {
  FLASHRT_CHECK(opt_.slots >= 1, "--slots must be at least 1 (got {})", opt_.slots);
  FLASHRT_CHECK(opt_.prefill_chunk >= 1, "the prefill chunk must be at least 1 token");
  for (int i = 0; i < opt_.slots; ++i)
    slots_.push_back(Slot{std::make_unique<Session>(model_, be_, opt_.session), nullptr});
  fingerprint_ = slots_[0].session->fingerprint();
  // Rows of a step: a token per slot, each prefilling sequence's pending token, the prompt budget
  // (which the first chunk may exceed up to the next multiple of 64: see plan_run).
  // Speculative runs feed up to 16 drafts more.
  runner_ =
      std::make_unique<StepRunner>(model_, be_, slots_[0].session->arena().layout_ptr(),
                                   std::max(opt_.prefill_chunk, 64) + 18 * opt_.slots, opt_.slots);
  decode_graph_keys_.resize(static_cast<size_t>(opt_.slots));
  cache_max_ = static_cast<int64_t>(opt_.cache_bytes);
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  const ErrorInfo gone{ErrorKind::kUnavailable, "the server is shutting down", "", "shutting_down"};
  for (auto& j : inbox_) job_failed(*j, gone);
  for (auto& s : ring_)
    for (auto& j : s->queue) job_failed(*j, gone);
}

std::string Scheduler::new_id(const char* prefix) {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  return fmt::format("{}{:016x}", prefix, rng());
}

// ---- the HTTP side ----

void Scheduler::enqueue(std::shared_ptr<Job> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_)
      throw EngineError(ErrorKind::kUnavailable, "the server is shutting down", "",
                        "shutting_down");
    ++job->seq->jobs;
    ++jobs_;
    inbox_.push_back(std::move(job));
  }
  cv_.notify_all();
}

std::shared_ptr<Scheduler::Sequence> Scheduler::find(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = api_sessions_.find(id);
  if (it == api_sessions_.end())
    throw EngineError(ErrorKind::kNotFound, fmt::format("no session '{}'", id), "session_id",
                      "session_not_found");
  return it->second;
}

std::shared_ptr<TokenStream> Scheduler::start_run(std::shared_ptr<Sequence> seq, RunSpec spec) {
  auto job = std::make_shared<Job>();
  job->seq = seq;
  job->need = Need::kSlot;
  job->is_run = true;
  job->spec = std::move(spec);
  job->stream = std::make_shared<TokenStream>();
  if (!seq->id.empty() && job->spec.max_tokens > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    seq->live.push_back(job->stream);
  }
  auto stream = job->stream;
  enqueue(std::move(job));
  return stream;
}

std::shared_ptr<TokenStream> Scheduler::submit(RunSpec spec) {
  return start_run(std::make_shared<Sequence>(), std::move(spec));
}

std::vector<std::shared_ptr<TokenStream>> Scheduler::submit(RunSpec spec, int n) {
  FLASHRT_CHECK(n >= 1, "n must be at least 1 (got {})", n);
  if (n > 1 && !spec.seed) spec.seed = std::random_device{}();
  auto job = std::make_shared<Job>();
  job->seq = std::make_shared<Sequence>();
  job->need = Need::kSlot;
  job->is_run = true;
  job->spec = std::move(spec);
  job->stream = std::make_shared<TokenStream>();
  std::vector<std::shared_ptr<TokenStream>> streams{job->stream};
  for (int i = 1; i < n; ++i) {
    job->forks.push_back(std::make_shared<TokenStream>());
    streams.push_back(job->forks.back());
  }
  enqueue(std::move(job));
  return streams;
}

std::string Scheduler::add_api_session(std::shared_ptr<Sequence> s) {
  if (api_sessions_.size() >= opt_.max_sessions)
    throw EngineError(
        ErrorKind::kLimit,
        fmt::format("too many sessions ({}): delete some first", api_sessions_.size()), "",
        "too_many_sessions");
  s->id = new_id("sess_");
  api_sessions_[s->id] = s;
  return s->id;
}

std::string Scheduler::create_session() {
  std::lock_guard<std::mutex> lock(mu_);
  return add_api_session(std::make_shared<Sequence>());
}

std::shared_ptr<TokenStream> Scheduler::run_session(const std::string& id, RunSpec spec) {
  return start_run(find(id), std::move(spec));
}

void Scheduler::run_op(const std::string& id, std::function<void(Sequence&)> op, bool needs_state) {
  auto job = std::make_shared<Job>();
  job->seq = find(id);
  job->need = needs_state ? Need::kState : Need::kNothing;
  job->op = std::move(op);
  auto done = job->done.get_future();
  enqueue(std::move(job));
  if (const auto error = done.get()) error->raise();
}

std::vector<Scheduler::Interrupted> Scheduler::interrupt(const std::string& id) {
  auto seq = find(id);
  std::vector<std::shared_ptr<TokenStream>> live;
  std::vector<Interrupted> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    live = seq->live;
  }
  for (auto& s : live) {
    out.push_back({s->generated.load(), 0});
    s->cancel();
  }
  for (size_t i = 0; i < live.size(); ++i) {
    live[i]->wait_done(std::chrono::seconds(60));
    out[i].final = live[i]->generated.load();
  }
  return out;
}

Capsule Scheduler::snapshot(const std::string& id) {
  Capsule c;
  run_op(
      id, [&](Sequence& s) { c = snapshot_state(s); }, /*needs_state=*/true);
  return c;
}

int64_t Scheduler::restore(const std::string& id, const Capsule& c) {
  if (!(c.fingerprint == fingerprint_))
    throw EngineError(ErrorKind::kInvalid,
                      fmt::format("the capsule was made by another model or state layout "
                                  "(fingerprint {}, this server's model: {})",
                                  c.fingerprint.hex(), fingerprint_.hex()),
                      "capsule", "capsule_model_mismatch");
  int64_t tokens = 0;
  run_op(
      id,
      [&](Sequence& s) {
        if (s.slot >= 0) {
          slots_[s.slot].session->restore(c);  // checks everything first
        } else {
          // Suspended or empty: checking is enough; the slot it next gets restores it.
          slots_[0].session->check_restorable(c);
          if (!s.parked) ++suspended_;
          s.parked = c;
        }
        note_tokens(s);
        tokens = s.tokens;
      },
      /*needs_state=*/false);
  return tokens;
}

std::string Scheduler::fork(const std::string& id) {
  std::string nid;
  run_op(
      id,
      [&](Sequence& s) {
        auto n = std::make_shared<Sequence>();
        n->parked = snapshot_state(s);
        n->tokens = capsule_tokens(*n->parked);
        n->where = static_cast<int>(Where::kSuspended);
        std::lock_guard<std::mutex> lock(mu_);
        nid = add_api_session(n);
        ++suspended_;
      },
      /*needs_state=*/true);
  return nid;
}

void Scheduler::remove(const std::string& id) {
  auto seq = find(id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : seq->live) s->cancel();
  }
  run_op(
      id,
      [&](Sequence& s) {
        s.deleted = true;
        release(s);
        if (s.parked) --suspended_;
        s.parked.reset();
        std::lock_guard<std::mutex> lock(mu_);
        api_sessions_.erase(s.id);
      },
      /*needs_state=*/false);
}

SessionInfo Scheduler::info(const std::string& id) {
  auto s = find(id);
  return SessionInfo{s->id, s->tokens.load(), where_name(static_cast<Where>(s->where.load())),
                     s->jobs.load() > 0, s->created};
}

std::vector<SessionInfo> Scheduler::list() {
  std::vector<SessionInfo> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, s] : api_sessions_)
    out.push_back(SessionInfo{id, s->tokens.load(), where_name(static_cast<Where>(s->where.load())),
                              s->jobs.load() > 0, s->created});
  std::sort(out.begin(), out.end(),
            [](const SessionInfo& a, const SessionInfo& b) { return a.created < b.created; });
  return out;
}

void Scheduler::cancel_all() {
  // Request-scoped runs are not listed anywhere but their streams: the HTTP threads cancel those
  // when the server stops. Sessions' generations are cancelled here.
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, s] : api_sessions_)
    for (auto& st : s->live) st->cancel();
}

SchedulerGauges Scheduler::gauges() const {
  SchedulerGauges g;
  g.slots = opt_.slots;
  g.slots_busy = busy_slots_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    g.sessions = static_cast<int64_t>(api_sessions_.size());
  }
  g.sessions_suspended = suspended_;
  g.queued_jobs = jobs_;
  g.cache_bytes = cache_bytes_;
  g.cache_max_bytes = cache_max_;
  g.cache_entries = cache_entries_;
  g.cache_evictions = cache_evictions_;
  return g;
}

// ---- the scheduler thread ----

void Scheduler::loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !inbox_.empty() || !ring_.empty(); });
      if (stop_) return;
      for (auto& j : inbox_) {
        auto& s = j->seq;
        s->queue.push_back(j);
        if (!s->in_ring) {
          s->in_ring = true;
          ring_.push_back(s);
        }
      }
      inbox_.clear();
    }
    round();
  }
}

// Runs one part of a run job (true: the run is over); an exception fails the job, which is then
// over too.
template <class Part>
bool Scheduler::job_part(Job& j, Part&& part) {
  try {
    return part();
  } catch (...) {
    j.error = std::current_exception();
    return true;
  }
}

// A round: every sequence with work gets its turn, and all the rows they feed (each decoding
// sequence's next token, prefill chunks within the step's token budget) go through one forward
// step. Then each sequence samples from its own logits with its own parameters and RNG.
void Scheduler::round() {
  ++tick_;
  // 1. In service order: deleted sessions, slots for those that need one (which may suspend or
  //    preempt others: nothing is planned yet), operations (snapshot, restore, fork, ...).
  for (auto& sp : ring_) {
    Sequence& s = *sp;
    if (s.queue.empty()) continue;
    auto job = s.queue.front();
    bool done = false;
    try {
      if (s.deleted)
        throw EngineError(ErrorKind::kNotFound, fmt::format("session '{}' was deleted", s.id),
                          "session_id", "session_not_found");
      const bool bind =
          s.slot < 0 && (job->need == Need::kSlot || (job->need == Need::kState && !s.parked));
      if (bind && s.id.empty() && job->is_run && job->stream->cancelled()) {
        // A request that was cancelled while it waited ends without taking (or preempting) a
        // slot; its suspended state, if any, is dropped with it.
        if (s.parked) --suspended_;
        s.parked.reset();
        job->result.finish_reason = "cancelled";
        if (job->spec.max_tokens > 0) {
          ++stats_.generations;
          ++stats_.cancelled;
        }
        finish_job(s);
        continue;
      }
      if (bind && !acquire_slot(sp)) continue;  // waits for a slot
      if (!job->is_run) {
        job->op(s);
        done = true;
      }
    } catch (...) {
      job->error = std::current_exception();
      done = true;
    }
    if (done) finish_job(s);
  }
  // 2. What each resident run feeds in this round's step.
  std::vector<std::shared_ptr<Sequence>> runs;
  for (auto& sp : ring_) {
    Sequence& s = *sp;
    if (s.queue.empty() || s.slot < 0 || !s.queue.front()->is_run) continue;
    Job& j = *s.queue.front();
    if (job_part(j, [&] { return plan_run(s, j); }))
      finish_job(s);
    else if (j.work != Job::Work::kNone)
      runs.push_back(sp);
  }

  // 3. One step over every row, then each sequence's part of the result.
  budget_rows(runs);
  run_step(runs);
  for (auto& sp : runs) {
    Sequence& s = *sp;
    Job& j = *s.queue.front();
    const bool done = job_part(j, [&] { return after_step(s, j); });
    j.work = Job::Work::kNone;
    if (done) finish_job(s);
  }

  // 4. Sequences without work leave the ring; request-scoped ones give their slot back. Forks
  //    spawned in this round join it for the next.
  for (auto it = ring_.begin(); it != ring_.end();) {
    Sequence& s = **it;
    if (s.slot >= 0) ++s.turns;
    if (s.queue.empty()) {
      s.in_ring = false;
      s.last_used = tick_;
      if (s.id.empty()) {  // a request-scoped sequence is finished with its state
        release(s);
        if (s.parked) --suspended_;
        s.parked.reset();
      }
      it = ring_.erase(it);
    } else {
      ++it;
    }
  }
  ring_.insert(ring_.end(), forked_.begin(), forked_.end());
  forked_.clear();
}

void Scheduler::finish_job(Sequence& s) {
  auto job = s.queue.front();
  s.queue.pop_front();
  job_over(s, *job);
}

// Whether prefill cuts must fall on absolute multiples of 64: whenever the backend may evaluate
// the Gated DeltaNet in chunks (its bits then depend on where chunks start), not under the
// recurrence, which is exact at every boundary.
bool Scheduler::aligned_cuts() const {
  return opt_.session.gdn_mode != GdnMode::kRecurrent;
}

// Gives the prefill chunks what is left of the step's token budget after the decode rows, in
// service order; a chunk that gets nothing waits for the next round.
void Scheduler::budget_rows(std::vector<std::shared_ptr<Sequence>>& runs) {
  int64_t left = opt_.prefill_chunk;
  bool first_chunk = true;
  for (auto& sp : runs) {
    Job& j = *sp->queue.front();
    if (j.work != Job::Work::kPrefill) continue;
    Session& ses = *slots_[sp->slot].session;
    const size_t begin = j.fed;
    // The first chunk in service order gets its whole plan (every round makes progress); the
    // others what the budget leaves.
    size_t end = first_chunk ? j.chunk_end
                             : std::min(j.chunk_end,
                                        begin + static_cast<size_t>(std::max<int64_t>(left, 0)));
    first_chunk = false;
    // A chunked Gated DeltaNet is exact at absolute multiples of 64: a chunk the budget cuts
    // short ends on one, as the plan's own cuts do but at the prompt's end and at cache points
    // (which depend on the run alone), so a sequence's bits do not depend on what shared its
    // steps.
    if (aligned_cuts() && end < j.chunk_end) {
      const int64_t first = session_tokens(ses);
      const int64_t stop = (first + static_cast<int64_t>(end - begin)) / 64 * 64;
      end = stop > first ? begin + static_cast<size_t>(stop - first) : begin;
    }
    if (end <= begin) {
      j.work = Job::Work::kNone;  // no room this round
      continue;
    }
    j.chunk_end = end;
    left -= static_cast<int64_t>(end - begin);
  }
  std::erase_if(runs, [](const auto& sp) { return sp->queue.front()->work == Job::Work::kNone; });
}

void Scheduler::run_step(std::vector<std::shared_ptr<Sequence>>& runs) {
  std::vector<StepInput> in;
  std::vector<Sequence*> fed;
  for (auto& sp : runs) {
    Job& j = *sp->queue.front();
    if (j.work == Job::Work::kSample) continue;  // its logits are there already
    Session& ses = *slots_[sp->slot].session;
    const std::span<const int32_t> prefill(j.spec.prefill);
    try {
      if (j.work == Job::Work::kVerify) {  // the pending token and the drafts
        j.in = ses.step_input(j.decoder->drafts().tokens, j.fed_ids);
        j.decoder->prepare(j.in);
      } else {
        j.in = j.work == Job::Work::kPrefill
                   ? ses.step_input(prefill.subspan(j.fed, j.chunk_end - j.fed), j.fed_ids)
                   : ses.step_input({}, j.fed_ids);
      }
    } catch (...) {
      j.error = std::current_exception();
      j.work = Job::Work::kNone;
      continue;
    }
    in.push_back(j.in);
    fed.push_back(sp.get());
  }
  // Finished or failed while preparing: out of this round.
  std::erase_if(runs, [](const auto& sp) {
    const Job& j = *sp->queue.front();
    return j.work == Job::Work::kNone && !j.error;
  });
  if (in.empty()) return;
  bool decode_only = true;
  for (const StepInput& x : in) decode_only = decode_only && x.ids.size() == 1 && !x.row_logits;
  // Decode steps have one shape per batch size: a GPU records each once and replays it on
  // whichever slots the step then has.
  const void* key = decode_only ? &decode_graph_keys_[in.size() - 1] : nullptr;
  const auto t0 = Clock::now();
  try {
    runner_->run(in, nullptr, opt_.session.gdn_mode, key);
    step_ms_ = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    ++stats_.steps;
    stats_.step_sequences += in.size();
    for (const StepInput& x : in) stats_.step_rows += x.ids.size();
  } catch (...) {
    for (Sequence* s : fed) s->queue.front()->error = std::current_exception();
  }
}

bool Scheduler::plan_run(Sequence& s, Job& j) {
  Session& ses = *slots_[s.slot].session;
  RunSpec& sp = j.spec;
  const std::span<const int32_t> prefill(sp.prefill);
  if (j.stream->cancelled() && (s.id.empty() || j.phase == Job::Phase::kDecode)) {
    finish_run(s, j, "cancelled");
    return true;
  }
  if (j.phase == Job::Phase::kStart) {
    const int64_t held = session_tokens(ses);
    if (held + static_cast<int64_t>(prefill.size()) > ses.max_ctx())
      throw EngineError(
          ErrorKind::kInvalid,
          fmt::format("{} prompt tokens{} exceed the context size {}", prefill.size(),
                      held ? fmt::format(" after the session's {}", held) : "", ses.max_ctx()),
          "prompt", "context_length_exceeded");
    j.result.prompt_tokens = held + static_cast<int64_t>(prefill.size());
    stats_.prompt_tokens += prefill.size();
    if (sp.use_cache && held == 0 && !prefill.empty()) {
      j.from_empty = true;
      if (auto hit = cache_.lookup(prefill)) {
        ses.restore(hit->capsule);
        j.fed = hit->tokens;
        j.result.cached_tokens = static_cast<int64_t>(hit->tokens);
        ++stats_.cache_hits;
        stats_.cache_tokens_reused += hit->tokens;
      } else {
        ++stats_.cache_misses;
      }
    }
    if (sp.seed)
      ses.seed(*sp.seed);
    else if (j.result.cached_tokens > 0)
      ses.seed(0);  // as an empty session starts: a hit must not inherit another request's RNG
    j.phase = Job::Phase::kPrefill;
    j.prefill_start = Clock::now();
  }
  if (j.phase == Job::Phase::kPrefill) {
    if (j.fed < prefill.size()) {
      // The next fixed cut: the prompt's end or the next cache point (its boundary is cached).
      size_t limit = prefill.size();
      for (size_t cp : sp.cache_points)
        if (cp > j.fed && cp < limit) limit = cp;
      size_t end = std::min(limit, j.fed + static_cast<size_t>(opt_.prefill_chunk));
      if (end < limit && aligned_cuts()) {
        // Other cuts fall on absolute multiples of 64 (see budget_rows): the next one at or
        // before the chunk's end, else the first after its start.
        const int64_t first = session_tokens(ses);
        int64_t stop = (first + static_cast<int64_t>(end - j.fed)) / 64 * 64;
        if (stop <= first) stop = (first / 64 + 1) * 64;
        end = std::min(limit, j.fed + static_cast<size_t>(stop - first));
      }
      j.work = Job::Work::kPrefill;
      j.chunk_end = end;
      return false;
    }
    if (start_decode(s, j)) return true;
  }
  return plan_token(s, j);
}

// The prompt is in: decoding starts (or the run ends, when it generates nothing).
bool Scheduler::start_decode(Sequence& s, Job& j) {
  if (!j.forked)
    stats_.prefill.observe(std::chrono::duration<double>(Clock::now() - j.prefill_start).count());
  j.phase = Job::Phase::kDecode;
  if (!j.forks.empty()) spawn_forks(s, j);
  if (j.spec.max_tokens <= 0) {
    finish_run(s, j, "length");
    return true;
  }
  j.dec.emplace(tok_, /*skip_special=*/true);
  j.stop.emplace(j.spec.stop_strings);
  return false;
}

// The other continuations of an n > 1 request: each a request-scoped sequence parked at this
// boundary (they share one capsule) with its own seed and stream. A continuation restores the
// capsule when it gets a slot, so it decodes from exactly the state this run samples from.
void Scheduler::spawn_forks(Sequence& s, Job& j) {
  const Capsule at = slots_[s.slot].session->snapshot(Tier::kHost);
  std::vector<std::shared_ptr<Sequence>> made;  // all built before any stream moves
  for (size_t i = 0; i < j.forks.size(); ++i) {
    auto seq = std::make_shared<Sequence>();
    seq->parked = at;
    seq->tokens = capsule_tokens(at);
    seq->where = static_cast<int>(Where::kSuspended);
    auto job = std::make_shared<Job>();
    job->seq = seq;
    job->need = Need::kSlot;
    job->is_run = true;
    job->forked = true;
    job->spec = j.spec;
    job->spec.prefill.clear();
    job->spec.cache_points.clear();
    job->spec.use_cache = job->spec.cache_final = false;
    job->spec.seed = *j.spec.seed + i + 1;  // submit() gives every n > 1 request a seed
    job->stream = j.forks[i];
    seq->queue.push_back(std::move(job));
    seq->in_ring = true;
    made.push_back(std::move(seq));
  }
  for (auto& seq : made) {
    ++seq->jobs;
    ++jobs_;
    ++suspended_;
    forked_.push_back(std::move(seq));
  }
  j.forks.clear();
}

// Plans the next token: feed the pending one in this round's step, or sample right away.
bool Scheduler::plan_token(Sequence& s, Job& j) {
  Session& ses = *slots_[s.slot].session;
  if (ses.pending() < 0 && ses.pos() == 0)
    throw EngineError(ErrorKind::kInvalid,
                      "the session is empty: append text or ids before generating", "",
                      "empty_session");
  if (ses.pending() >= 0 && ses.pos() + 1 > ses.max_ctx()) {  // no room to feed the last token
    finish_run(s, j, "length");
    return true;
  }
  j.work = ses.pending() >= 0 ? Job::Work::kDecodeFeed : Job::Work::kSample;
  if (j.work == Job::Work::kDecodeFeed && !j.spec.speculative.empty()) plan_verify(s, j);
  return false;
}

void Scheduler::plan_verify(Sequence& s, Job& j) {
  Session& ses = *slots_[s.slot].session;
  if (!j.decoder || j.bound != s.binds) {  // first step, or the sequence moved slots
    j.decoder.reset();
    if (j.spec.speculative == "ngram") {
      j.drafter = std::make_unique<NgramDrafter>();
    } else if (j.spec.speculative == "mtp") {
      if (!ses.options().mtp)
        throw EngineError(ErrorKind::kInvalid,
                          "speculative \"mtp\" needs the server to run the model's MTP head "
                          "(flashrt serve --mtp)",
                          "speculative", "mtp_not_enabled");
      j.drafter = std::make_unique<MtpDrafter>(ses, j.spec.seed.value_or(0));
    } else {
      throw EngineError(
          ErrorKind::kInvalid,
          fmt::format("speculative type '{}' is not one of ngram, mtp", j.spec.speculative),
          "speculative", "invalid_value");
    }
    j.decoder = std::make_unique<SpeculativeDecoder>(ses, *j.drafter,
                                                     SpecOptions{.draft_max = j.spec.draft_max});
    j.decoder->begin();
    j.bound = s.binds;
  }
  j.decoder->set_constraint(constraint_of(j));
  // At most what the run may still emit after the target's own token.
  const int64_t left = j.spec.max_tokens - j.result.completion_tokens;
  j.decoder->propose(j.spec.params, static_cast<int>(std::min<int64_t>(left - 1, 16)));
  j.work = Job::Work::kVerify;
}

bool Scheduler::after_verify(Sequence& s, Job& j, double step_ms) {
  Session& ses = *slots_[s.slot].session;
  ses.step_done(j.in, /*sampling=*/false);
  const std::vector<int32_t>& out = j.decoder->accept(j.spec.params, step_ms);
  // Emitted one by one as plain decoding would; the slot moves to the last one emitted before
  // the run is finished at it (finish_run may cache that boundary).
  size_t n = 0;
  const char* ended = nullptr;
  while (n < out.size() && !ended) ended = emit_token(s, j, out[n++], std::nullopt);
  j.decoder->commit(n);
  j.result.spec_drafted = j.decoder->stats().drafted;
  j.result.spec_accepted = j.decoder->stats().accepted;
  note_tokens(s);
  if (ended) finish_run(s, j, ended);
  return ended != nullptr;
}

OutputConstraint* Scheduler::constraint_of(Job& j) {
  if (!j.spec.constraint) return nullptr;
  if (!j.constraint) {  // from the run's first sampled token on
    if (!masker_) {
      std::vector<int32_t> ends = tok_.stop_ids();
      ends.insert(ends.end(), model_.cfg.eos_ids.begin(), model_.cfg.eos_ids.end());
      masker_ = make_token_masker(tok_, ends);
    }
    j.constraint.emplace(j.spec.constraint, masker_);
  }
  return &*j.constraint;
}

bool Scheduler::after_step(Sequence& s, Job& j) {
  if (j.error) std::rethrow_exception(j.error);
  if (j.work == Job::Work::kVerify) return after_verify(s, j, step_ms_);
  Session& ses = *slots_[s.slot].session;
  RunSpec& sp = j.spec;
  if (j.work == Job::Work::kPrefill) {
    ses.step_done(j.in, /*sampling=*/false);
    const size_t end = j.chunk_end;
    stats_.prefill_tokens += end - j.fed;
    j.result.prefilled_tokens += static_cast<int64_t>(end - j.fed);
    j.fed = end;
    note_tokens(s);
    const std::span<const int32_t> prefill(sp.prefill);
    const bool point =
        std::find(sp.cache_points.begin(), sp.cache_points.end(), end) != sp.cache_points.end();
    if (j.from_empty && (end == prefill.size() || point)) cache_boundary(prefill.first(end), ses);
    if (j.fed < prefill.size()) return false;
    if (start_decode(s, j)) return true;
    if (plan_token(s, j)) return true;  // its first token comes from these logits
  } else if (j.work == Job::Work::kDecodeFeed) {
    ses.step_done(j.in, /*sampling=*/true);
  }
  // Leaves the logits as they were.
  const int32_t t = ses.sample(sp.params, constraint_of(j));
  std::optional<TokenLogprob> lp;
  if (sp.logprobs >= 0) lp = token_logprob(ses.logits(), t, sp.logprobs);
  if (const char* ended = emit_token(s, j, t, std::move(lp))) {
    finish_run(s, j, ended);
    return true;
  }
  return false;
}

// Streams a sampled token and ends the run at a stop or the limit.
const char* Scheduler::emit_token(Sequence& s, Job& j, int32_t t, std::optional<TokenLogprob> lp) {
  RunSpec& sp = j.spec;
  const auto now = Clock::now();
  if (j.result.completion_tokens == 0)
    stats_.ttft.observe(std::chrono::duration<double>(now - sp.received).count());
  else
    stats_.inter_token.observe(std::chrono::duration<double>(now - j.last_token).count());
  j.last_token = now;
  ++j.result.completion_tokens;
  ++j.stream->generated;
  ++stats_.generated_tokens;
  j.result.ids.push_back(t);
  note_tokens(s);
  if (std::find(sp.stop_ids.begin(), sp.stop_ids.end(), t) != sp.stop_ids.end()) {
    j.stream->push({"", {t}, {}});
    return "stop";
  }
  std::string text = j.stop->push(j.dec->push(t));
  j.result.text += text;
  StreamChunk chunk{std::move(text), {t}, {}};
  if (lp) {
    j.result.logprobs.push_back(*lp);
    chunk.logprobs.push_back(std::move(*lp));
  }
  j.stream->push(std::move(chunk));
  if (j.stop->stopped()) return "stop";
  if (j.result.completion_tokens >= sp.max_tokens) return "length";
  return nullptr;
}

void Scheduler::job_failed(Job& j, const ErrorInfo& e) {
  if (j.is_run) {
    j.stream->fail(e);
    for (auto& f : j.forks) f->fail(e);  // never spawned: they share the run's fate
  } else {
    j.done.set_value(e);
  }
}

void Scheduler::job_over(Sequence& s, Job& j) {
  // Bookkeeping first, so that whoever the result wakes sees the session idle.
  --s.jobs;
  --jobs_;
  if (j.is_run && !s.id.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    std::erase(s.live, j.stream);
  }
  if (j.error)
    job_failed(j, ErrorInfo::from(j.error));
  else if (j.is_run) {
    for (auto& f : j.forks) f->finish(j.result);  // ended before its prompt was in
    j.stream->finish(std::move(j.result));
  } else
    j.done.set_value(std::nullopt);
}

bool Scheduler::acquire_slot(const std::shared_ptr<Sequence>& sp) {
  Sequence& s = *sp;
  int idx = -1;
  for (size_t i = 0; i < slots_.size() && idx < 0; ++i)
    if (!slots_[i].owner) idx = static_cast<int>(i);
  if (idx < 0) {  // suspend the least recently used idle session
    uint64_t oldest = UINT64_MAX;
    for (size_t i = 0; i < slots_.size(); ++i) {
      const auto& o = slots_[i].owner;
      if (o->queue.empty() && o->last_used < oldest) {
        oldest = o->last_used;
        idx = static_cast<int>(i);
      }
    }
    if (idx >= 0) park(slots_[idx]);
  }
  if (idx < 0 && opt_.preempt_after > 0) {
    // Preempt the run that has held its slot longest, once it has had preempt_after steps, and
    // only a run not preempted before, so more streams than slots cost about one suspend and one
    // resume per run instead of one per time slice. A run preempted before is spared until it
    // has had kRepreemptFactor times as many steps again: waiting stays bounded even when every
    // resident run has been preempted once.
    int most = opt_.preempt_after - 1;
    for (size_t i = 0; i < slots_.size(); ++i) {
      const Sequence& o = *slots_[i].owner;
      const bool spared = !o.queue.empty() && o.queue.front()->preempted &&
                          o.turns < kRepreemptFactor * opt_.preempt_after;
      if (!spared && o.turns > most) {
        most = o.turns;
        idx = static_cast<int>(i);
      }
    }
    if (idx >= 0) {
      if (auto& q = slots_[idx].owner->queue; !q.empty()) q.front()->preempted = true;
      park(slots_[idx]);
      ++stats_.preemptions;
    }
  }
  if (idx < 0) return false;
  Slot& slot = slots_[idx];
  if (s.parked) {
    slot.session->restore(*s.parked);  // validated when it was parked; throws before changing
    s.parked.reset();
    --suspended_;
    ++stats_.resumptions;
  } else {
    slot.session->reset();
  }
  slot.owner = sp;
  s.slot = idx;
  s.turns = 0;
  ++s.binds;
  s.where = static_cast<int>(Where::kResident);
  ++busy_slots_;
  return true;
}

void Scheduler::park(Slot& slot) {
  auto o = slot.owner;
  o->parked = slot.session->snapshot(Tier::kHost);
  o->slot = -1;
  o->where = static_cast<int>(Where::kSuspended);
  slot.owner.reset();
  --busy_slots_;
  ++suspended_;
  ++stats_.suspensions;
}

void Scheduler::release(Sequence& s) {
  if (s.slot < 0) return;
  slots_[s.slot].owner.reset();
  s.slot = -1;
  s.where = static_cast<int>(s.parked ? Where::kSuspended : Where::kEmpty);
  --busy_slots_;
}

Capsule Scheduler::snapshot_state(Sequence& s) {
  if (s.slot >= 0) return slots_[s.slot].session->snapshot(Tier::kHost);
  if (s.parked) return *s.parked;  // capsules are immutable: sharing one is free
  throw EngineError(ErrorKind::kInternal, "internal: a sequence without state", "", "internal");
}

void Scheduler::note_tokens(Sequence& s) {
  if (s.slot >= 0) {
    s.tokens = session_tokens(*slots_[s.slot].session);
    s.where = static_cast<int>(Where::kResident);
  } else if (s.parked) {
    s.tokens = capsule_tokens(*s.parked);
    s.where = static_cast<int>(Where::kSuspended);
  }
}

void Scheduler::cache_boundary(std::span<const int32_t> ids, Session& ses) {
  if (cache_.max_bytes() == 0 || ids.empty() || cache_.contains(ids)) return;
  if (cache_.insert(ids, ses.snapshot(Tier::kHost))) ++stats_.cache_inserts;
  cache_bytes_ = static_cast<int64_t>(cache_.bytes());
  cache_entries_ = static_cast<int64_t>(cache_.entries());
  cache_evictions_ = static_cast<int64_t>(cache_.evictions());
}

void Scheduler::finish_run(Sequence& s, Job& j, const char* reason) {
  Session& ses = *slots_[s.slot].session;
  std::string r = reason;
  if (j.dec && !j.stop->stopped()) {
    std::string tail = j.stop->push(j.dec->flush());
    if (j.stop->stopped())
      r = "stop";
    else
      tail += j.stop->flush();
    if (!tail.empty()) {
      j.result.text += tail;
      j.stream->push({std::move(tail), {}, {}});
    }
  }
  j.result.finish_reason = r;
  note_tokens(s);
  j.result.session_tokens = s.tokens;
  if (j.from_empty && j.spec.cache_final && !j.result.ids.empty()) {
    std::vector<int32_t> ids = j.spec.prefill;
    ids.insert(ids.end(), j.result.ids.begin(), j.result.ids.end());
    cache_boundary(ids, ses);
  }
  if (j.spec.max_tokens > 0) {
    ++stats_.generations;
    if (r == "cancelled") ++stats_.cancelled;
  }
}

}  // namespace flashrt
