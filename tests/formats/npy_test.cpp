// .npy: what write_npy_f32 writes, read_npy (and NumPy) reads back: shape, dtype and exact bytes,
// with the header padded so the data starts on a 64-byte boundary as NumPy requires.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "formats/npy.h"

namespace flashrt {
namespace {

namespace fs = std::filesystem;

class FormatsNpy : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("flashrt-npy-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Writes `shape` worth of random floats, reads them back and checks everything.
  void round_trip(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::mt19937 rng(static_cast<uint32_t>(n));
    std::uniform_real_distribution<float> u(-10, 10);
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = u(rng);
    const std::string path = (dir_ / "a.npy").string();
    write_npy_f32(path, x.data(), shape);

    const NpyArray a = read_npy(path);
    EXPECT_EQ(a.descr, "<f4");
    EXPECT_EQ(a.shape, shape);
    ASSERT_EQ(a.data.size(), x.size() * 4);
    EXPECT_EQ(0, std::memcmp(a.data.data(), x.data(), a.data.size()));

    std::ifstream in(path, std::ios::binary);
    const std::vector<char> file{std::istreambuf_iterator<char>(in),
                                 std::istreambuf_iterator<char>()};
    ASSERT_GE(file.size(), 10u);
    EXPECT_EQ(std::string(file.data(), 6), "\x93NUMPY");
    EXPECT_EQ(file[6], 1) << "format version 1.0";
    uint16_t header_len;
    std::memcpy(&header_len, &file[8], 2);
    EXPECT_EQ((10 + header_len) % 64, 0) << "data must start on a 64-byte boundary";
    EXPECT_EQ(file[9 + header_len], '\n');
    EXPECT_EQ(file.size(), 10 + header_len + x.size() * 4);
    const std::string header(&file[10], header_len);
    EXPECT_NE(header.find("'fortran_order': False"), std::string::npos) << header;
  }

  fs::path dir_;
};

TEST_F(FormatsNpy, OneDimensional) {
  round_trip({1});
  round_trip({7});
  round_trip({1000});
}

TEST_F(FormatsNpy, TwoDimensional) {
  round_trip({3, 4});
  round_trip({1, 129});
  round_trip({100000, 2});  // a longer shape string still pads to 64
}

TEST_F(FormatsNpy, HigherRank) {
  round_trip({2, 3, 4});
}

TEST_F(FormatsNpy, OneDimensionalShapeHasTrailingComma) {
  const float x[3] = {1, 2, 3};
  const std::string path = (dir_ / "v.npy").string();
  write_npy_f32(path, x, {3});
  std::ifstream in(path, std::ios::binary);
  const std::string file{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  EXPECT_NE(file.find("'shape': (3,)"), std::string::npos) << "NumPy needs (3,) for a 1-D tuple";
}

}  // namespace
}  // namespace flashrt
