// GPU-side pieces that need no GPU: the repacked quantized layout of weight_layout.h holds every
// value of llama.cpp's blocks, and asking for the CUDA backend without a device fails cleanly.
// These run on every machine.
#include "core/error.h"
#include "gpu_test_util.h"
#ifdef FLASHRT_HAVE_CUDA
#include "backends/cuda/weight_layout.h"
#include "core/half.h"
#endif

namespace flashrt::testing {
namespace {

#ifdef FLASHRT_HAVE_CUDA
// Element (r, k) of a matrix in the CUDA layout, read as weight_layout.h describes it.
float repacked_at(const std::vector<uint8_t>& b, DType t, int64_t rows, int64_t cols, int64_t r,
                  int64_t k) {
  uint16_t d;
  if (t == DType::Q8_0) {
    std::memcpy(&d, b.data() + rows * cols + (r * (cols / 32) + k / 32) * 2, 2);
    return f16_to_f32(d) * static_cast<float>(static_cast<int8_t>(b[r * cols + k]));
  }
  std::memcpy(&d, b.data() + rows * cols / 2 + (r * (cols / 32) + k / 32) * 2, 2);
  const int j = static_cast<int>(k % 32);
  const uint8_t byte = b[r * cols / 2 + (k / 32) * 16 + (j & 15)];
  return f16_to_f32(d) * static_cast<float>((j < 16 ? byte & 0x0f : byte >> 4) - 8);
}

TEST(CudaHost, RepackedQuantizedLayoutHoldsEveryValue) {
  const int64_t rows = 7, cols = 96;
  const auto f = randn(static_cast<size_t>(rows * cols), 3);
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    std::vector<uint8_t> blocks(dtype_bytes(t, rows * cols));
    const size_t rb = dtype_bytes(t, cols);
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(t, f.data() + r * cols, blocks.data() + rb * static_cast<size_t>(r), cols);
    std::vector<uint8_t> dev(blocks.size());
    cuda::to_device_layout(Mat{blocks.data(), t, rows, cols}, dev.data());
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(t, blocks.data() + rb * static_cast<size_t>(r), row.data(), cols);
      for (int64_t k = 0; k < cols; ++k)
        ASSERT_EQ(repacked_at(dev, t, rows, cols, r, k), row[static_cast<size_t>(k)])
            << dtype_name(t) << " r=" << r << " k=" << k;
    }
  }
}
#endif

TEST(CudaHost, AskingForCudaWithoutADeviceIsAnError) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_THROW(make_backend("cuda"), Error);
}

}  // namespace
}  // namespace flashrt::testing
