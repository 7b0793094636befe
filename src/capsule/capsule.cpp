#include "capsule/capsule.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "capsule/capsule_file.h"
#include "core/error.h"
#include "core/host_memory.h"

namespace flashrt {

const char* tier_name(Tier t) {
  switch (t) {
    case Tier::kDevice:
      return "device";
    case Tier::kHost:
      return "host";
    case Tier::kDisk:
      return "disk";
  }
  return "?";
}

bool tier_from_name(const std::string& s, Tier* out) {
  for (Tier t : {Tier::kDevice, Tier::kHost, Tier::kDisk})
    if (s == tier_name(t)) {
      *out = t;
      return true;
    }
  return false;
}

std::string Fingerprint::hex() const {
  return fmt::format("{:016x}{:016x}", hi, lo);
}

uint64_t Capsule::payload_bytes() const {
  uint64_t n = 0;
  for (const auto& e : entries) n += e.bytes;
  return n;
}

const CapsuleEntry* Capsule::find(const std::string& name) const {
  for (const auto& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

namespace {

// The manifest of `arena` at position `pos`: every region, live bytes only.
std::vector<CapsuleEntry> manifest_of(const StateLayout& layout, int64_t pos) {
  std::vector<CapsuleEntry> entries;
  uint64_t off = 0;
  for (const auto& r : layout.regions()) {
    CapsuleEntry e;
    e.name = r.name;
    e.dtype = r.dtype;
    e.kind = r.kind;
    e.shape = r.shape;
    if (r.kind == RegionKind::kPositional) e.shape[0] = r.live_rows(pos);
    e.bytes = r.live_bytes(pos);
    e.offset = off;
    off += e.bytes;
    entries.push_back(std::move(e));
  }
  return entries;
}

std::string shape_str(const std::vector<int64_t>& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

}  // namespace

Capsule snapshot_arena(const Arena& arena, Backend& be, int64_t pos, const Fingerprint& fp,
                       Tier tier, const std::string& path) {
  const StateLayout& layout = arena.layout();
  FLASHRT_CHECK(pos >= 0 && pos <= layout.max_ctx(),
                "snapshot at position {} outside the context {}", pos, layout.max_ctx());
  Capsule c;
  c.fingerprint = fp;
  c.pos = pos;
  c.entries = manifest_of(layout, pos);
  const uint64_t total = c.payload_bytes();
  if (tier == Tier::kDevice) {
    // Same memory as the slot: one device-to-device copy per region, no host round trip.
    c.tier = Tier::kDevice;
    c.data = be.alloc(total);
    for (size_t i = 0; i < c.entries.size(); ++i)
      if (c.entries[i].bytes)
        be.copy(c.data.get() + c.entries[i].offset, arena.region(static_cast<int>(i)),
                c.entries[i].bytes);
    return c;
  }
  c.tier = Tier::kHost;
  c.data = host_buffer(total, "capsule payload");
  for (size_t i = 0; i < c.entries.size(); ++i)
    if (c.entries[i].bytes)
      be.to_host(c.data.get() + c.entries[i].offset, arena.region(static_cast<int>(i)),
                 c.entries[i].bytes);
  if (tier == Tier::kDisk) {
    FLASHRT_CHECK(!path.empty(), "a disk capsule needs a file path");
    write_capsule_file(c, path);
    Capsule d;
    d.fingerprint = c.fingerprint;
    d.pos = c.pos;
    d.tier = Tier::kDisk;
    d.entries = std::move(c.entries);
    d.path = path;
    return d;
  }
  return c;
}

void check_compatible(const Capsule& c, const Arena& arena, const Fingerprint& fp) {
  const StateLayout& layout = arena.layout();
  if (!(c.fingerprint == fp)) {
    // Same model, other element type of a region: name the option that differs.
    for (const auto& e : c.entries) {
      const int i = layout.find(e.name);
      if (i < 0) continue;
      const auto& r = layout.regions()[static_cast<size_t>(i)];
      if (r.dtype != e.dtype)
        fail("capsule region '{}' is {}, this session's is {}", e.name, dtype_name(e.dtype),
             dtype_name(r.dtype));
    }
    fail("capsule belongs to another model or state layout (fingerprint {}, this session's is {})",
         c.fingerprint.hex(), fp.hex());
  }
  if (c.pos < 0 || c.pos > layout.max_ctx())
    fail("capsule holds {} tokens but this session's context is {}", c.pos, layout.max_ctx());
  if (c.entries.size() != layout.regions().size())
    fail("capsule has {} state regions, this session has {}", c.entries.size(),
         layout.regions().size());
  for (size_t i = 0; i < c.entries.size(); ++i) {
    const auto& e = c.entries[i];
    const auto& r = layout.regions()[i];
    std::vector<int64_t> want = r.shape;
    if (r.kind == RegionKind::kPositional) want[0] = r.live_rows(c.pos);
    if (e.name != r.name || e.dtype != r.dtype || e.kind != r.kind || e.shape != want)
      fail("capsule region {} is '{}' {} {} {}, this session expects '{}' {} {} {}", i, e.name,
           dtype_name(e.dtype), region_kind_name(e.kind), shape_str(e.shape), r.name,
           dtype_name(r.dtype), region_kind_name(r.kind), shape_str(want));
    if (e.bytes != r.live_bytes(c.pos))
      fail("capsule region '{}' holds {} bytes, expected {}", e.name, e.bytes, r.live_bytes(c.pos));
  }
}

void restore_arena(Arena& arena, Backend& be, const Capsule& c, const Fingerprint& fp,
                   const std::function<bool(const std::string&)>& only) {
  check_compatible(c, arena, fp);
  if (c.tier == Tier::kDisk) {
    const Capsule h = read_capsule_file(c.path);  // validated before anything is copied
    restore_arena(arena, be, h, fp, only);
    return;
  }
  for (size_t i = 0; i < c.entries.size(); ++i) {
    const auto& e = c.entries[i];
    if (!e.bytes || (only && !only(e.name))) continue;
    uint8_t* dst = arena.region(static_cast<int>(i));
    if (c.tier == Tier::kDevice)
      be.copy(dst, c.data.get() + e.offset, e.bytes);
    else
      be.to_device(dst, c.data.get() + e.offset, e.bytes);
  }
}

Capsule to_host(const Capsule& c, Backend& be) {
  if (c.tier == Tier::kHost) return c;
  if (c.tier == Tier::kDisk) return read_capsule_file(c.path);
  Capsule h = c;
  h.tier = Tier::kHost;
  const uint64_t total = c.payload_bytes();
  h.data = host_buffer(total, "capsule payload");
  be.to_host(h.data.get(), c.data.get(), total);
  return h;
}

}  // namespace flashrt
