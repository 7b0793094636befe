// Execution-state capsules: the live bytes of every region of a slot at a committed boundary, tied
// to the exact model and state layout by a fingerprint. A capsule lives in a tier: device memory
// (same memory as the slot), host memory, or a file on disk. This layer knows arenas and their
// region lists, never models.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "core/arena.h"

namespace flashrt {

enum class Tier : uint8_t { kDevice, kHost, kDisk };
const char* tier_name(Tier t);
bool tier_from_name(const std::string& s, Tier* out);

inline constexpr uint32_t kCapsuleFormatVersion = 1;

struct Fingerprint {
  uint64_t hi = 0, lo = 0;
  std::string hex() const;
  bool operator==(const Fingerprint&) const = default;
};

struct CapsuleEntry {
  std::string name;
  DType dtype = DType::U8;
  RegionKind kind = RegionKind::kFixed;
  std::vector<int64_t> shape;  // positional regions: axis 0 is the number of live rows (pos)
  uint64_t bytes = 0;          // live bytes
  uint64_t offset = 0;         // within the capsule's payload
  uint64_t checksum = 0;       // xxh3-64 of the live bytes (0 until computed)
};

class Capsule {
 public:
  Fingerprint fingerprint;
  int64_t pos = 0;
  Tier tier = Tier::kHost;
  std::vector<CapsuleEntry> entries;
  // Payload: all entries back to back (host or device memory); empty for disk capsules.
  std::shared_ptr<uint8_t> data;
  std::string path;  // disk tier: the capsule file

  uint64_t payload_bytes() const;
  const CapsuleEntry* find(const std::string& name) const;
};

// Copies the live bytes of every region of `arena` (position `pos`) into a new capsule in `tier`
// (`path` names the file for the disk tier). The arena is not modified.
Capsule snapshot_arena(const Arena& arena, Backend& be, int64_t pos, const Fingerprint& fp,
                       Tier tier, const std::string& path = "");

// Checks that `c` fits `arena` (fingerprint, the closed set of regions with their dtypes, kinds and
// shapes, position within the context) and throws an Error saying why not, before touching
// anything.
void check_compatible(const Capsule& c, const Arena& arena, const Fingerprint& fp);

// Copies a capsule back into the arena after check_compatible; a disk capsule is read and fully
// validated first. `only`, when set, restricts the copy to regions it accepts (for experiments
// that show which regions carry state).
void restore_arena(Arena& arena, Backend& be, const Capsule& c, const Fingerprint& fp,
                   const std::function<bool(const std::string&)>& only = nullptr);

// Brings a device-tier capsule to host memory (host capsules are returned as they are).
Capsule to_host(const Capsule& c, Backend& be);

}  // namespace flashrt
