#include "server/capsule_store.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "capsule/capsule_file.h"
#include "server/api_error.h"

namespace fs = std::filesystem;

namespace flashrt::server {

namespace {

std::string random_id() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  return fmt::format("cap_{:016x}", rng());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ApiError(500, fmt::format("cannot read {}", path), "", "io_error");
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

}  // namespace

bool CapsuleStore::valid_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

CapsuleStore::CapsuleStore(std::string dir, Fingerprint fp) : dir_(std::move(dir)), fp_(fp) {
  if (dir_.empty()) return;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  FLASHRT_CHECK(fs::is_directory(dir_), "capsule directory {}: cannot create it ({})", dir_,
                ec.message());
  // Capsules saved by an earlier run. A file that does not validate is reported and skipped.
  for (const auto& e : fs::directory_iterator(dir_)) {
    const fs::path p = e.path();
    if (!e.is_regular_file() || p.extension() != ".cap") continue;
    const std::string id = p.stem().string();
    if (!valid_id(id)) continue;
    try {
      const CapsuleFileInfo fi = inspect_capsule_file(p.string());
      CapsuleRecord rec = record_of(id, fi.capsule);
      rec.path = p.string();
      struct stat st {};
      if (::stat(p.c_str(), &st) == 0) rec.created = static_cast<int64_t>(st.st_mtime);
      entries_[id] = Entry{rec, std::nullopt};
    } catch (const Error& err) {
      std::fprintf(stderr, "flashrt serve: skipping %s: %s\n", p.c_str(), err.what());
    }
  }
}

CapsuleRecord CapsuleStore::record_of(const std::string& id, const Capsule& c) const {
  CapsuleRecord r;
  r.id = id;
  r.pos = c.pos;
  for (const auto& e : c.entries) r.bytes += e.bytes;
  r.fingerprint = c.fingerprint.hex();
  r.compatible = c.fingerprint == fp_;
  r.created = static_cast<int64_t>(std::time(nullptr));
  return r;
}

CapsuleRecord CapsuleStore::add(const Capsule& c, const std::string& session) {
  FLASHRT_CHECK(c.tier == Tier::kHost, "only host capsules are stored");
  const std::string id = random_id();
  CapsuleRecord rec = record_of(id, c);
  rec.session = session;
  Entry e{rec, std::nullopt};
  if (dir_.empty()) {
    e.mem = c;
  } else {
    e.rec.path = (fs::path(dir_) / (id + ".cap")).string();
    write_capsule_file(c, e.rec.path);
  }
  std::lock_guard<std::mutex> lock(mu_);
  entries_[id] = e;
  return e.rec;
}

CapsuleRecord CapsuleStore::import_bytes(const std::string& bytes) {
  Capsule c;
  try {
    c = parse_capsule_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                            "the uploaded capsule");
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "", "invalid_capsule");
  }
  if (!(c.fingerprint == fp_))
    throw ApiError(400,
                   fmt::format("the capsule was made by another model or state layout "
                               "(fingerprint {}, this server's model: {})",
                               c.fingerprint.hex(), fp_.hex()),
                   "", "capsule_model_mismatch");
  return add(c);
}

const CapsuleStore::Entry& CapsuleStore::get(const std::string& id) const {
  const auto it = valid_id(id) ? entries_.find(id) : entries_.end();
  if (it == entries_.end())
    throw ApiError(404, fmt::format("no capsule '{}'", id), "capsule", "capsule_not_found");
  return it->second;
}

Capsule CapsuleStore::load(const std::string& id) const {
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Entry& e = get(id);
    if (e.mem) return *e.mem;
    path = e.rec.path;
  }
  try {
    return read_capsule_file(path);  // validates every checksum
  } catch (const Error& err) {
    throw ApiError(400, err.what(), "capsule", "invalid_capsule");
  }
}

std::string CapsuleStore::export_bytes(const std::string& id) const {
  std::optional<Capsule> mem;
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Entry& e = get(id);
    mem = e.mem;
    path = e.rec.path;
  }
  if (!mem) return read_file(path);
  // A memory capsule becomes a file through the one writer that knows the format.
  const fs::path tmp =
      fs::temp_directory_path() / fmt::format("flashrt-export-{}.cap", random_id());
  write_capsule_file(*mem, tmp.string());
  std::string bytes = read_file(tmp.string());
  std::error_code ec;
  fs::remove(tmp, ec);
  return bytes;
}

CapsuleRecord CapsuleStore::info(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return get(id).rec;
}

std::vector<CapsuleRecord> CapsuleStore::list() const {
  std::vector<CapsuleRecord> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, e] : entries_) out.push_back(e.rec);
  std::sort(out.begin(), out.end(), [](const CapsuleRecord& a, const CapsuleRecord& b) {
    return a.created != b.created ? a.created < b.created : a.id < b.id;
  });
  return out;
}

void CapsuleStore::remove(const std::string& id) {
  std::string path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    path = get(id).rec.path;
    entries_.erase(id);
  }
  if (!path.empty()) {
    std::error_code ec;
    fs::remove(path, ec);
  }
}

size_t CapsuleStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace flashrt::server
