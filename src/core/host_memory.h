// Host allocations for large, long-lived buffers: slot arenas, CPU weights, activations.
//
// Buffers of 2 MiB or more are 2 MiB-aligned and marked for transparent huge pages. The KV cache
// is read with a stride of (KV heads x head_dim) elements, so consecutive keys of one head sit in
// different 4 KiB pages: with small pages, decode attention spends its time on TLB misses.
#pragma once
#include <cstddef>
#include <cstdint>

namespace flashrt {

// Zero-initialised when `zero`; never returns null (throws flashrt::Error naming `what`).
uint8_t* host_alloc(size_t bytes, const char* what, bool zero = false);
void host_free(void* p);

}  // namespace flashrt
