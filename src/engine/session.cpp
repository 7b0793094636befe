#include "engine/session.h"

#include <xxhash.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "engine/errors.h"

namespace flashrt {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kLength:
      return "length";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kContextFull:
      return "context_full";
  }
  return "?";
}

std::shared_ptr<const StateLayout> session_layout(const Model& m, int64_t max_ctx, DType kv_dtype,
                                                  bool mtp) {
  auto l = std::make_shared<StateLayout>(model_state_layout(m, max_ctx, kv_dtype, mtp));
  l->add({regions::kPending, DType::I32, {1}, RegionKind::kMeta});
  l->add({regions::kRng, DType::U8, {static_cast<int64_t>(sizeof(RngState))}, RegionKind::kMeta});
  return l;
}

Session::Session(const Model& model, Backend& backend, SessionOptions opt)
    : model_(model), be_(backend), opt_(opt) {
  FLASHRT_CHECK(opt_.max_ctx > 0, "context size must be positive (got {})", opt_.max_ctx);
  FLASHRT_CHECK(opt_.max_batch > 0, "batch size must be positive (got {})", opt_.max_batch);
  FLASHRT_CHECK(be_.supports_kv_dtype(opt_.kv_dtype), "the {} backend has no {} KV cache",
                be_.name(), dtype_name(opt_.kv_dtype));
  FLASHRT_CHECK(!opt_.mtp || be_.name() == "cpu",
                "the MTP head runs on the CPU backend only for now (its {} kernels have never "
                "run)",
                be_.name());
  arena_ = be_.new_arena(session_layout(model, opt_.max_ctx, opt_.kv_dtype, opt_.mtp));
  fingerprint_ = capsule_fingerprint(model, arena_->layout());
  runner_ = std::make_unique<StepRunner>(model_, be_, arena_->layout_ptr(), opt_.max_batch);
  reset();
}

Session::~Session() = default;

void Session::reset() {
  // Recurrent and conv state start from zero; positional rows past the position are never read.
  const StateLayout& l = arena_->layout();
  for (size_t i = 0; i < l.regions().size(); ++i)
    if (l.regions()[i].kind != RegionKind::kPositional)
      be_.fill_zero(arena_->region(static_cast<int>(i)), l.regions()[i].bytes());
  set_pending(-1);
  seed(0);
  pos_ = 0;
}

void Session::sync_from_arena() {
  be_.to_host(&pos_, arena_->region(regions::kPos), sizeof pos_);
  be_.to_host(&pending_, arena_->region(regions::kPending), sizeof pending_);
  be_.to_host(&rng_, arena_->region(regions::kRng), sizeof rng_);
}

void Session::set_pending(int32_t id) {
  be_.to_device(arena_->region(regions::kPending), &id, sizeof id);
  pending_ = id;
}

void Session::seed(uint64_t seed) {
  rng_ = rng_from_seed(seed);
  be_.to_device(arena_->region(regions::kRng), &rng_, sizeof rng_);
}

void Session::run(std::span<const int32_t> ids, float* all_logits) {
  const StepInput in{arena_.get(), ids, pos_};
  // A decode step has one shape per slot: the backend may record it once and replay it.
  const bool decode = ids.size() == 1 && !all_logits;
  runner_->run({&in, 1}, all_logits, opt_.gdn_mode, decode ? arena_.get() : nullptr);
  pos_ += static_cast<int64_t>(ids.size());
}

void Session::mtp_step(std::span<const int32_t> ids, int64_t mtp_pos, const float* h_in,
                       float* logits, float* hidden, int64_t vocab) {
  for (int32_t id : ids)
    FLASHRT_CHECK(id >= 0 && id < model_.cfg.vocab, "internal: MTP token {} outside 0..{}", id,
                  model_.cfg.vocab - 1);
  runner_->run_mtp(arena_.get(), ids, mtp_pos, h_in, logits, hidden, vocab);
}

