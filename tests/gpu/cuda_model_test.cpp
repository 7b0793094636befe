// Whole models on the GPU through Session, against the CPU backend and the transformers (float64)
// references in ../shared:
//  - reference models (qwen3, qwen3-tied, qwen35 in both GDN modes): every position's logits within
//    2e-4 x logit scale of the reference (the CPU's own bound) and 1e-4 x scale of the CPU backend;
//    every slot region after the prompt within 1e-4 (relative norm) of the CPU's, integer regions
//    equal; the greedy continuation (device argmax) equal to the reference's.
//  - trained pycoder models: logits within 2e-4 x scale of the reference, 48-token greedy
//    continuations (token 0 banned, as in transformers' run) identical; q8_0 GGUFs within
//    1e-4 x scale of the CPU running the same quantized weights.
//  - captured decode (CUDA graphs) against eager decode: same tokens, bit-identical logits; a
//    prompt fed one token at a time (every step through run_graph, the first from position 0)
//    against the CPU.
//  - the slot's device arena: byte copies (Backend::copy) and capsules (device and host tiers)
//    restore byte-exactly and decode token-identically; restoring only KV diverges on the hybrid.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/session.h"
#include "engine/step_runner.h"
#include "gpu_test_util.h"
#include "models/model_fixtures.h"
#ifdef FLASHRT_HAVE_CUDA
#include "backends/cuda/cuda_backend.h"
#endif

