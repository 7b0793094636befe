#include "core/host_memory.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace flashrt {

namespace {
constexpr size_t kHuge = size_t{2} << 20;
constexpr size_t kLine = 64;
}  // namespace

uint8_t* host_alloc(size_t bytes, const char* what, bool zero) {
  const size_t align = bytes >= kHuge ? kHuge : kLine;
  const size_t n = (bytes < kLine ? kLine : bytes + align - 1) / align * align;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(align, n));
  if (!p) fail("cannot allocate {} MB of {}", (n + (1 << 20) - 1) >> 20, what);
  // Advice only: where THP is off this does nothing and 4 KiB pages are used.
  if (align == kHuge) ::madvise(p, n, MADV_HUGEPAGE);
  if (zero) std::memset(p, 0, n);
  return p;
}

void host_free(void* p) {
  std::free(p);
}

std::shared_ptr<uint8_t> host_buffer(size_t bytes, const char* what) {
  if (bytes >= kHuge) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) fail("cannot allocate {} MB of {}", (bytes + (1 << 20) - 1) >> 20, what);
    return std::shared_ptr<uint8_t>(static_cast<uint8_t*>(p),
                                    [bytes](uint8_t* q) { ::munmap(q, bytes); });
  }
  auto* p = static_cast<uint8_t*>(std::malloc(bytes ? bytes : 1));
  if (!p) fail("cannot allocate {} MB of {}", (bytes + (1 << 20) - 1) >> 20, what);
  return std::shared_ptr<uint8_t>(p, [](uint8_t* q) { std::free(q); });
}

}  // namespace flashrt
