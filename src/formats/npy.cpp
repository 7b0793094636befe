#include "formats/npy.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <cstring>
#include <fstream>

#include "core/error.h"

namespace flashrt {

void write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  std::string dims = fmt::format("{}", fmt::join(shape, ", "));
  if (shape.size() == 1) dims += ",";
  std::string header =
      fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}", dims);
  // magic(6) + version(2) + len(2) + header + '\n' must be a multiple of 64
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) fail("{}: cannot create", path);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.write(reinterpret_cast<const char*>(&len), 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  int64_t n = 1;
  for (auto d : shape) n *= d;
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * 4));
  if (!out) fail("{}: write failed", path);
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0) fail("{}: not a .npy file", path);
  uint16_t len = 0;
  in.read(reinterpret_cast<char*>(&len), 2);
  std::string header(len, '\0');
  in.read(header.data(), len);
  if (!in) fail("{}: truncated header", path);
  NpyArray a;
  auto d = header.find("'descr': '");
  if (d == std::string::npos) fail("{}: no descr", path);
  a.descr = header.substr(d + 10, header.find('\'', d + 10) - d - 10);
  auto s = header.find("'shape': (");
  if (s == std::string::npos) fail("{}: no shape", path);
  const auto e = header.find(')', s);
  std::string dims = header.substr(s + 10, e - s - 10);
  int64_t n = 1;
  size_t p = 0;
  while (p < dims.size()) {
    while (p < dims.size() && (dims[p] == ' ' || dims[p] == ',')) ++p;
    if (p >= dims.size()) break;
    size_t q = p;
    while (q < dims.size() && std::isdigit(static_cast<unsigned char>(dims[q]))) ++q;
    if (q == p) fail("{}: bad shape", path);
    a.shape.push_back(std::stoll(dims.substr(p, q - p)));
    n *= a.shape.back();
    p = q;
  }
  const size_t elt = a.descr.size() >= 3 ? static_cast<size_t>(a.descr[2] - '0') : 4;
  a.data.resize(static_cast<size_t>(n) * elt);
  in.read(reinterpret_cast<char*>(a.data.data()), static_cast<std::streamsize>(a.data.size()));
  if (!in) fail("{}: truncated data", path);
  return a;
}

}  // namespace flashrt
