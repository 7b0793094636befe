#include "engine/step_runner.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace flashrt {

namespace {

// A backend whose ops do nothing: the forward pass run on it touches no memory and only records,
// through its Bump, how much scratch each shape takes (the dry run that sizes scratch).
class DryRunBackend final : public Backend {
 public:
  std::string name() const override { return "dry-run"; }
  std::unique_ptr<Arena> new_arena(std::shared_ptr<const StateLayout>) override { unused(); }
  std::shared_ptr<uint8_t> alloc(size_t) override { unused(); }
  float* scratch(size_t) override { unused(); }
  void to_device(void*, const void*, size_t) override { unused(); }
  void to_host(void*, const void*, size_t) override { unused(); }
  void copy(void*, const void*, size_t) override {}
  void embed(float*, const Mat&, const int32_t*, int) override {}
  void rmsnorm(float*, int64_t, const float*, int64_t, const float*, int, int, float) override {}
  void matmul(float*, const float*, const Mat&, int) override {}
  void add(float*, const float*, int64_t) override {}
  void swiglu(float*, const float*, const float*, int64_t) override {}
  void sigmoid_gate(float*, const float*, int, int, int64_t) override {}
  void gated_rmsnorm(float*, const float*, const float*, const float*, int, int, float) override {}
  void rope(float*, const StepRows&, int, int, int, double) override {}
  void store_rows(const StepRows&, size_t, DType, const float*, int64_t) override {}
  void store_tokens(const StepRows&, size_t) override {}
  void store_per_seq(const StepRows&, size_t, const float*, int64_t) override {}
  void load_per_seq(const StepRows&, size_t, float*, int64_t) override {}
  void advance_pos(const StepRows&, size_t) override {}
  void attention(const StepRows&, const AttentionArgs&) override {}
  void conv1d_silu(const StepRows&, float*, const float*, size_t, const float*, int, int) override {
  }
  void gated_delta_net(const StepRows&, const GdnArgs&) override {}
  int32_t argmax(const float*, int64_t, int32_t*) override { unused(); }

 private:
  [[noreturn]] static void unused() { fail("internal: the dry-run backend holds no memory"); }
};

size_t align8(size_t n) {
  return (n + 7) / 8 * 8;
}

size_t region_offset(const StateLayout& l, const char* name) {
  const int i = l.find(name);
  FLASHRT_CHECK(i >= 0, "internal: the slot layout has no region '{}'", name);
  return l.offsets()[static_cast<size_t>(i)];
}

bool same_layout(const StateLayout& a, const StateLayout& b) {
  if (&a == &b) return true;
  if (a.total_bytes() != b.total_bytes() || a.max_ctx() != b.max_ctx() ||
      a.offsets() != b.offsets())
    return false;
  for (size_t i = 0; i < a.regions().size(); ++i)
    if (a.regions()[i].dtype != b.regions()[i].dtype) return false;
  return true;
}

}  // namespace

StepRunner::StepRunner(const Model& m, Backend& be, std::shared_ptr<const StateLayout> layout,
                       int max_rows, int max_seqs)
    : m_(m), be_(be), layout_(std::move(layout)), max_rows_(max_rows), max_seqs_(max_seqs) {
  FLASHRT_CHECK(max_rows_ > 0 && max_seqs_ > 0 && max_seqs_ <= max_rows_,
                "a step needs room for its rows ({}) and sequences ({})", max_rows_, max_seqs_);
  tokens_ = region_offset(*layout_, regions::kTokens);
  pos_ = region_offset(*layout_, regions::kPos);
  logits_ = region_offset(*layout_, regions::kLogits);
  mtp_ = layout_->find(regions::kMtpHidden) >= 0;
  staging_.resize(2 * (align8(static_cast<size_t>(max_rows_) * sizeof(int64_t)) +
                       align8(static_cast<size_t>(max_seqs_) * sizeof(uint8_t*)) +
                       align8(static_cast<size_t>(max_rows_) * sizeof(int32_t))));
  table_ = be_.alloc(staging_.size());

  // Scratch: the largest take of a dry run over the shapes that take most: all rows in one
  // sequence, and the most sequences (one row each but the first), with and without all_logits.
  DryRunBackend dry;
  size_t peak = 0;
  // Never dereferenced: the dry run's ops do nothing with the pointers the Bump hands out.
  auto* nowhere = reinterpret_cast<float*>(uintptr_t{1} << 12);
  for (const int n_seqs : {1, max_seqs_}) {
    std::vector<SeqRows> seqs;
    seqs.push_back({0, max_rows_ - n_seqs + 1});
    for (int i = 1; i < n_seqs; ++i) seqs.push_back({max_rows_ - n_seqs + i, 1});
    const StepRows rows{max_rows_, seqs, nullptr, nullptr, nullptr};
    const std::vector<MtpSeq> info(seqs.size(), MtpSeq{0, true});
    const MtpRows mtp{rows, info};
    for (float* all_logits : {static_cast<float*>(nullptr), nowhere})
      forward(dry, rows, mtp_ ? &mtp : nullptr, nowhere, SIZE_MAX / 8, &peak, all_logits,
              GdnMode::kAuto);
    // With per-sequence row outputs (speculative verification in a step).
    std::vector<StepInput> outs(seqs.size(), StepInput{nullptr, {}, 0, nowhere, nowhere, nullptr});
    forward(dry, rows, mtp_ ? &mtp : nullptr, nowhere, SIZE_MAX / 8, &peak, nullptr, GdnMode::kAuto,
            outs);
    if (mtp_ && n_seqs == 1)
      mtp_forward(dry, rows, nowhere, nowhere, SIZE_MAX / 8, &peak, nowhere, nowhere, 0);
  }
  scratch_floats_ = peak;
}

