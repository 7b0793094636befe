// Capsule files: round trip (plain and zstd), and refusal with a clear message of corrupted,
// truncated, wrong-model and wrong-version files, leaving the session unchanged.
#include <xxhash.h>

#include <filesystem>
#include <fstream>

#include "capsule/capsule_file.h"
#include "capsule_fixture.h"

namespace flashrt::testing {
namespace {

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

class CapsuleFile : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = load_model(ref_model_dir("qwen35"));
    be_ = make_cpu_backend();
    s_ = std::make_unique<Session>(*model_, *be_);
    s_->append(Reference(ref_model_dir("qwen35")).ids("T96.input_ids"));
    path_ = temp_dir() + "/file-test.cap";
    write_capsule_file(s_->snapshot(Tier::kHost), path_);
    good_ = read_bytes(path_);
  }
  // Loading `bytes` must fail with `message`, and restoring must leave the session as it was.
  void expect_refused(const std::vector<uint8_t>& bytes, const std::string& message) {
    const std::string bad = temp_dir() + "/bad.cap";
    write_bytes(bad, bytes);
    auto other = std::make_unique<Session>(*model_, *be_);
    other->append(std::vector<int32_t>{1, 2, 3});
    const auto before = live_state(*other);
    try {
      other->restore(read_capsule_file(bad));
      ADD_FAILURE() << "accepted a bad capsule (" << message << ")";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
    EXPECT_EQ(live_state(*other), before);
    EXPECT_EQ(other->pos(), 3);
  }
  std::unique_ptr<Model> model_;
  std::unique_ptr<Backend> be_;
  std::unique_ptr<Session> s_;
  std::string path_;
  std::vector<uint8_t> good_;
};

TEST_F(CapsuleFile, RoundTripPlainAndCompressed) {
  const Capsule a = read_capsule_file(path_);
  EXPECT_EQ(a.pos, 96);
  EXPECT_EQ(a.fingerprint, s_->fingerprint());
  const std::string z = temp_dir() + "/zstd.cap";
  CapsuleWriteOptions o;
  o.zstd = true;
  write_capsule_file(s_->snapshot(Tier::kHost), z, o);
  const Capsule b = read_capsule_file(z);
  ASSERT_EQ(a.payload_bytes(), b.payload_bytes());
  EXPECT_EQ(0, std::memcmp(a.data.get(), b.data.get(), a.payload_bytes()));
  const auto info = inspect_capsule_file(z);
  EXPECT_TRUE(info.zstd);
  EXPECT_EQ(info.capsule.entries.size(), a.entries.size());
  // No temporary file is left beside the capsule.
  for (const auto& e : std::filesystem::directory_iterator(temp_dir()))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

TEST_F(CapsuleFile, WritingOntoADirectorySaysWhy) {
  // The rename's error was reported after remove() had reset it: "...into place: Success".
  const std::string dir = temp_dir() + "/a-directory.cap";
  std::filesystem::create_directories(dir + "/inside");
  try {
    write_capsule_file(s_->snapshot(Tier::kHost), dir);
    ADD_FAILURE() << "wrote a capsule over a directory";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("Success"), std::string::npos) << what;
    EXPECT_NE(what.find("cannot rename the finished capsule into place: "), std::string::npos)
        << what;
  }
  EXPECT_TRUE(std::filesystem::is_directory(dir + "/inside"));
}

TEST_F(CapsuleFile, FlippedBytesAreCaught) {
  // One flip in the header, one in the manifest, one in every region's payload.
  auto flip = good_;
  flip[20] ^= 0x01;
  expect_refused(flip, "corrupted");
  flip = good_;
  flip[80] ^= 0x10;
  expect_refused(flip, "corrupted");
  const auto info = inspect_capsule_file(path_);
  const size_t payload = info.file_bytes - [&] {
    uint64_t n = 0;
    for (auto s : info.stored_bytes) n += (s + 63) / 64 * 64;
    return n;
  }();
  uint64_t off = 0;
  for (size_t i = 0; i < info.capsule.entries.size(); ++i) {
    if (info.stored_bytes[i] == 0) continue;
    flip = good_;
    flip[payload + off + info.stored_bytes[i] / 2] ^= 0x40;
    expect_refused(flip, "region '" + info.capsule.entries[i].name + "' is corrupted");
    off += (info.stored_bytes[i] + 63) / 64 * 64;
  }
}

TEST_F(CapsuleFile, TruncatedFilesAreCaught) {
  for (size_t len : {size_t{0}, size_t{7}, size_t{63}, size_t{64}, size_t{100}, good_.size() / 2,
                     good_.size() - 1}) {
    SCOPED_TRACE(len);
    expect_refused(
        std::vector<uint8_t>(good_.begin(), good_.begin() + static_cast<std::ptrdiff_t>(len)),
        len < 64 ? "capsule" : "truncated");
  }
}

TEST_F(CapsuleFile, WrongVersionIsRefusedByName) {
  auto v2 = good_;
  v2[8] = 2;  // version field; fix the header checksum so only the version is wrong
  uint64_t manifest_bytes;
  std::memcpy(&manifest_bytes, v2.data() + 48, 8);
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  XXH3_64bits_update(st, v2.data(), 56);
  XXH3_64bits_update(st, v2.data() + 64, manifest_bytes);
  const uint64_t sum = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  std::memcpy(v2.data() + 56, &sum, 8);
  expect_refused(v2, "format version 2 is not supported");
}

TEST_F(CapsuleFile, OtherModelsAndLayoutsAreRefused) {
  const auto other = load_model(ref_model_dir("qwen3"));
  Session q(*other, *be_);
  q.append(std::vector<int32_t>{1, 2, 3});
  const auto before = live_state(q);
  try {
    q.restore(read_capsule_file(path_));
    ADD_FAILURE() << "restored a qwen35 capsule into qwen3";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos) << e.what();
  }
  EXPECT_EQ(live_state(q), before);
  // Same architecture, one weight changed: still another model.
  const std::string copy = temp_dir() + "/qwen35-edited.gguf";
  {
    auto m = load_model(ref_model_dir("qwen35"));
    std::vector<float> norm(m->w.out_norm.f32(), m->w.out_norm.f32() + m->cfg.hidden);
    norm[0] += 0.5f;
    m->w.out_norm = m->own_f32(norm, 1, m->cfg.hidden);
    GGUFWriter w;
    write_gguf(*m, w, DType::BF16);
    w.write(copy);
  }
  const auto edited = load_model(copy);
  Session e(*edited, *be_);
  EXPECT_THROW(e.restore(read_capsule_file(path_)), Error);
}

}  // namespace
}  // namespace flashrt::testing
