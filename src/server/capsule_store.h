// Named capsules: snapshots of sessions and imported capsule files, listed, exported and deleted by
// id. With a directory, every capsule is a file there (<id>.cap, written atomically by
// write_capsule_file) and the directory is scanned at start-up, so capsules survive a restart;
// without one they live in host memory until deleted. Thread-safe; file I/O happens on the calling
// (HTTP) thread, never on the scheduler's.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "capsule/capsule.h"

namespace flashrt::server {

struct CapsuleRecord {
  std::string id;
  int64_t pos = 0;          // tokens fed into the state
  uint64_t bytes = 0;       // payload bytes (uncompressed)
  std::string fingerprint;  // of the model and state layout it belongs to
  bool compatible = false;  // made by this server's model
  int64_t created = 0;      // unix seconds
  std::string path;         // its file, when persisted
  std::string session;      // the session it was snapshotted from (while this server runs)
};

class CapsuleStore {
 public:
  CapsuleStore(std::string dir, Fingerprint fp);

  // Stores a host capsule under a new id; `session`: the session it was taken from, if any.
  CapsuleRecord add(const Capsule& c, const std::string& session = "");
  // Stores an uploaded capsule file after validating it completely (ApiError 400 when corrupt or
  // made by another model).
  CapsuleRecord import_bytes(const std::string& bytes);
  // The capsule with its payload, validated (ApiError 404 for an unknown id).
  Capsule load(const std::string& id) const;
  // The capsule as a file's bytes.
  std::string export_bytes(const std::string& id) const;
  CapsuleRecord info(const std::string& id) const;
  std::vector<CapsuleRecord> list() const;
  void remove(const std::string& id);
  size_t size() const;
  const std::string& dir() const { return dir_; }

  // Ids are used as file names: letters, digits, '_' and '-' only.
  static bool valid_id(const std::string& id);

 private:
  struct Entry {
    CapsuleRecord rec;
    std::optional<Capsule> mem;  // memory-only store
  };
  const Entry& get(const std::string& id) const;  // caller holds mu_
  CapsuleRecord record_of(const std::string& id, const Capsule& c) const;

  std::string dir_;
  Fingerprint fp_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

}  // namespace flashrt::server