void StepRunner::run(std::span<const StepInput> seqs, float* all_logits, GdnMode mode,
                     const void* graph_key) {
  const size_t n_seqs = seqs.size();
  FLASHRT_CHECK(n_seqs > 0 && n_seqs <= static_cast<size_t>(max_seqs_),
                "internal: a step of {} sequences (at most {})", n_seqs, max_seqs_);
  int n = 0;
  seqs_.clear();
  for (const StepInput& s : seqs) {
    FLASHRT_CHECK(!s.ids.empty(), "internal: a sequence without tokens in a step");
    FLASHRT_CHECK(same_layout(s.slot->layout(), *layout_),
                  "internal: a slot of another layout in a step");
    FLASHRT_CHECK(s.pos >= 0 && s.pos + static_cast<int64_t>(s.ids.size()) <= layout_->max_ctx(),
                  "internal: {} tokens at position {} overflow the context {}", s.ids.size(), s.pos,
                  layout_->max_ctx());
    seqs_.push_back({n, static_cast<int>(s.ids.size())});
    n += static_cast<int>(s.ids.size());
    FLASHRT_CHECK(n <= max_rows_, "internal: a step of more than {} rows", max_rows_);
  }

  // The step's arrays, packed for this shape (positions, slot bases, ids): staged on the host,
  // then one copy of the bytes in use. The offsets depend only on the shape, so a recorded step
  // finds its arrays where it recorded them. The MTP rows' arrays follow.
  auto* pos = reinterpret_cast<int64_t*>(staging_.data());
  const size_t slots_at = align8(static_cast<size_t>(n) * sizeof(int64_t));
  auto* slots = reinterpret_cast<uint8_t**>(staging_.data() + slots_at);
  const size_t ids_at = slots_at + align8(n_seqs * sizeof(uint8_t*));
  auto* ids = reinterpret_cast<int32_t*>(staging_.data() + ids_at);
  const size_t mtp_at = ids_at + align8(static_cast<size_t>(n) * sizeof(int32_t));
  auto* mpos = reinterpret_cast<int64_t*>(staging_.data() + mtp_at);
  const size_t mslots_at = mtp_at + align8(static_cast<size_t>(n) * sizeof(int64_t));
  auto* mslots = reinterpret_cast<uint8_t**>(staging_.data() + mslots_at);
  const size_t mids_at = mslots_at + align8(n_seqs * sizeof(uint8_t*));
  auto* mids = reinterpret_cast<int32_t*>(staging_.data() + mids_at);
  mtp_seqs_.clear();
  mtp_info_.clear();
  int mn = 0;
  for (size_t i = 0; i < n_seqs; ++i) {
    const StepInput& s = seqs[i];
    for (size_t k = 0; k < i; ++k)
      FLASHRT_CHECK(slots[k] != s.slot->base(), "internal: one slot twice in a step");
    slots[i] = s.slot->base();
    for (size_t j = 0; j < s.ids.size(); ++j) {
      const size_t r = static_cast<size_t>(seqs_[i].first) + j;
      pos[r] = s.pos + static_cast<int64_t>(j);
      ids[r] = s.ids[j];
    }
    if (!mtp_) continue;
    // The pairs this sequence's rows complete: all its rows but one at position 0.
    const int skip = s.pos == 0 ? 1 : 0;
    const int count = static_cast<int>(s.ids.size()) - skip;
    if (count == 0) continue;
    mslots[mtp_seqs_.size()] = s.slot->base();
    mtp_seqs_.push_back({mn, count});
    mtp_info_.push_back({seqs_[i].first, skip == 0});
    for (int j = 0; j < count; ++j) {
      mpos[mn + j] = s.pos + skip + j - 1;
      mids[mn + j] = s.ids[static_cast<size_t>(skip + j)];
    }
    mn += count;
  }
  const size_t bytes = mtp_ ? mids_at + static_cast<size_t>(n) * sizeof(int32_t)
                            : ids_at + static_cast<size_t>(n) * sizeof(int32_t);
  be_.to_device(table_.get(), staging_.data(), bytes);
  const uint8_t* dev = table_.get();
  const StepRows rows{n, seqs_, reinterpret_cast<const int32_t*>(dev + ids_at),
                      reinterpret_cast<const int64_t*>(dev),
                      reinterpret_cast<uint8_t* const*>(dev + slots_at)};
  const MtpRows mtp{StepRows{mn, mtp_seqs_, reinterpret_cast<const int32_t*>(dev + mids_at),
                             reinterpret_cast<const int64_t*>(dev + mtp_at),
                             reinterpret_cast<uint8_t* const*>(dev + mslots_at)},
                    mtp_info_};

  float* scratch = be_.scratch(scratch_floats_);
  const auto step = [&] {
    forward(be_, rows, mtp_ ? &mtp : nullptr, scratch, scratch_floats_, nullptr, all_logits, mode,
            seqs);
  };
  if (graph_key)
    be_.run_graph(graph_key, step);
  else
    step();
}

