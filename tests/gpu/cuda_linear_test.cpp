// Matrix products and embedding lookups on the GPU against the CPU backend, for every weight type,
// decode (GEMV, T <= 8) and prefill (cuBLAS, T > 8) shapes, and odd sizes that take the scalar
// paths. Tolerances (||gpu - cpu|| / ||cpu||):
//   GEMV, and the f32 SGEMM of f32 / f16 / q8_0 / q4_0 weights: 1e-5 (f32 arithmetic throughout,
//   only the summation order differs);
//   bf16 weights with split bf16 activations (the default): 5e-5 (bf16's rounding of the low term,
//   2^-16 relative per element);
//   bf16 weights with plain bf16 activations (FLASHRT_CUDA_GEMM=bf16): 5e-3.
#include <tuple>

#include "gpu_test_util.h"
#ifdef FLASHRT_HAVE_CUDA
#include "backends/cuda/cuda_backend.h"
#endif

namespace flashrt::testing {
namespace {

double matmul_error(Backend& gpu, Backend& cpu, DType t, int N, int K, int T, uint32_t seed) {
  const TestMat w(gpu, t, N, K, seed);
  const auto x = randn(static_cast<size_t>(T) * K, seed + 1);
  std::vector<float> want(static_cast<size_t>(T) * N);
  cpu.matmul(want.data(), x.data(), w.cpu, T);
  Buf<float> dx(gpu, x);
  auto out = Buf<float>::poisoned(gpu, want.size());
  gpu.matmul(out.get(), dx.get(), w.dev, T);
  return rel_err(out.host(), want);
}

TEST(CudaLinear, MatmulEveryWeightTypeAndShape) {
  FLASHRT_REQUIRE_GPU();
  const auto gpu = make_backend("cuda");
  const auto cpu = make_cpu_backend();
  uint32_t seed = 1;
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    for (auto [N, K, T] : {std::tuple{1, 32, 1},
                           {7, 64, 3},
                           {33, 96, 5},
                           {130, 256, 8},
                           {77, 160, 9},
                           {200, 512, 37},
                           {129, 1024, 130},
                           {3000, 320, 1},
                           {511, 2048, 2}}) {
      const double tol = T > 8 && t == DType::BF16 ? 5e-5 : 1e-5;
      EXPECT_LT(matmul_error(*gpu, *cpu, t, N, K, T, seed++), tol)
          << dtype_name(t) << " N=" << N << " K=" << K << " T=" << T;
    }
  }
  // Rows that are not a whole number of 16-byte units take the scalar GEMV.
  for (DType t : {DType::F32, DType::F16, DType::BF16})
    for (auto [N, K, T] : {std::tuple{13, 37, 1}, {13, 37, 6}, {5, 100, 2}, {9, 37, 20}})
      EXPECT_LT(matmul_error(*gpu, *cpu, t, N, K, T, seed++), 1e-5)
          << dtype_name(t) << " N=" << N << " K=" << K << " T=" << T;
}

#ifdef FLASHRT_HAVE_CUDA
TEST(CudaLinear, PlainBf16GemmIsWithinBf16Rounding) {
  FLASHRT_REQUIRE_GPU();
  CudaOptions o;
  o.split_bf16 = false;
  const auto gpu = make_cuda_backend(o);
  const auto cpu = make_cpu_backend();
  for (auto [N, K, T] : {std::tuple{200, 512, 37}, {129, 1024, 130}})
    EXPECT_LT(matmul_error(*gpu, *cpu, DType::BF16, N, K, T, 99), 5e-3) << "N=" << N << " T=" << T;
}
#endif

TEST(CudaLinear, EmbedEveryTableTypeExactly) {
  FLASHRT_REQUIRE_GPU();
  const auto gpu = make_backend("cuda");
  const auto cpu = make_cpu_backend();
  const int V = 301, H = 96;
  const std::vector<int32_t> ids = {0, 300, 17, 17, 150, 299, 1};
  const int T = static_cast<int>(ids.size());
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    const TestMat table(*gpu, t, V, H, 7);
    std::vector<float> want(static_cast<size_t>(T) * H);
    cpu->embed(want.data(), table.cpu, ids.data(), T);
    Buf<int32_t> dids(*gpu, ids);
    auto out = Buf<float>::poisoned(*gpu, want.size());
    gpu->embed(out.get(), table.dev, dids.get(), T);
    EXPECT_EQ(out.host(), want) << dtype_name(t);  // dequantization is exact
  }
}

}  // namespace
}  // namespace flashrt::testing
