// What crosses between host and backend memory per generated token: a greedy decode step uploads
// its step arrays once and reads back only the token (the argmax writes it into the slot itself);
// the pending token and the position are host mirrors, never read back. On a GPU each transfer is
// a stream sync, so this is latency.
#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/session.h"
#include "models/model_fixtures.h"

namespace flashrt::testing {
namespace {

// The CPU backend, counting the transfers the engine asks for.
class CountingBackend final : public Backend {
 public:
  explicit CountingBackend(std::unique_ptr<Backend> be) : be_(std::move(be)) {}
  int to_device_calls = 0, to_host_calls = 0;
  int fail_at_embed = -1;  // the embed call (one per step) that throws, counting from 0
  int embeds = 0;

  std::string name() const override { return be_->name(); }
  bool supports_kv_dtype(DType t) const override { return be_->supports_kv_dtype(t); }
  std::unique_ptr<Arena> new_arena(std::shared_ptr<const StateLayout> l) override {
    return be_->new_arena(std::move(l));
  }
  std::shared_ptr<uint8_t> alloc(size_t n) override { return be_->alloc(n); }
  void upload_weights(std::span<const NamedMat> w) override { be_->upload_weights(w); }
  float* scratch(size_t n) override { return be_->scratch(n); }
  void to_device(void* d, const void* s, size_t n) override {
    ++to_device_calls;
    be_->to_device(d, s, n);
  }
  void to_host(void* d, const void* s, size_t n) override {
    ++to_host_calls;
    be_->to_host(d, s, n);
  }
  void copy(void* d, const void* s, size_t n) override { be_->copy(d, s, n); }
  void fill_zero(void* d, size_t n) override { be_->fill_zero(d, n); }
  void run_graph(const void* key, const std::function<void()>& f) override {
    be_->run_graph(key, f);
  }
  void embed(float* o, const Mat& t, const int32_t* ids, int T) override {
    if (embeds++ == fail_at_embed) fail("injected failure");
    be_->embed(o, t, ids, T);
  }
  void rmsnorm(float* o, int64_t os, const float* x, int64_t xs, const float* w, int rows, int dim,
               float eps) override {
    be_->rmsnorm(o, os, x, xs, w, rows, dim, eps);
  }
  void matmul(float* o, const float* x, const Mat& w, int T) override { be_->matmul(o, x, w, T); }
  void add(float* x, const float* y, int64_t n) override { be_->add(x, y, n); }
  void swiglu(float* o, const float* g, const float* u, int64_t n) override {
    be_->swiglu(o, g, u, n);
  }
  void sigmoid_gate(float* x, const float* g, int rows, int dim, int64_t gs) override {
    be_->sigmoid_gate(x, g, rows, dim, gs);
  }
  void gated_rmsnorm(float* o, const float* x, const float* z, const float* w, int rows, int dim,
                     float eps) override {
    be_->gated_rmsnorm(o, x, z, w, rows, dim, eps);
  }
  void rope(float* x, const StepRows& r, int h, int hd, int rot, double th) override {
    be_->rope(x, r, h, hd, rot, th);
  }
  void store_rows(const StepRows& r, size_t reg, DType t, const float* s, int64_t e) override {
    be_->store_rows(r, reg, t, s, e);
  }
  void store_tokens(const StepRows& r, size_t reg) override { be_->store_tokens(r, reg); }
  void store_per_seq(const StepRows& r, size_t reg, const float* s, int64_t n) override {
    be_->store_per_seq(r, reg, s, n);
  }
  void load_per_seq(const StepRows& r, size_t reg, float* d, int64_t n) override {
    be_->load_per_seq(r, reg, d, n);
  }
  void advance_pos(const StepRows& r, size_t reg) override { be_->advance_pos(r, reg); }
  void attention(const StepRows& r, const AttentionArgs& a) override { be_->attention(r, a); }
  void conv1d_silu(const StepRows& r, float* o, const float* x, size_t st, const float* w, int C,
                   int K) override {
    be_->conv1d_silu(r, o, x, st, w, C, K);
  }
  void gated_delta_net(const StepRows& r, const GdnArgs& a) override { be_->gated_delta_net(r, a); }
  int32_t argmax(const float* l, int64_t n, int32_t* dst) override {
    return be_->argmax(l, n, dst);
  }

 private:
  std::unique_ptr<Backend> be_;
};

TEST(EngineSession, AGreedyTokenCostsOneUploadAndNoReadBack) {
  const auto model = load_model(trained_model_dir("pycoder-hybrid-12m"));
  CountingBackend be(make_cpu_backend());
  Session s(*model, be);
  s.append(std::vector<int32_t>{3, 4, 5});
  s.next_token(SamplerParams::greedy());
  be.to_device_calls = be.to_host_calls = 0;
  const int n = 20;
  const auto r = s.generate(n, SamplerParams::greedy(), {});
  ASSERT_EQ(r.tokens.size(), static_cast<size_t>(n));
  // The CPU returns the argmax without a transfer; a GPU reads back its 4 bytes (one to_host).
  EXPECT_EQ(be.to_device_calls, n) << "one step-array upload per token";
  EXPECT_EQ(be.to_host_calls, 0);
  // The mirrors say what the arena holds.
  const int64_t pos = s.pos();
  const int32_t pending = s.pending();
  s.sync_from_arena();
  EXPECT_EQ(s.pos(), pos);
  EXPECT_EQ(s.pending(), pending);
}

TEST(EngineSession, ASampledTokenWritesTheRngAndThePendingToken) {
  const auto model = load_model(trained_model_dir("pycoder-hybrid-12m"));
  CountingBackend be(make_cpu_backend());
  Session s(*model, be);
  s.append(std::vector<int32_t>{3, 4, 5});
  s.seed(1);
  SamplerParams p;
  s.next_token(p);
  be.to_device_calls = be.to_host_calls = 0;
  s.generate(10, p, {});
  EXPECT_EQ(be.to_device_calls, 30);  // step arrays, RNG, pending token
  EXPECT_EQ(be.to_host_calls, 10);    // the logits
}

TEST(EngineSession, AFailureAfterThePendingTokenWasFedDoesNotFeedItAgain) {
  const auto model = load_model(trained_model_dir("pycoder-hybrid-12m"));
  CountingBackend be(make_cpu_backend());
  SessionOptions o;
  o.max_batch = 2;
  Session s(*model, be, o);
  s.append(std::vector<int32_t>{3, 4, 5});
  s.next_token(SamplerParams::greedy());  // pending
  const int64_t pos = s.pos();
  be.fail_at_embed = be.embeds + 1;  // [pending, 7] runs, [8, 9] fails
  EXPECT_THROW(s.append(std::vector<int32_t>{7, 8, 9}), Error);
  EXPECT_EQ(s.pending(), -1);
  EXPECT_EQ(s.pos(), pos + 2);
  s.sync_from_arena();
  EXPECT_EQ(s.pending(), -1);
  EXPECT_EQ(s.pos(), pos + 2);
}

}  // namespace
}  // namespace flashrt::testing