StepRows StepRunner::one_seq_rows(Arena* slot, std::span<const int32_t> ids, int n, int64_t pos0) {
  FLASHRT_CHECK(n > 0 && n <= max_rows_, "internal: a step of {} rows (1..{})", n, max_rows_);
  FLASHRT_CHECK(same_layout(slot->layout(), *layout_),
                "internal: a slot of another layout in a step");
  FLASHRT_CHECK(pos0 >= 0 && pos0 + n <= layout_->max_ctx(),
                "internal: rows {}..{} outside the context {}", pos0, pos0 + n - 1,
                layout_->max_ctx());
  auto* pos = reinterpret_cast<int64_t*>(staging_.data());
  const size_t slots_at = align8(static_cast<size_t>(n) * sizeof(int64_t));
  const size_t ids_at = slots_at + align8(sizeof(uint8_t*));
  *reinterpret_cast<uint8_t**>(staging_.data() + slots_at) = slot->base();
  auto* id = reinterpret_cast<int32_t*>(staging_.data() + ids_at);
  for (int j = 0; j < n; ++j) {
    pos[j] = pos0 + j;
    id[j] = ids.empty() ? 0 : ids[static_cast<size_t>(j)];
  }
  be_.to_device(table_.get(), staging_.data(), ids_at + static_cast<size_t>(n) * sizeof(int32_t));
  const uint8_t* dev = table_.get();
  seqs_.assign(1, SeqRows{0, n});
  return StepRows{n, seqs_, reinterpret_cast<const int32_t*>(dev + ids_at),
                  reinterpret_cast<const int64_t*>(dev),
                  reinterpret_cast<uint8_t* const*>(dev + slots_at)};
}

void StepRunner::run_mtp(Arena* slot, std::span<const int32_t> ids, int64_t mtp_pos,
                         const float* h_in, float* logits, float* hidden, int64_t vocab) {
  FLASHRT_CHECK(mtp_, "internal: an MTP step on slots without MTP state");
  const StepRows rows = one_seq_rows(slot, ids, static_cast<int>(ids.size()), mtp_pos);
  mtp_forward(be_, rows, h_in, be_.scratch(scratch_floats_), scratch_floats_, nullptr, logits,
              hidden, vocab);
}

void StepRunner::run_replay(Arena* slot, int n, int64_t pos, const GdnTrace& trace) {
  // The replay takes less scratch than the step it replays (the GDN block's conv output and core
  // of the same rows), which the dry run sized.
  const StepRows rows = one_seq_rows(slot, {}, n, pos);
  ForwardStep fs{be_, rows, *layout_, Bump(be_.scratch(scratch_floats_), scratch_floats_),
                 GdnMode::kRecurrent};
  m_.arch->replay_recurrent(m_, fs, trace);
}

void StepRunner::mtp_forward(Backend& be, const StepRows& rows, const float* h_in, float* scratch,
                             size_t floats, size_t* peak, float* logits, float* hidden,
                             int64_t vocab) const {
  ForwardStep fs{be, rows, *layout_, Bump(scratch, floats, peak), GdnMode::kRecurrent};
  const float* g = m_.arch->mtp_forward(m_, fs, h_in);
  Mat head = m_.w.lm_head;  // its first rows: the first tokens' logits
  if (vocab > 0 && vocab < head.rows) head.rows = vocab;
  be.matmul(logits, g, head, rows.n);
  if (hidden)
    be.copy(hidden, g,
            static_cast<size_t>(rows.n) * static_cast<size_t>(m_.cfg.hidden) * sizeof(float));
}

