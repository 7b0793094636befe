#include "engine/speculative.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <optional>

#include "core/error.h"

namespace flashrt {

namespace {

// Rows of one verify step at most: the pending token and k <= 16 drafts.
constexpr int kMaxVerifyRows = 17;

size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

}  // namespace

// ---- n-gram lookup ----

Draft NgramDrafter::propose(std::span<const int32_t> ctx, int k, const SamplerParams&) {
  Draft d;
  const size_t n = ctx.size();
  for (int g = std::min<int>(max_ngram_, static_cast<int>(n) - 1); g >= min_ngram_; --g) {
    const std::span<const int32_t> suffix = ctx.subspan(n - static_cast<size_t>(g));
    // The latest earlier occurrence: its continuation is the freshest guess.
    for (size_t start = n - static_cast<size_t>(g); start-- > 0;) {
      if (!std::equal(suffix.begin(), suffix.end(), ctx.begin() + static_cast<ptrdiff_t>(start)))
        continue;
      const size_t from = start + static_cast<size_t>(g);
      for (size_t i = from; i < n && d.tokens.size() < static_cast<size_t>(k); ++i)
        d.tokens.push_back(ctx[i]);
      return d;
    }
  }
  return d;
}

// ---- draft model ----

DraftModelDrafter::DraftModelDrafter(const Model& draft, Backend& be, SessionOptions opt,
                                     uint64_t seed)
    : s_(std::make_unique<Session>(draft, be, opt)), rng_(rng_from_seed(seed ^ 0xd4af7ULL)) {
  if (s_->has_recurrent_state()) ck_ = std::make_unique<Checkpoint>(*s_);
}

void DraftModelDrafter::sync(std::span<const int32_t> ctx) {
  const size_t m = ctx.size();
  // Back to the longest prefix shared with the target's boundary, leaving at least one token to
  // feed (its logits are the first draft's).
  size_t keep = std::min(common_prefix(fed_, ctx), m - 1);
  if (ck_) {
    if (ck_->pos() >= 0 && static_cast<size_t>(ck_->pos()) <= keep) {
      ck_->restore();
      keep = static_cast<size_t>(ck_->pos());
    } else {
      keep = 0;
    }
  }
  if (keep == 0)
    s_->reset();
  else if (!ck_)
    s_->truncate(static_cast<int64_t>(keep), nullptr);
  fed_.resize(keep);
  s_->append(ctx.subspan(keep));
  fed_.assign(ctx.begin(), ctx.end());
  if (ck_) ck_->save();
}

void DraftModelDrafter::prime(std::span<const int32_t> ctx) {
  if (!ctx.empty() && ctx.size() < static_cast<size_t>(s_->max_ctx())) sync(ctx);
}

Draft DraftModelDrafter::propose(std::span<const int32_t> ctx, int k, const SamplerParams& p) {
  Draft d;
  const size_t m = ctx.size();
  if (k <= 0 || m == 0 || m > static_cast<size_t>(s_->max_ctx()) - 1) return d;  // no room
  sync(ctx);

  std::vector<int32_t> recent;
  if (p.uses_recent()) recent.assign(ctx.begin(), ctx.end());  // what penalties read
  for (int i = 0; i < k && s_->pos() + 1 < s_->max_ctx(); ++i) {
    if (s_->pending() >= 0) {  // feed the previous draft
      fed_.push_back(s_->pending());
      s_->append({});
    }
    int32_t t;
    if (p.is_greedy()) {
      t = s_->sample(SamplerParams::greedy());
    } else {
      d.dists.push_back(sampling_distribution(s_->logits(), recent, p));
      t = draw(d.dists.back(), rng_);
      s_->set_pending(t, s_->rng_state());
      if (p.uses_recent()) recent.push_back(t);
    }
    d.tokens.push_back(t);
  }
  return d;
}

// ---- MTP head ----

MtpDrafter::MtpDrafter(Session& target, uint64_t seed, int64_t draft_vocab)
    : s_(target), rng_(rng_from_seed(seed ^ 0x37b9ULL)) {
  FLASHRT_CHECK(
      s_.options().mtp,
      "internal: MTP drafting needs a session that runs the MTP head (SessionOptions::mtp)");
  FLASHRT_CHECK(draft_vocab >= 0, "the draft vocabulary must be positive (got {})", draft_vocab);
  vocab_ = draft_vocab == 0 ? s_.model().cfg.vocab
                            : std::min<int64_t>(draft_vocab, s_.model().cfg.vocab);
  const size_t H = static_cast<size_t>(s_.model().cfg.hidden);
  const size_t V = static_cast<size_t>(vocab_);
  buf_ = s_.backend().alloc((2 * H + V) * sizeof(float));
  h_in_ = reinterpret_cast<float*>(buf_.get());
  h_out_ = h_in_ + H;
  logits_ = h_out_ + H;
}

void MtpDrafter::accepted_hidden(const float* h) {
  s_.backend().copy(h_in_, h, static_cast<size_t>(s_.model().cfg.hidden) * sizeof(float));
  have_hidden_ = true;
}

Draft MtpDrafter::propose(std::span<const int32_t> ctx, int k, const SamplerParams& p) {
  Draft d;
  // The pending token is at position m - 1; its pair with the hidden state at m - 2 is MTP row
  // m - 2 (a prompt of one token has no pair yet).
  const int64_t m = static_cast<int64_t>(ctx.size());
  if (k <= 0 || m < 2) return d;
  Backend& be = s_.backend();
  const int64_t V = vocab_;
  const size_t row_bytes = static_cast<size_t>(s_.model().cfg.hidden) * sizeof(float);
  if (!have_hidden_) be.copy(h_in_, s_.arena().region(regions::kMtpHidden), row_bytes);
  std::vector<int32_t> recent;
  if (p.uses_recent()) recent.assign(ctx.begin(), ctx.end());
  int32_t x = ctx.back();
  for (int i = 0; i < k && m - 1 + i < s_.max_ctx(); ++i) {
    s_.mtp_step({&x, 1}, m - 2 + i, h_in_, logits_, h_out_, V);
    int32_t t;
    if (p.is_greedy()) {
      t = be.argmax(logits_, V);
    } else {
      host_logits_.resize(static_cast<size_t>(V));
      be.to_host(host_logits_.data(), logits_, host_logits_.size() * sizeof(float));
      d.dists.push_back(sampling_distribution(host_logits_, recent, p));
      t = draw(d.dists.back(), rng_);
      if (p.uses_recent()) recent.push_back(t);
    }
    d.tokens.push_back(t);
    x = t;
    be.copy(h_in_, h_out_, row_bytes);
  }
  // The next proposal starts from the target's hidden state again (accepted_hidden, or the slot).
  have_hidden_ = false;
  return d;
}

// ---- the decoder ----

SpeculativeDecoder::SpeculativeDecoder(Session& target, Drafter& drafter, SpecOptions opt)
    : s_(target), drafter_(drafter), opt_(opt) {
  FLASHRT_CHECK(opt_.draft_max >= 1 && opt_.draft_max <= 16, "--draft-max must be 1..16 (got {})",
                opt_.draft_max);
  // Exactness rests on a step giving each row the bits it gets alone: true of the CPU kernels;
  // the CUDA matmul and attention pick kernels by the number of rows.
  FLASHRT_CHECK(s_.backend().name() == "cpu",
                "speculative decoding runs on the CPU backend only for now (the {} kernels give a "
                "row different bits in steps of different sizes, so it would not be exact)",
                s_.backend().name());
  // Verify steps evaluate the GDN token by token; plain decoding under --gdn chunked does not.
  FLASHRT_CHECK(s_.options().gdn_mode != GdnMode::kChunked,
                "speculative decoding needs --gdn auto or recurrent (chunked decoding would not "
                "give the verify steps' bits)");
  if (s_.has_recurrent_state()) {
    ck_ = std::make_unique<Checkpoint>(s_);
    trace_ = s_.new_trace(kMaxVerifyRows, &trace_storage_);
  }
  const int rows = std::min(kMaxVerifyRows, s_.options().max_batch);
  logits_ = s_.backend().alloc(static_cast<size_t>(rows) *
                               static_cast<size_t>(s_.model().cfg.vocab) * sizeof(float));
  // Hidden states: for a drafter that reads them, and for a slot that keeps the MTP head's (a
  // rollback puts the kept row's there).
  if (drafter_.wants_hidden() || s_.options().mtp)
    hidden_ = s_.backend().alloc(static_cast<size_t>(rows) *
                                 static_cast<size_t>(s_.model().cfg.hidden) * sizeof(float));
}

int SpeculativeDecoder::choose_k(int room, bool measured) {
  const int kmax = std::min(opt_.draft_max, room);
  if (kmax <= 0) return 0;
  if (!opt_.adaptive) return kmax;
  // Expected tokens of a step with k drafts at per-token acceptance a: (1 - a^(k+1)) / (1 - a);
  // its cost in target steps: 1 + kRow per extra row, plus what drafting one token costs, as
  // measured (its time over a verify step's) when `measured`. With sampling k decides how the RNG
  // is used, so there the costs are fixed guesses and a seeded run repeats. Paused when no k beats
  // a plain step; a probe of one draft every 8 plain steps keeps the estimate fresh.
  constexpr double kRow = 0.04;
  const double a = std::clamp(alpha_, 0.0, 0.99);

  double draft_cost = drafter_.runs_a_model() ? 0.35 : 0.0;
  if (measured && verify_ms_ > 0) draft_cost = draft_ms_per_token_ / verify_ms_;
  const double per_draft = kRow + draft_cost;
  int best = 0;
  double best_rate = 1.0;
  for (int k = 1; k <= kmax; ++k) {
    const double tokens = (1 - std::pow(a, k + 1)) / (1 - a);
    const double rate = tokens / (1 + per_draft * k);
    if (rate > best_rate * 1.02) {
      best = k;
      best_rate = rate;
    }
  }
  if (best == 0 && ++paused_ >= 8) {
    paused_ = 0;
    return 1;
  }
  return best;
}

void SpeculativeDecoder::observe(int k, int accepted) {
  // Acceptance per drafted token, as the geometric model sees it: `accepted` successes, then one
  // failure unless every draft was accepted.
  const int trials = accepted + (accepted < k ? 1 : 0);
  if (trials == 0) return;
  const double w = std::min(0.5, 0.1 * trials);
  alpha_ = (1 - w) * alpha_ + w * static_cast<double>(accepted) / trials;
}

GenerateResult SpeculativeDecoder::generate(int max_new, const SamplerParams& p,
                                            std::span<const int32_t> stop_ids,
                                            const std::function<bool(int32_t)>& on_token,
                                            OutputConstraint* constraint) {
  GenerateResult r;
  set_constraint(constraint);
  begin();
  // Emits a token; false when generation ends at it (a stop token, or the caller cancelled).
  auto emit = [&](int32_t t) {
    r.tokens.push_back(t);
    if (on_token && !on_token(t)) {
      r.finish = FinishReason::kCancelled;
      return false;
    }
    if (std::find(stop_ids.begin(), stop_ids.end(), t) != stop_ids.end()) {
      r.finish = FinishReason::kStop;
      return false;
    }
    return true;
  };
  if (max_new <= 0) return r;
  if (s_.pending() < 0) {  // the first token comes from the prompt's logits, as in generate()
    const int32_t t = s_.next_token(p, constraint_);
    context_.push_back(t);
    if (!emit(t)) return r;
  }
  r.finish = FinishReason::kLength;
  using Clock = std::chrono::steady_clock;
  // Every verify step ends at the boundary of the tokens it emitted (a throw from the callback
  // included: the cut falls there, then it goes on up), as generate() does after each token.
  while (static_cast<int>(r.tokens.size()) < max_new) {
    // The pending token needs one more position before the next can be sampled.
    if (s_.pos() + 1 > s_.max_ctx()) {
      r.finish = FinishReason::kContextFull;
      break;
    }
    const size_t limit = static_cast<size_t>(max_new) - r.tokens.size();
    const Draft& d = propose(p, static_cast<int>(limit) - 1);
    const auto t0 = Clock::now();
    std::vector<int32_t> buf;
    StepInput in = s_.step_input(d.tokens, buf);
    prepare(in);
    s_.feed_rows(in);
    const auto& out =
        accept(p, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    size_t n = 0;
    bool go_on = true;
    std::exception_ptr thrown;
    while (n < out.size() && go_on) {
      try {
        go_on = emit(out[n]);
      } catch (...) {
        thrown = std::current_exception();
        go_on = false;
      }
      if (++n == limit) go_on = false;  // the length limit: r.finish stays kLength
    }
    commit(n);
    if (thrown) std::rethrow_exception(thrown);
    if (!go_on) break;
  }
  return r;
}

void SpeculativeDecoder::begin() {
  context_ = s_.tokens();
  drafter_.begin();
}

const Draft& SpeculativeDecoder::propose(const SamplerParams& p, int room_in) {
  FLASHRT_CHECK(s_.pending() >= 0, "internal: a verify step without a pending token");
  if (static_cast<int64_t>(context_.size()) != s_.pos() + 1 || context_.empty() ||
      context_.back() != s_.pending())
    begin();  // the session moved (a restore, another caller): read its boundary again
  const int64_t V = s_.model().cfg.vocab;
  const int max_rows = std::min(kMaxVerifyRows, s_.options().max_batch);
  const int room = static_cast<int>(std::min<int64_t>(
      {s_.max_ctx() - s_.pos() - 1, static_cast<int64_t>(room_in), max_rows - 1}));
  const int k = choose_k(room, /*measured=*/p.is_greedy());
  using Clock = std::chrono::steady_clock;
  draft_ = Draft{};
  if (k > 0) {
    const auto t = Clock::now();
    draft_ = drafter_.propose(context_, k, p);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t).count();
    stats_.draft_ms += ms;
    draft_ms_per_token_ =
        draft_ms_per_token_ > 0 ? 0.8 * draft_ms_per_token_ + 0.2 * ms / k : ms / k;
  }
  if (draft_.tokens.size() > static_cast<size_t>(k)) draft_.tokens.resize(static_cast<size_t>(k));
  if (constraint_) {  // a draft the grammar forbids would be rejected: do not verify it
    OutputConstraint c = constraint_->fork();
    size_t ok = 0;
    while (ok < draft_.tokens.size() && c.allows(draft_.tokens[ok])) c.accept(draft_.tokens[ok++]);
    draft_.tokens.resize(ok);
  }
  for (int32_t t : draft_.tokens)
    FLASHRT_CHECK(t >= 0 && t < V, "the {} drafter proposed token {}, outside 0..{}",
                  drafter_.name(), t, V - 1);
  FLASHRT_CHECK(draft_.dists.empty() || draft_.dists.size() >= draft_.tokens.size(),
                "internal: the {} drafter gave {} distributions for {} tokens", drafter_.name(),
                draft_.dists.size(), draft_.tokens.size());
  return draft_;
}

void SpeculativeDecoder::prepare(StepInput& in) {
  const int k = static_cast<int>(draft_.tokens.size());
  FLASHRT_CHECK(in.ids.size() == static_cast<size_t>(k) + 1 && in.pos == s_.pos(),
                "internal: a verify step that is not [pending, drafts] at the boundary");
  p0_ = s_.pos();
  // A recurrent slot that may be rolled back: its fixed state saved, the step's GDN inputs traced.
  traced_ = ck_ && k > 0;
  if (traced_) ck_->save();
  rng_ = s_.rng_state();
  // Rows: [pending, d_1 .. d_k]; row i holds the target's logits after d_i (row 0: after the
  // pending token).
  in.row_logits = reinterpret_cast<float*>(logits_.get());
  in.row_hidden = reinterpret_cast<float*>(hidden_.get());  // null unless the drafter reads it
  in.trace = traced_ ? &trace_ : nullptr;
}

const std::vector<int32_t>& SpeculativeDecoder::accept(const SamplerParams& p, double step_ms) {
  if (step_ms > 0) {
    stats_.verify_ms += step_ms;
    verify_ms_ = verify_ms_ > 0 ? 0.8 * verify_ms_ + 0.2 * step_ms : step_ms;
  }
  Backend& be = s_.backend();
  const int64_t V = s_.model().cfg.vocab;
  const Draft& d = draft_;
  const int k = static_cast<int>(d.tokens.size());
  const float* logits = reinterpret_cast<const float*>(logits_.get());
  const bool plain_greedy =
      !constraint_ && p.is_greedy() && p.logit_bias.empty() && !p.uses_recent();
  if (!plain_greedy) {
    host_logits_.resize(static_cast<size_t>(k + 1) * static_cast<size_t>(V));
    be.to_host(host_logits_.data(), logits, host_logits_.size() * sizeof(float));
  }
  // `recent` for penalties: the boundary, then the drafts accepted so far.
  std::vector<int32_t> recent;
  if (p.uses_recent()) recent = context_;
  // Row i's logits; under a constraint masked at the state after drafts 0..i-1 (`cs`, advanced
  // below as drafts are accepted).
  std::optional<OutputConstraint> cs;
  if (constraint_) cs.emplace(constraint_->fork());
  auto row = [&](int i) {
    const std::span<const float> r(host_logits_.data() + static_cast<size_t>(i) * V,
                                   static_cast<size_t>(V));
    if (!cs) return r;
    masked_.assign(r.begin(), r.end());
    cs->mask(masked_);
    return std::span<const float>(masked_);
  };
  auto advance = [&](int32_t t) {
    if (cs) cs->accept(t);
  };
  int a = 0;
  int32_t next = -1;
  if (p.is_greedy()) {
    for (;; ++a) {  // the pick of Session::sample: argmax after the request's bias and penalties
      const int32_t t = plain_greedy ? be.argmax(logits + static_cast<int64_t>(a) * V, V)
                                     : sample_token(row(a), recent, p, rng_);
      if (a == k || t != d.tokens[static_cast<size_t>(a)]) {
        next = t;
        break;
      }
      advance(t);
      if (p.uses_recent()) recent.push_back(t);
    }
  } else {
    for (;; ++a) {
      const TokenDistribution pd = sampling_distribution(row(a), recent, p);
      if (a == k) {
        next = draw(pd, rng_);
        break;
      }
      const int32_t x = d.tokens[static_cast<size_t>(a)];
      const double px = pd.prob(x);
      const double qx = d.dists.empty() ? 1.0 : d.dists[static_cast<size_t>(a)].prob(x);
      if (qx > 0 && rng_uniform(rng_) * qx < px) {  // accept with probability min(1, p/q)
        advance(x);
        if (p.uses_recent()) recent.push_back(x);
        continue;
      }
      // Rejected: draw from the residual max(0, p - q), normalised (q dense: one pass over p).
      std::vector<double>& q = dense_q_;
      q.assign(static_cast<size_t>(V), 0.0);
      if (d.dists.empty()) {
        q[static_cast<size_t>(x)] = 1.0;
      } else {
        const TokenDistribution& qd = d.dists[static_cast<size_t>(a)];
        for (size_t j = 0; j < qd.ids.size(); ++j)
          q[static_cast<size_t>(qd.ids[j])] = qd.weights[j] / qd.total;
      }
      TokenDistribution res;
      for (size_t j = 0; j < pd.ids.size(); ++j) {
        const double pj = pd.weights[j] / pd.total;
        const double qj = q[static_cast<size_t>(pd.ids[j])];
        if (pj > qj) {
          res.ids.push_back(pd.ids[j]);
          res.weights.push_back(pj - qj);
          res.total += pj - qj;
        }
      }
      next = res.ids.empty() ? draw(pd, rng_) : draw(res, rng_);
      break;
    }
  }
  out_.assign(d.tokens.begin(), d.tokens.begin() + a);
  out_.push_back(next);
  return out_;
}

void SpeculativeDecoder::commit(size_t n) {
  FLASHRT_CHECK(n >= 1 && n <= out_.size(), "internal: committing {} of {} tokens", n, out_.size());
  // The tokens kept: the first n; the boundary then has the nth pending, as plain decoding.
  const int k = static_cast<int>(draft_.tokens.size());
  const int a = static_cast<int>(n) - 1;
  const int32_t next = out_[n - 1];
  const int64_t V = s_.model().cfg.vocab, H = s_.model().cfg.hidden;
  float* logits = reinterpret_cast<float*>(logits_.get());
  float* hidden = reinterpret_cast<float*>(hidden_.get());
  if (hidden)  // the row whose logits chose `next`: its hidden state pairs with it
    drafter_.accepted_hidden(hidden + static_cast<int64_t>(a) * H);
  if (k > 0) {
    ++stats_.steps;
    stats_.drafted += k;
    stats_.accepted += a;
    observe(k, a);
  } else {
    ++stats_.plain_steps;
  }
  stats_.k_history.push_back(k);
  context_.insert(context_.end(), out_.begin(), out_.begin() + static_cast<ptrdiff_t>(n));
  if (constraint_)
    for (size_t i = 0; i < n; ++i) constraint_->accept(out_[i]);
  if (a == k) {  // every row fed is the boundary's
    s_.set_pending(next, rng_);
  } else if (ck_) {
    // Back to the saved boundary, then its recurrent and conv state advanced over the kept rows
    // again from the trace (no matmul); their KV rows are already in place.
    FLASHRT_CHECK(traced_, "internal: a rollback without a trace");
    ck_->restore();
    s_.replay(a + 1, trace_, logits + static_cast<int64_t>(a) * V,
              hidden ? hidden + static_cast<int64_t>(a) * H : nullptr);
    s_.set_pending(next, rng_);
  } else {
    s_.truncate(p0_ + a + 1, logits + static_cast<int64_t>(a) * V);
    s_.set_pending(next, rng_);
  }
}

}  // namespace flashrt
