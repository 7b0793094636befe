// Host allocations for large, long-lived buffers: slot arenas, CPU weights, activations.
//
// Buffers of 2 MiB or more are 2 MiB-aligned and marked for transparent huge pages. The KV cache
// is read with a stride of (KV heads x head_dim) elements, so consecutive keys of one head sit in
// different 4 KiB pages: with small pages, decode attention spends its time on TLB misses.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace flashrt {

// Zero-initialised when `zero`; never returns null (throws flashrt::Error naming `what`).
uint8_t* host_alloc(size_t bytes, const char* what, bool zero = false);
void host_free(void* p);
// host_alloc owned by a shared_ptr (capsule payloads: a snapshot of a long context is hundreds of
// MB, and faulting it in 2 MiB pages instead of 4 KiB ones is most of a host-tier snapshot's cost).
std::shared_ptr<uint8_t> host_buffer(size_t bytes, const char* what);

}  // namespace flashrt