void StepRunner::forward(Backend& be, const StepRows& rows, const MtpRows* mtp, float* scratch,
                         size_t floats, size_t* peak, float* all_logits, GdnMode mode,
                         std::span<const StepInput> outs) const {
  be.store_tokens(rows, tokens_);
  // Per-sequence outputs (speculative verification): the GDN traces go to the layers. Listed only
  // when a sequence has one, so a plain step allocates nothing here.
  std::vector<const GdnTrace*> traces;
  if (std::any_of(outs.begin(), outs.end(), [](const StepInput& o) { return o.trace; }))
    for (const StepInput& o : outs) traces.push_back(o.trace);
  ForwardStep fs{be, rows, *layout_, Bump(scratch, floats, peak), mode, mtp, traces};
  const float* h = m_.arch->forward(m_, fs);  // [rows, hidden], after the final norm

  // The LM head: every row's logits, or only each sequence's last row's.
  const int64_t H = m_.cfg.hidden, V = m_.cfg.vocab;
  const int n_seqs = static_cast<int>(rows.seqs.size());
  auto last_rows = [&](const float* x, int64_t width) -> const float* {
    if (n_seqs == 1) return x + static_cast<int64_t>(rows.n - 1) * width;
    float* out = fs.ws.take(n_seqs * width);
    for (int i = 0; i < n_seqs; ++i) {
      const SeqRows& s = rows.seqs[static_cast<size_t>(i)];
      be.copy(out + i * width, x + static_cast<int64_t>(s.first + s.count - 1) * width,
              static_cast<size_t>(width) * sizeof(float));
    }
    return out;
  };
  bool row_outputs = false;
  for (const StepInput& o : outs) row_outputs = row_outputs || o.row_logits || o.row_hidden;
  if (all_logits) {
    be.matmul(all_logits, h, m_.w.lm_head, rows.n);
    be.store_per_seq(rows, logits_, last_rows(all_logits, V), V);
  } else if (!row_outputs) {
    const float* hl = last_rows(h, H);
    float* logits = fs.ws.take(n_seqs * V);
    be.matmul(logits, hl, m_.w.lm_head, n_seqs);
    be.store_per_seq(rows, logits_, logits, V);
  } else {
    // Sequences that want every row's logits (speculative verification) get them in one product
    // each, their last row's doubling as the pending logits; the others share one product of
    // their last rows.
    float* hl = fs.ws.take(n_seqs * H);
    float* logits = fs.ws.take(n_seqs * V);
    std::vector<int> at(static_cast<size_t>(n_seqs), -1);  // row of `logits` per sequence
    int n_need = 0;
    for (int i = 0; i < n_seqs; ++i) {
      const SeqRows& q = rows.seqs[static_cast<size_t>(i)];
      const StepInput& o = outs[static_cast<size_t>(i)];
      const float* hq = h + static_cast<int64_t>(q.first) * H;
      if (o.row_hidden)
        be.copy(o.row_hidden, hq,
                static_cast<size_t>(q.count) * static_cast<size_t>(H) * sizeof(float));
      if (o.row_logits) {
        be.matmul(o.row_logits, hq, m_.w.lm_head, q.count);
        continue;
      }
      at[static_cast<size_t>(i)] = n_need;
      be.copy(hl + n_need++ * H, hq + static_cast<int64_t>(q.count - 1) * H,
              static_cast<size_t>(H) * sizeof(float));
    }
    if (n_need) be.matmul(logits, hl, m_.w.lm_head, n_need);
    // Into sequence order, last first: a sequence's row only moves down (at <= i).
    for (int i = n_seqs - 1; i >= 0; --i) {
      const SeqRows& q = rows.seqs[static_cast<size_t>(i)];
      const StepInput& o = outs[static_cast<size_t>(i)];
      const float* src = o.row_logits
                             ? o.row_logits + static_cast<int64_t>(q.count - 1) * V
                             : logits + static_cast<int64_t>(at[static_cast<size_t>(i)]) * V;
      if (src != logits + static_cast<int64_t>(i) * V)
        be.copy(logits + static_cast<int64_t>(i) * V, src, static_cast<size_t>(V) * sizeof(float));
    }
    be.store_per_seq(rows, logits_, logits, V);
  }
  be.advance_pos(rows, pos_);
}

}  // namespace flashrt