namespace flashrt::testing {
namespace {

// "T96." / "p0.": the prefix of a case's tensors in reference.safetensors (built by appends:
// GCC 12 warns falsely on "T" + std::string).
std::string prefix(char c, int n) {
  std::string s(1, c);
  s += std::to_string(n);
  s += '.';
  return s;
}

SamplerParams greedy_no_eos() {
  SamplerParams p = SamplerParams::greedy();
  p.logit_bias = {{0, -INFINITY}};
  return p;
}

// The live bytes of every region, read back to the host.
std::vector<std::vector<uint8_t>> live_regions(const Session& s) {
  const StateLayout& l = s.arena().layout();
  std::vector<std::vector<uint8_t>> out;
  for (size_t i = 0; i < l.regions().size(); ++i) {
    std::vector<uint8_t> b(l.regions()[i].live_bytes(s.pos()));
    s.backend().to_host(b.data(), s.arena().region(static_cast<int>(i)), b.size());
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<float> as_floats(const std::vector<uint8_t>& b) {
  std::vector<float> f(b.size() / 4);
  std::memcpy(f.data(), b.data(), f.size() * 4);
  return f;
}

// Float regions within `tol` (relative norm), all others equal.
void expect_same_state(const Session& gpu, const Session& cpu, double tol) {
  const auto g = live_regions(gpu), c = live_regions(cpu);
  const auto& regions = gpu.arena().layout().regions();
  ASSERT_EQ(g.size(), c.size());
  for (size_t i = 0; i < g.size(); ++i) {
    if (regions[i].dtype == DType::F32)
      EXPECT_LT(rel_err(as_floats(g[i]), as_floats(c[i])), tol) << regions[i].name;
    else
      EXPECT_EQ(g[i], c[i]) << regions[i].name;
  }
}

TEST(CudaModel, ReferenceModelsMatchCpuAndTransformers) {
  FLASHRT_REQUIRE_GPU();
  const auto gpu = make_backend("cuda");
  const auto cpu = make_cpu_backend();
  for (const std::string name : {"qwen3", "qwen3-tied", "qwen35"}) {
    const std::string dir = ref_model_dir(name);
    const Reference ref(dir);
    std::ifstream jf(dir + "/reference.json");
    const auto meta = nlohmann::json::parse(jf);
    const auto gm = load_model_on(*gpu, dir);
    const auto cm = load_model(dir);
    const bool hybrid = name == "qwen35";
    for (GdnMode mode :
         hybrid ? std::vector{GdnMode::kAuto, GdnMode::kRecurrent} : std::vector{GdnMode::kAuto}) {
      for (int T : meta["lens"].get<std::vector<int>>()) {
        SCOPED_TRACE(name + " T=" + std::to_string(T) +
                     (mode == GdnMode::kRecurrent ? " recurrent" : " auto"));
        const std::string p = prefix('T', T);
        const auto ids = ref.ids(p + "input_ids");
        const auto want = ref.floats(p + "logits");
        const auto greedy = ref.ids(p + "greedy");
        SessionOptions so;
        so.max_ctx = T + static_cast<int64_t>(greedy.size()) + 1;
        so.gdn_mode = mode;
        Session gs(*gm, *gpu, so), cs(*cm, *cpu, so);
        const auto got = gs.forward_all_logits(ids);
        const auto base = cs.forward_all_logits(ids);
        ASSERT_EQ(got.size(), want.size());
        const float scale = std::max(1.0f, max_abs(want.data(), want.size()));
        EXPECT_LE(max_abs_diff(got.data(), want.data(), want.size()), 2e-4f * scale);
        EXPECT_LE(max_abs_diff(got.data(), base.data(), base.size()), 1e-4f * scale);
        expect_same_state(gs, cs, 1e-4);
        EXPECT_EQ(gs.generate(static_cast<int>(greedy.size()), SamplerParams::greedy(), {}).tokens,
                  greedy);
      }
    }
  }
}

TEST(CudaModel, TrainedModelsGiveTheReferenceTokens) {
  FLASHRT_REQUIRE_GPU();
  const auto gpu = make_backend("cuda");
  for (const std::string name : {"pycoder-hybrid-12m", "pycoder-dense-7m"}) {
    const std::string dir = trained_model_dir(name);
    const Reference ref(dir);
    for (const std::string format : {"hf", "bf16"}) {
      const auto m = load_model_on(*gpu, model_path(trained_weights(name), format));
      for (int i = 0; i < 3; ++i) {
        const std::string p = prefix('p', i);
        SCOPED_TRACE(name + " " + format + " " + p);
        const auto ids = ref.ids(p + "input_ids");
        const auto want = ref.floats(p + "logits");
        const auto greedy = ref.ids(p + "greedy");
        SessionOptions so;
        so.max_ctx = 128;
        Session s(*m, *gpu, so);
        const auto got = s.forward_all_logits(ids);
        ASSERT_EQ(got.size(), want.size());
        const float scale = std::max(1.0f, max_abs(want.data(), want.size()));
        EXPECT_LE(max_abs_diff(got.data(), want.data(), want.size()), 2e-4f * scale);
        EXPECT_EQ(s.generate(static_cast<int>(greedy.size()), greedy_no_eos(), {}).tokens, greedy);
      }
    }
  }
}

TEST(CudaModel, Q8WeightsMatchTheCpuOnTheSameWeights) {
  FLASHRT_REQUIRE_GPU();
  const auto gpu = make_backend("cuda");
  const auto cpu = make_cpu_backend();
  for (const std::string name : {"pycoder-hybrid-12m", "pycoder-dense-7m"}) {
    SCOPED_TRACE(name);
    const std::string dir = trained_model_dir(name);
    const auto ids = Reference(dir).ids("p0.input_ids");
    const auto gm = load_model_on(*gpu, model_path(trained_weights(name), "q8_0"));
    const auto cm = load_model(model_path(trained_weights(name), "q8_0"));
    SessionOptions so;
    so.max_ctx = 128;
    Session gs(*gm, *gpu, so), cs(*cm, *cpu, so);
    const auto got = gs.forward_all_logits(ids);
    const auto want = cs.forward_all_logits(ids);
    const float scale = std::max(1.0f, max_abs(want.data(), want.size()));
    EXPECT_LE(max_abs_diff(got.data(), want.data(), want.size()), 1e-4f * scale);
    // Decode steps (GEMV over the repacked q8_0 rows).
    gs.generate(8, SamplerParams::greedy(), {});
    cs.generate(8, SamplerParams::greedy(), {});
    const auto gl = gs.logits(), cl = cs.logits();
    EXPECT_LE(max_abs_diff(gl.data(), cl.data(), cl.size()), 1e-4f * scale);
  }
}

#ifdef FLASHRT_HAVE_CUDA
TEST(CudaModel, CapturedDecodeEqualsEagerDecode) {
  FLASHRT_REQUIRE_GPU();
  CudaOptions eager_opt;
  eager_opt.graphs = false;
  const auto graphs = make_cuda_backend(CudaOptions{});
  const auto eager = make_cuda_backend(eager_opt);
  const auto cpu = make_cpu_backend();
  for (const std::string name : {"pycoder-hybrid-12m", "pycoder-dense-7m"}) {
    SCOPED_TRACE(name);
    const std::string dir = trained_model_dir(name);
    const auto ids = Reference(dir).ids("p1.input_ids");
    const auto mg = load_model_on(*graphs, trained_weights(name));
    const auto me = load_model_on(*eager, trained_weights(name));
    const auto mc = load_model(trained_weights(name));
    SessionOptions so;
    so.max_ctx = 160;
    Session a(*mg, *graphs, so), b(*me, *eager, so), c(*mc, *cpu, so);
    a.append(ids);
    b.append(ids);
    c.append(ids);
    const auto ta = a.generate(40, SamplerParams::greedy(), {}).tokens;
    EXPECT_EQ(ta, b.generate(40, SamplerParams::greedy(), {}).tokens);
    EXPECT_EQ(a.logits(), b.logits());  // the same kernels: the same bits
    EXPECT_EQ(ta, c.generate(40, SamplerParams::greedy(), {}).tokens);

    // The prompt one token at a time: every step captured or replayed, starting at position 0.
    Session d(*mg, *graphs, so), e(*mc, *cpu, so);
    for (int32_t id : ids) d.append(std::vector<int32_t>{id});
    e.append(ids);
    const auto dl = d.logits(), el = e.logits();
    const float scale = std::max(1.0f, max_abs(el.data(), el.size()));
    EXPECT_LE(max_abs_diff(dl.data(), el.data(), el.size()), 1e-4f * scale);
    EXPECT_EQ(d.generate(16, SamplerParams::greedy(), {}).tokens,
              e.generate(16, SamplerParams::greedy(), {}).tokens);
  }
}
#endif

// Several sequences in one step of a shared StepRunner (decode rows at different positions, one
// slot each, the step recorded as a graph and replayed): each sequence's logits match its solo
// run. Steps of at most 8 rows stay on the GEMV path like the solo decode steps.
TEST(CudaModel, SequencesOfAStepGetTheirSoloLogits) {
  FLASHRT_REQUIRE_GPU();
  const auto gpu = make_backend("cuda");
  const std::string name = "pycoder-hybrid-12m";
  const Reference ref(trained_model_dir(name));
  const auto m = load_model_on(*gpu, trained_weights(name));
  SessionOptions so;
  so.max_ctx = 160;
  const std::vector<std::vector<int32_t>> prompts = {
      ref.ids("p0.input_ids"), ref.ids("p2.input_ids"), {5, 6}};
  std::vector<std::unique_ptr<Session>> solo, together;
  for (const auto& p : prompts) {
    solo.push_back(std::make_unique<Session>(*m, *gpu, so));
    together.push_back(std::make_unique<Session>(*m, *gpu, so));
    solo.back()->append(p);
    together.back()->append(p);
  }
  StepRunner runner(*m, *gpu, together[0]->arena().layout_ptr(), 8, 3);
  for (int step = 0; step < 6; ++step) {
    std::vector<std::vector<int32_t>> next(prompts.size());
    std::vector<StepInput> in;
    for (size_t i = 0; i < prompts.size(); ++i) {
      const auto l = solo[i]->logits();
      const auto t = together[i]->logits();
      const float scale = std::max(1.0f, max_abs(l.data(), l.size()));
      EXPECT_LE(max_abs_diff(t.data(), l.data(), l.size()), 1e-5f * scale)
          << "sequence " << i << " step " << step;
      next[i] = {argmax(l)};
      solo[i]->append(next[i]);
      in.push_back({&together[i]->arena(), next[i], together[i]->pos()});
    }
    runner.run(in, nullptr, GdnMode::kAuto, &runner);  // recorded once, then replayed
    for (auto& s : together) s->sync_from_arena();
  }
}

TEST(CudaModel, DeviceArenaRestoresByteExactly) {
  FLASHRT_REQUIRE_GPU();
  const auto gpu = make_backend("cuda");
  for (const std::string name : {"pycoder-hybrid-12m", "pycoder-dense-7m"}) {
    SCOPED_TRACE(name);
    const std::string dir = trained_model_dir(name);
    const auto ids = Reference(dir).ids("p2.input_ids");
    const auto m = load_model_on(*gpu, trained_weights(name));
    SessionOptions so;
    so.max_ctx = 160;
    Session s(*m, *gpu, so);
    s.append(ids);
    s.generate(5, SamplerParams::greedy(), {});  // a pending token; graphs captured
    const Arena& arena = s.arena();
    const size_t total = arena.layout().total_bytes();
    auto copy = gpu->alloc(total);
    gpu->copy(copy.get(), arena.base(), total);
    std::vector<uint8_t> before(total);
    gpu->to_host(before.data(), arena.base(), total);
    const int64_t pos = s.pos();
    const Capsule dev = s.snapshot(Tier::kDevice), host = s.snapshot(Tier::kHost);

    const auto first = s.generate(20, SamplerParams::greedy(), {}).tokens;
    const auto first_logits = s.logits();

    gpu->copy(arena.base(), copy.get(), total);
    s.sync_from_arena();
    std::vector<uint8_t> after(total);
    gpu->to_host(after.data(), arena.base(), total);
    EXPECT_EQ(s.pos(), pos);
    EXPECT_TRUE(after == before) << "the arena differs after a byte copy back";
    EXPECT_EQ(s.generate(20, SamplerParams::greedy(), {}).tokens, first);
    EXPECT_EQ(s.logits(), first_logits);

    for (const Capsule* c : {&dev, &host}) {
      SCOPED_TRACE(tier_name(c->tier));
      s.restore(*c);
      EXPECT_EQ(s.pos(), pos);
      std::vector<uint8_t> live(total);
      gpu->to_host(live.data(), arena.base(), total);
      const StateLayout& l = arena.layout();
      for (size_t i = 0; i < l.regions().size(); ++i)
        EXPECT_EQ(0, std::memcmp(live.data() + l.offsets()[i], before.data() + l.offsets()[i],
                                 l.regions()[i].live_bytes(pos)))
            << l.regions()[i].name;
      EXPECT_EQ(s.generate(20, SamplerParams::greedy(), {}).tokens, first);
      EXPECT_EQ(s.logits(), first_logits);
    }

    // What a paged KV cache restores: everything but the Gated DeltaNet state.
    s.restore_regions(host, [](const std::string& r) { return r.rfind("gdn.", 0) != 0; });
    const auto kv_only = s.generate(20, SamplerParams::greedy(), {}).tokens;
    if (m->cfg.n_layers_of(LayerKind::kGatedDeltaNet) > 0)
      EXPECT_NE(kv_only, first) << "the Gated DeltaNet state must be load-bearing";
    else
      EXPECT_EQ(kv_only, first);
  }
}

}  // namespace
}  // namespace flashrt::testing
