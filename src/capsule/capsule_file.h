// The capsule file: versioned header, fingerprint, manifest (name, dtype, kind, shape, live bytes,
// offset, xxh3-64 checksum), then payloads, optionally zstd-compressed. Little-endian.
//   header   "FLASHCAP" u32 version  u32 flags(bit0 zstd)  u8[16] fingerprint  i64 pos
//            u32 entries  u32 0  u64 manifest_bytes  u64 xxh3(header[0..56) + manifest)
//   manifest per entry: u16 name_len, name, u8 dtype, u8 kind, u8 ndim, u8 0, i64 shape[ndim],
//            u64 raw_bytes, u64 stored_bytes, u64 offset, u64 checksum(raw)
//   payloads from the first 64-byte boundary after the manifest
// Written to a temporary file, fsynced and renamed, so a crash never leaves a partial capsule under
// the final name. Reading validates every field and checksum before returning anything.
#pragma once
#include <cstdint>
#include <string>

#include "capsule/capsule.h"

namespace flashrt {

struct CapsuleWriteOptions {
  bool zstd = false;
  int zstd_level = 3;
};

// Writes a host-tier capsule (computing missing checksums). Returns the file size.
uint64_t write_capsule_file(const Capsule& c, const std::string& path,
                            const CapsuleWriteOptions& o = {});

// Reads and validates a capsule file completely (header, manifest, sizes, checksums) into a host
// capsule; any problem is an Error naming the file and what is wrong.
Capsule read_capsule_file(const std::string& path);
// The same over bytes in memory (for the fuzz target).
Capsule parse_capsule_bytes(const uint8_t* data, size_t size, const std::string& what);

struct CapsuleFileInfo {
  uint32_t version = 0;
  bool zstd = false;
  uint64_t file_bytes = 0;
  Capsule capsule;  // manifest only (no payload)
  std::vector<uint64_t> stored_bytes;
};
// Reads header and manifest only (validated), without the payloads.
CapsuleFileInfo inspect_capsule_file(const std::string& path);

}  // namespace flashrt
