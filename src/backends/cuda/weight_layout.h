// How weights are laid out in device memory. Plain types (f32, f16, bf16) are stored as on the
// host. Quantized matrices are repacked so that each row's quants are contiguous and 16-byte
// aligned, with all f16 scales after them:
//   q8_0: qs int8 [rows, cols]          then d f16 [rows, cols / 32]
//   q4_0: qs u8   [rows, cols / 2]      then d f16 [rows, cols / 32]
//         (per 32-element block, 16 bytes: byte j holds element j low, element j + 16 high)
// That is the same number of bytes as llama.cpp's 34- and 18-byte blocks (Mat::bytes() still
// holds), but every GEMV load of quants is a 16-byte one.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace flashrt::cuda {

// Writes `m` (host memory, llama.cpp layout) into `dst` (host memory, m.bytes() bytes) in the
// device layout above.
void to_device_layout(const Mat& m, uint8_t* dst);

}  // namespace flashrt::cuda