GdnTrace Session::new_trace(int rows, std::shared_ptr<uint8_t>* storage) const {
  const ModelConfig& c = model_.cfg;
  GdnTrace t;
  t.rows = rows;
  t.conv_dim = c.gdn_conv_dim();
  t.v_heads = c.gdn_v_heads;
  int n = 0;
  for (LayerKind k : c.layers) t.slot.push_back(k == LayerKind::kGatedDeltaNet ? n++ : -1);
  *storage = be_.alloc(std::max<size_t>(
      1, static_cast<size_t>(n) * static_cast<size_t>(t.floats_per_layer()) * sizeof(float)));
  t.base = reinterpret_cast<float*>(storage->get());
  return t;
}

void Session::replay(int rows, const GdnTrace& trace, const float* logits, const float* hidden) {
  FLASHRT_CHECK(pending_ >= 0, "internal: a replay from a boundary without its pending token");
  runner_->run_replay(arena_.get(), rows, pos_, trace);
  if (opt_.mtp) {
    FLASHRT_CHECK(hidden, "internal: a replay on a slot with MTP state needs the hidden state");
    be_.copy(arena_->region(regions::kMtpHidden), hidden,
             static_cast<size_t>(model_.cfg.hidden) * sizeof(float));
  }
  move_boundary(pos_ + rows, logits);
}

void Session::feed_rows(std::span<const int32_t> ids, float* all_logits) {
  std::vector<int32_t> buf;
  StepInput in = step_input(ids, buf);
  in.row_logits = all_logits;
  feed_rows(in);
}

void Session::feed_rows(StepInput& in) {
  // A step run by the session itself, through the same input/done pair as the scheduler's.
  FLASHRT_CHECK(in.ids.size() <= static_cast<size_t>(opt_.max_batch),
                "internal: a speculative step of {} tokens (1..{})", in.ids.size(), opt_.max_batch);
  runner_->run({&in, 1}, nullptr, GdnMode::kRecurrent, nullptr);
  step_done(in, /*sampling=*/false);
}

void Session::set_pending(int32_t id, const RngState& rng) {
  FLASHRT_CHECK(id >= 0 && id < model_.cfg.vocab, "internal: pending token {} outside 0..{}", id,
                model_.cfg.vocab - 1);
  FLASHRT_CHECK(pending_ < 0, "internal: a second pending token");
  be_.to_device(arena_->region(regions::kRng), &rng, sizeof rng);
  rng_ = rng;
  set_pending(id);
}

bool Session::has_recurrent_state() const {
  for (const auto& r : arena_->layout().regions())
    if (r.kind == RegionKind::kFixed) return true;
  return false;
}

void Session::truncate(int64_t pos, const float* logits) {
  FLASHRT_CHECK(!has_recurrent_state(), "internal: truncate on a slot with recurrent state");
  FLASHRT_CHECK(pos > 0 && pos <= pos_, "internal: truncate to {} of {}", pos, pos_);
  move_boundary(pos, logits);
}

void Session::move_boundary(int64_t pos, const float* logits) {
  if (logits)  // null: stale logits, for a caller that feeds a token next (a drafter)
    be_.copy(arena_->region(regions::kLogits), logits,
             static_cast<size_t>(model_.cfg.vocab) * sizeof(float));
  be_.to_device(arena_->region(regions::kPos), &pos, sizeof pos);
  pos_ = pos;
  if (pending_ >= 0) set_pending(-1);
}

Checkpoint::Checkpoint(Session& s) : s_(s) {
  const StateLayout& l = s.arena().layout();
  size_t total = 0;
  for (size_t i = 0; i < l.regions().size(); ++i)
    if (l.regions()[i].kind != RegionKind::kPositional) {
      spans_.push_back({l.offsets()[i], l.regions()[i].bytes()});
      total += l.regions()[i].bytes();
    }
  copy_ = s.backend().alloc(std::max<size_t>(total, 1));
}

