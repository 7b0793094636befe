#include "capsule/capsule_file.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "core/host_memory.h"
#include "core/mapped_file.h"

namespace flashrt {

namespace {

constexpr char kMagic[8] = {'F', 'L', 'A', 'S', 'H', 'C', 'A', 'P'};
constexpr size_t kHeaderBytes = 64;
constexpr uint32_t kFlagZstd = 1;
constexpr int kMaxDims = 8;

size_t align64(size_t x) {
  return (x + 63) / 64 * 64;
}

template <class T>
void put(std::vector<uint8_t>& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof v);
}

// Bounds-checked little-endian reader.
class Reader {
 public:
  Reader(const uint8_t* d, size_t n, const std::string& what) : d_(d), n_(n), what_(what) {}
  template <class T>
  T get(const char* field) {
    if (sizeof(T) > n_ - pos_) fail("{}: truncated capsule (while reading {})", what_, field);
    T v;
    std::memcpy(&v, d_ + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::string bytes(size_t k, const char* field) {
    if (k > n_ - pos_) fail("{}: truncated capsule (while reading {})", what_, field);
    std::string s(reinterpret_cast<const char*>(d_ + pos_), k);
    pos_ += k;
    return s;
  }
  size_t pos() const { return pos_; }

 private:
  const uint8_t* d_;
  size_t n_, pos_ = 0;
  const std::string& what_;
};

uint64_t checksum(const uint8_t* p, size_t n) {
  return XXH3_64bits(p, n);
}

struct Parsed {
  Capsule capsule;  // no payload
  uint32_t version = 0;
  bool zstd = false;
  std::vector<uint64_t> stored;
  size_t payload_start = 0;
};

// Header and manifest, validated against the file size.
Parsed parse_manifest(const uint8_t* data, size_t size, const std::string& what) {
  Parsed p;
  Reader r(data, size, what);
  if (size < kHeaderBytes || std::memcmp(data, kMagic, 8) != 0)
    fail("{}: not a flashrt capsule (bad magic)", what);
  r.bytes(8, "magic");
  p.version = r.get<uint32_t>("version");
  if (p.version != kCapsuleFormatVersion)
    fail("{}: capsule format version {} is not supported (this flashrt reads version {})", what,
         p.version, kCapsuleFormatVersion);
  const uint32_t flags = r.get<uint32_t>("flags");
  if (flags & ~kFlagZstd) fail("{}: unknown capsule flags {:#x}", what, flags);
  p.zstd = flags & kFlagZstd;
  p.capsule.fingerprint.hi = r.get<uint64_t>("fingerprint");
  p.capsule.fingerprint.lo = r.get<uint64_t>("fingerprint");
  p.capsule.pos = r.get<int64_t>("position");
  const uint32_t n = r.get<uint32_t>("entry count");
  r.get<uint32_t>("reserved");
  const uint64_t manifest_bytes = r.get<uint64_t>("manifest size");
  const uint64_t header_sum = r.get<uint64_t>("header checksum");
  if (manifest_bytes > size - kHeaderBytes)
    fail("{}: truncated capsule (manifest of {} bytes)", what, manifest_bytes);
  {  // the checksum covers the header's first 56 bytes and the manifest
    XXH3_state_t* st = XXH3_createState();
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, data, 56);
    XXH3_64bits_update(st, data + kHeaderBytes, manifest_bytes);
    const uint64_t sum = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    if (sum != header_sum)
      fail("{}: capsule header or manifest is corrupted (checksum mismatch)", what);
  }
  if (p.capsule.pos < 0) fail("{}: negative position {}", what, p.capsule.pos);
  if (n > 100000) fail("{}: implausible number of regions {}", what, n);
  Reader m(data + kHeaderBytes, manifest_bytes, what);
  p.payload_start = align64(kHeaderBytes + manifest_bytes);
  if (p.payload_start > size) fail("{}: truncated capsule (no payload)", what);
  const uint64_t payload_size = size - p.payload_start;
  uint64_t raw_off = 0;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (uint32_t i = 0; i < n; ++i) {
    CapsuleEntry e;
    const uint16_t len = m.get<uint16_t>("region name length");
    e.name = m.bytes(len, "region name");
    const uint8_t dt = m.get<uint8_t>("dtype"), kind = m.get<uint8_t>("kind"),
                  nd = m.get<uint8_t>("rank");
    m.get<uint8_t>("reserved");
    if (dt > static_cast<uint8_t>(DType::U8))
      fail("{}: region '{}' has unknown dtype {}", what, e.name, dt);
    if (kind > static_cast<uint8_t>(RegionKind::kMeta))
      fail("{}: region '{}' has unknown kind {}", what, e.name, kind);
    if (nd > kMaxDims) fail("{}: region '{}' has rank {}", what, e.name, nd);
    e.dtype = static_cast<DType>(dt);
    e.kind = static_cast<RegionKind>(kind);
    int64_t elems = 1;
    for (int d = 0; d < nd; ++d) {
      const int64_t x = m.get<int64_t>("shape");
      if (x < 0 || x > (int64_t{1} << 40))
        fail("{}: region '{}' has dimension {}", what, e.name, x);
      e.shape.push_back(x);
      // Checked before multiplying: 2^40 x 2^40 would overflow int64 (found by the fuzz target).
      if (x != 0 && elems > (int64_t{1} << 42) / x)
        fail("{}: region '{}' is implausibly large", what, e.name);
      elems *= x;
    }
    // A positional region holds a row per token, or fewer when it lags (an MTP layer's KV); the
    // session's layout checks the exact count (check_compatible).
    if (e.kind == RegionKind::kPositional &&
        (e.shape.empty() || e.shape[0] > p.capsule.pos || e.shape[0] < p.capsule.pos - 1))
      fail("{}: positional region '{}' does not hold {} rows", what, e.name, p.capsule.pos);
    if (elems % dtype_info(e.dtype).block_elems != 0)
      fail("{}: region '{}' is not whole blocks", what, e.name);
    e.bytes = m.get<uint64_t>("raw size");
    const uint64_t stored = m.get<uint64_t>("stored size");
    const uint64_t off = m.get<uint64_t>("offset");
    e.checksum = m.get<uint64_t>("checksum");
    if (e.bytes != dtype_bytes(e.dtype, elems))
      fail("{}: region '{}' claims {} bytes but its shape needs {}", what, e.name, e.bytes,
           dtype_bytes(e.dtype, elems));
    if (!p.zstd && stored != e.bytes)
      fail("{}: region '{}' stored size {} != {}", what, e.name, stored, e.bytes);
    if (off > payload_size || stored > payload_size - off)
      fail("{}: truncated capsule: region '{}' ({} bytes at {}) runs past the end of the file",
           what, e.name, stored, off);
    ranges.emplace_back(off, off + stored);
    e.offset = raw_off;  // offset within the decompressed payload
    raw_off += e.bytes;
    p.stored.push_back(off);
    p.stored.push_back(stored);
    p.capsule.entries.push_back(std::move(e));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) fail("{}: capsule payloads overlap", what);
  // Every payload is padded to 64 bytes, so the size of an intact file is known exactly.
  const uint64_t end = ranges.empty() ? 0 : align64(ranges.back().second);
  if (payload_size != end)
    fail("{}: {} capsule: {} payload bytes, expected {}", what,
         payload_size < end ? "truncated" : "oversized", payload_size, end);
  return p;
}

// Test hook: FLASHRT_CAPSULE_WRITE_DELAY_MS slows each payload write so a test can kill the writer
// mid-file and check that no partial capsule appears under the final name.
int write_delay_ms() {
  const char* v = std::getenv("FLASHRT_CAPSULE_WRITE_DELAY_MS");
  return v ? std::atoi(v) : 0;
}

void write_all(int fd, const uint8_t* p, size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("{}: write failed: {}", path, std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

uint64_t write_capsule_file(const Capsule& c, const std::string& path,
                            const CapsuleWriteOptions& o) {
  FLASHRT_CHECK(c.tier == Tier::kHost && c.data, "only a host capsule can be written to a file");
  // Payloads (compressed when asked), then the manifest that points at them.
  std::vector<std::vector<uint8_t>> compressed(c.entries.size());
  std::vector<uint64_t> stored_off, stored_len, sums;
  uint64_t off = 0;
  for (size_t i = 0; i < c.entries.size(); ++i) {
    const auto& e = c.entries[i];
    const uint8_t* raw = c.data.get() + e.offset;
    sums.push_back(e.checksum ? e.checksum : checksum(raw, e.bytes));
    uint64_t len = e.bytes;
    if (o.zstd && e.bytes > 0) {
      compressed[i].resize(ZSTD_compressBound(e.bytes));
      const size_t z =
          ZSTD_compress(compressed[i].data(), compressed[i].size(), raw, e.bytes, o.zstd_level);
      if (ZSTD_isError(z)) fail("{}: compression failed: {}", path, ZSTD_getErrorName(z));
      compressed[i].resize(z);
      len = z;
    }
    stored_off.push_back(off);
    stored_len.push_back(len);
    off = align64(off + len);
  }
  std::vector<uint8_t> manifest;
  for (size_t i = 0; i < c.entries.size(); ++i) {
    const auto& e = c.entries[i];
    FLASHRT_CHECK(e.name.size() < 65536 && e.shape.size() <= kMaxDims,
                  "region '{}' cannot be stored", e.name);
    put<uint16_t>(manifest, static_cast<uint16_t>(e.name.size()));
    manifest.insert(manifest.end(), e.name.begin(), e.name.end());
    put<uint8_t>(manifest, static_cast<uint8_t>(e.dtype));
    put<uint8_t>(manifest, static_cast<uint8_t>(e.kind));
    put<uint8_t>(manifest, static_cast<uint8_t>(e.shape.size()));
    put<uint8_t>(manifest, 0);
    for (int64_t d : e.shape) put<int64_t>(manifest, d);
    put<uint64_t>(manifest, e.bytes);
    put<uint64_t>(manifest, stored_len[i]);
    put<uint64_t>(manifest, stored_off[i]);
    put<uint64_t>(manifest, sums[i]);
  }
  // Constructed from the magic rather than inserted into an empty vector: GCC 12 reports a false
  // -Wstringop-overflow for the insert.
  std::vector<uint8_t> header(reinterpret_cast<const uint8_t*>(kMagic),
                              reinterpret_cast<const uint8_t*>(kMagic) + 8);
  header.reserve(kHeaderBytes);
  put<uint32_t>(header, kCapsuleFormatVersion);
  put<uint32_t>(header, o.zstd ? kFlagZstd : 0);
  put<uint64_t>(header, c.fingerprint.hi);
  put<uint64_t>(header, c.fingerprint.lo);
  put<int64_t>(header, c.pos);
  put<uint32_t>(header, static_cast<uint32_t>(c.entries.size()));
  put<uint32_t>(header, 0);
  put<uint64_t>(header, manifest.size());
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  XXH3_64bits_update(st, header.data(), header.size());
  XXH3_64bits_update(st, manifest.data(), manifest.size());
  put<uint64_t>(header, XXH3_64bits_digest(st));
  XXH3_freeState(st);

  namespace fs = std::filesystem;
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot create: {}", tmp, std::strerror(errno));
  uint64_t total = 0;
  try {
    const int delay = write_delay_ms();
    write_all(fd, header.data(), header.size(), tmp);
    write_all(fd, manifest.data(), manifest.size(), tmp);
    static const uint8_t zeros[64] = {};
    total = header.size() + manifest.size();
    write_all(fd, zeros, align64(total) - total, tmp);
    total = align64(total);
    for (size_t i = 0; i < c.entries.size(); ++i) {
      const uint8_t* p =
          o.zstd && c.entries[i].bytes ? compressed[i].data() : c.data.get() + c.entries[i].offset;
      write_all(fd, p, stored_len[i], tmp);
      write_all(fd, zeros, align64(stored_len[i]) - stored_len[i], tmp);
      total += align64(stored_len[i]);
      if (delay) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    }
    if (::fsync(fd) != 0) fail("{}: fsync failed: {}", tmp, std::strerror(errno));
  } catch (...) {
    ::close(fd);
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  ::close(fd);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();  // before remove() reuses ec ("Success" otherwise)
    fs::remove(tmp, ec);
    fail("{}: cannot rename the finished capsule into place: {}", path, why);
  }
  // Make the rename itself durable.
  const std::string dir =
      fs::path(path).parent_path().empty() ? "." : fs::path(path).parent_path().string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return total;
}

Capsule parse_capsule_bytes(const uint8_t* data, size_t size, const std::string& what) {
  Parsed p = parse_manifest(data, size, what);
  Capsule c = std::move(p.capsule);
  c.tier = Tier::kHost;
  const uint64_t total = c.payload_bytes();
  c.data = host_buffer(total, "capsule payload");
  for (size_t i = 0; i < c.entries.size(); ++i) {
    auto& e = c.entries[i];
    const uint8_t* src = data + p.payload_start + p.stored[2 * i];
    const uint64_t stored = p.stored[2 * i + 1];
    uint8_t* dst = c.data.get() + e.offset;
    if (p.zstd && e.bytes > 0) {
      const unsigned long long n = ZSTD_getFrameContentSize(src, stored);
      if (n != e.bytes)
        fail("{}: region '{}' is corrupted (compressed frame holds {} bytes, expected {})", what,
             e.name, n, e.bytes);
      const size_t z = ZSTD_decompress(dst, e.bytes, src, stored);
      if (ZSTD_isError(z) || z != e.bytes)
        fail("{}: region '{}' is corrupted (cannot decompress)", what, e.name);
    } else if (e.bytes > 0) {
      std::memcpy(dst, src, e.bytes);
    }
    if (checksum(dst, e.bytes) != e.checksum)
      fail("{}: region '{}' is corrupted (checksum mismatch)", what, e.name);
  }
  return c;
}

Capsule read_capsule_file(const std::string& path) {
  const MappedFile f(path);
  return parse_capsule_bytes(f.data(), f.size(), path);
}

CapsuleFileInfo inspect_capsule_file(const std::string& path) {
  const MappedFile f(path);
  Parsed p = parse_manifest(f.data(), f.size(), path);
  CapsuleFileInfo info;
  info.version = p.version;
  info.zstd = p.zstd;
  info.file_bytes = f.size();
  info.capsule = std::move(p.capsule);
  info.capsule.tier = Tier::kDisk;
  info.capsule.path = path;
  for (size_t i = 1; i < p.stored.size(); i += 2) info.stored_bytes.push_back(p.stored[i]);
  return info;
}

}  // namespace flashrt
