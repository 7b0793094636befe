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
// A buffer owned by a shared_ptr, for capsule payloads: allocated per snapshot, so the cost of
// faulting it in is most of a host-tier snapshot. Large ones are mapped with MAP_POPULATE (the
// kernel fills the pages in one pass: 424 MB in ~135 ms here, against ~260 ms faulting 4 KiB pages
// one by one and ~1 s for 2 MiB pages that first need compaction); small ones come from malloc.
std::shared_ptr<uint8_t> host_buffer(size_t bytes, const char* what);

}  // namespace flashrt