void Checkpoint::save() {
  size_t at = 0;
  for (const auto& [off, n] : spans_) {
    s_.backend().copy(copy_.get() + at, s_.arena().base() + off, n);
    at += n;
  }
  pos_ = s_.pos();
}

void Checkpoint::restore() {
  FLASHRT_CHECK(pos_ >= 0, "internal: restoring a checkpoint never saved");
  FLASHRT_CHECK(s_.pos() >= pos_, "internal: the session went below its checkpoint");
  size_t at = 0;
  for (const auto& [off, n] : spans_) {
    s_.backend().copy(s_.arena().base() + off, copy_.get() + at, n);
    at += n;
  }
  s_.sync_from_arena();
}

void Session::check_feed(std::span<const int32_t> ids) const {
  for (int32_t id : ids)
    FLASHRT_CHECK(id >= 0 && id < model_.cfg.vocab, "token id {} is outside the vocabulary (0..{})",
                  id, model_.cfg.vocab - 1);
  FLASHRT_CHECK(
      pos_ + static_cast<int64_t>(ids.size()) <= opt_.max_ctx,
      "context full: {} tokens in the slot + {} new exceed the context size {} (raise --ctx)", pos_,
      ids.size(), opt_.max_ctx);
}

StepInput Session::step_input(std::span<const int32_t> ids, std::vector<int32_t>& buf) const {
  buf.clear();
  if (pending_ >= 0) buf.push_back(pending_);
  buf.insert(buf.end(), ids.begin(), ids.end());
  FLASHRT_CHECK(!buf.empty(), "internal: a step of no tokens");
  check_feed(buf);
  return {arena_.get(), buf, pos_};
}

void Session::step_done(const StepInput& in, bool sampling) {
  FLASHRT_CHECK(in.slot == arena_.get() && in.pos == pos_, "internal: a step of another boundary");
  pos_ += static_cast<int64_t>(in.ids.size());
  if (pending_ < 0) return;
  if (sampling)
    pending_ = -1;  // sample() writes meta.pending next
  else
    set_pending(-1);
}

void Session::feed(std::span<const int32_t> ids, bool pending_first) {
  check_feed(ids);
  for (size_t i = 0; i < ids.size(); i += static_cast<size_t>(opt_.max_batch)) {
    const size_t n = std::min(ids.size() - i, static_cast<size_t>(opt_.max_batch));
    run(std::span<const int32_t>(ids.data() + i, n), nullptr);
    // Once the first chunk has run, the pending token is in the state: a later failure must not
    // leave it pending to be fed twice.
    if (i == 0 && pending_first) set_pending(-1);
  }
}

void Session::append(std::span<const int32_t> ids_in) {
  std::vector<int32_t> ids;
  const bool with_pending = pending_ >= 0;
  if (with_pending) ids.push_back(pending_);
  ids.insert(ids.end(), ids_in.begin(), ids_in.end());
  if (ids.empty()) return;
  feed(ids, with_pending);
}

std::vector<float> Session::forward_all_logits(std::span<const int32_t> ids) {
  FLASHRT_CHECK(pending_ < 0, "forward_all_logits needs a boundary without a pending token");
  FLASHRT_CHECK(!ids.empty(), "no tokens to run");
  for (int32_t id : ids)
    FLASHRT_CHECK(id >= 0 && id < model_.cfg.vocab, "token id {} is outside the vocabulary (0..{})",
                  id, model_.cfg.vocab - 1);
  FLASHRT_CHECK(pos_ + static_cast<int64_t>(ids.size()) <= opt_.max_ctx,
                "context full: {} + {} tokens exceed {}", pos_, ids.size(), opt_.max_ctx);
  const int64_t V = model_.cfg.vocab;
  std::vector<float> out(ids.size() * static_cast<size_t>(V));
  const size_t chunk = std::min(ids.size(), static_cast<size_t>(opt_.max_batch));
  auto dev = be_.alloc(chunk * static_cast<size_t>(V) * sizeof(float));  // backend memory
  for (size_t i = 0; i < ids.size(); i += chunk) {
    const size_t n = std::min(ids.size() - i, chunk);
    run(std::span<const int32_t>(ids.data() + i, n), reinterpret_cast<float*>(dev.get()));
    be_.to_host(out.data() + i * static_cast<size_t>(V), dev.get(),
                n * static_cast<size_t>(V) * sizeof(float));
  }
  return out;
}

std::vector<float> Session::logits() const {
  FLASHRT_CHECK(pos_ > 0, "no logits yet: nothing has been fed to this session");
  std::vector<float> l(static_cast<size_t>(model_.cfg.vocab));
  be_.to_host(l.data(), arena_->region(regions::kLogits), l.size() * sizeof(float));
  return l;
}

std::vector<int32_t> Session::tokens() const {
  std::vector<int32_t> t(static_cast<size_t>(pos_));
  be_.to_host(t.data(), arena_->region(regions::kTokens), t.size() * sizeof(int32_t));
  if (pending_ >= 0) t.push_back(pending_);
  return t;
}

int32_t Session::next_token(const SamplerParams& p, OutputConstraint* constraint) {
  // The pending token is fed first; sample() below then overwrites meta.pending.
  if (pending_ >= 0) {
    const int32_t fed = pending_;
    feed({&fed, 1}, /*pending_first=*/false);
    pending_ = -1;
  }
  return sample(p, constraint);
}

// Samples from the pending logits and makes the token pending (in the arena and the mirror).
int32_t Session::sample(const SamplerParams& p, OutputConstraint* constraint) {
  FLASHRT_CHECK(pos_ > 0, "no logits yet: nothing has been fed to this session");
  FLASHRT_CHECK(pending_ < 0, "internal: sampling with a token pending");
  try {
    return sample_pending(p, constraint);
  } catch (...) {
    set_pending(-1);  // a token already fed (step_done) must not stay in meta.pending
    throw;
  }
}

int32_t Session::sample_pending(const SamplerParams& p, OutputConstraint* constraint) {
  if (!constraint && p.is_greedy() && p.logit_bias.empty() && !p.uses_recent()) {
    // Plain greedy needs no host copy of the logits; the backend writes the token into the slot.
    pending_ = be_.argmax(arena_->region_as<float>(regions::kLogits), model_.cfg.vocab,
                          arena_->region_as<int32_t>(regions::kPending));
    return pending_;
  }
  std::vector<float> l = logits();
  if (constraint) constraint->mask(l);  // before penalties and temperature, as bias would be
  std::vector<int32_t> recent;
  if (p.uses_recent()) {
    const int64_t n = p.repeat_last_n < 0 ? pos_ : std::min<int64_t>(pos_, p.repeat_last_n);
    recent.resize(static_cast<size_t>(n));
    be_.to_host(recent.data(), arena_->region_as<int32_t>(regions::kTokens) + (pos_ - n),
                recent.size() * sizeof(int32_t));
  }
  RngState rng = rng_;
  const int32_t t = sample_token(l, recent, p, rng);
  if (constraint) constraint->accept(t);
  be_.to_device(arena_->region(regions::kRng), &rng, sizeof rng);
  rng_ = rng;
  set_pending(t);
  return t;
}

GenerateResult Session::generate(int max_new, const SamplerParams& p,
                                 std::span<const int32_t> stop_ids,
                                 const std::function<bool(int32_t)>& on_token,
                                 OutputConstraint* constraint) {
  GenerateResult r;
  for (int i = 0; i < max_new; ++i) {
    // A pending token needs one more position before the next can be sampled.
    if (pending_ >= 0 && pos_ + 1 > opt_.max_ctx) {
      r.finish = FinishReason::kContextFull;
      return r;
    }
    const int32_t t = next_token(p, constraint);
    r.tokens.push_back(t);
    if (on_token && !on_token(t)) {
      r.finish = FinishReason::kCancelled;
      return r;
    }
    if (std::find(stop_ids.begin(), stop_ids.end(), t) != stop_ids.end()) {
      r.finish = FinishReason::kStop;
      return r;
    }
  }
  r.finish = FinishReason::kLength;
  return r;
}

}  // namespace flashrt

namespace flashrt {

int64_t capsule_tokens(const Capsule& c) {
  int64_t n = c.pos;
  const CapsuleEntry* e = c.find(regions::kPending);
  FLASHRT_CHECK(c.tier == Tier::kHost, "internal: capsule_tokens reads a host capsule");
  if (e && c.data && e->bytes >= sizeof(int32_t)) {
    int32_t p;
    std::memcpy(&p, c.data.get() + e->offset, sizeof p);
    if (p >= 0) ++n;
  }
  return n;
}

Fingerprint capsule_fingerprint(const Model& m, const StateLayout& layout) {
  std::string s = fmt::format("flashrt capsule v{}\n{}\nweights {:016x}\n", kCapsuleFormatVersion,
                              m.cfg.describe(), m.weights_hash());
  for (const auto& r : layout.regions()) {
    std::vector<int64_t> shape = r.shape;
    if (r.kind == RegionKind::kPositional) shape.erase(shape.begin());
    s += fmt::format("{} {} {} [{}]\n", r.name, dtype_name(r.dtype), r.kind_text(),
                     fmt::join(shape, ","));
  }
  const XXH128_hash_t h = XXH3_128bits(s.data(), s.size());
  return Fingerprint{h.high64, h.low64};
}

Capsule Session::snapshot(Tier tier, const std::string& path) const {
  return snapshot_arena(*arena_, be_, pos_, fingerprint_, tier, path);
}

void Session::check_restorable(const Capsule& c) const {
  const StateLayout& l = arena_->layout();
  for (const CapsuleEntry& e : c.entries) {
    const int i = l.find(e.name);
    if (i < 0) continue;
    const RegionSpec& r = l.regions()[static_cast<size_t>(i)];
    if (r.dtype != e.dtype && r.kind == RegionKind::kPositional && r.dtype == opt_.kv_dtype)
      throw EngineError(ErrorKind::kInvalid,
                        fmt::format("capsule region '{}' is {}, this session's is {} (the KV "
                                    "cache type: --kv-type)",
                                    e.name, dtype_name(e.dtype), dtype_name(r.dtype)),
                        "", "kv_type_mismatch");
  }
  if (c.fingerprint == fingerprint_ && c.pos > opt_.max_ctx)
    throw EngineError(ErrorKind::kInvalid,
                      fmt::format("capsule holds {} tokens but this session's context is {} "
                                  "(raise --ctx)",
                                  c.pos, opt_.max_ctx),
                      "", "context_too_small");
  check_compatible(c, *arena_, fingerprint_);
}

void Session::restore(const Capsule& c) {
  check_restorable(c);
  restore_arena(*arena_, be_, c, fingerprint_);
  sync_from_arena();
}

void Session::restore_regions(const Capsule& c,
                              const std::function<bool(const std::string&)>& only) {
  check_restorable(c);
  restore_arena(*arena_, be_, c, fingerprint_, only);
  sync_from_arena();
}

std::unique_ptr<Session> Session::fork() const {
  auto s = std::make_unique<Session>(model_, be_, opt_);
  const StateLayout& l = arena_->layout();
  for (size_t i = 0; i < l.regions().size(); ++i) {
    const size_t n = l.regions()[i].live_bytes(pos_);
    if (n) be_.copy(s->arena_->region(static_cast<int>(i)), arena_->region(static_cast<int>(i)), n);
  }
  s->sync_from_arena();
  return s;
}

}  // namespace flashrt
