#include "formats/gguf.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/progress.h"

namespace flashrt {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxDims = 4;

struct GgmlTypeMap {
  uint32_t ggml;
  DType dtype;
};
constexpr GgmlTypeMap kTypes[] = {
    {0, DType::F32},   {1, DType::F16},   {2, DType::Q4_0}, {8, DType::Q8_0},
    {12, DType::Q4_K}, {14, DType::Q6_K}, {24, DType::I8},  {25, DType::I16},
    {26, DType::I32},  {27, DType::I64},  {28, DType::F64}, {30, DType::BF16},
};

const char* ggml_type_name(uint32_t t) {
  static const char* kNames[] = {
      "f32",     "f16",    "q4_0",    "q4_1",  "q4_2",   "q4_3",  "q5_0",  "q5_1",
      "q8_0",    "q8_1",   "q2_k",    "q3_k",  "q4_k",   "q5_k",  "q6_k",  "q8_k",
      "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl", "iq3_s", "iq2_s", "iq4_xs",
      "i8",      "i16",    "i32",     "i64",   "f64",    "iq1_m", "bf16"};
  return t < std::size(kNames) ? kNames[t] : "unknown";
}

// Bounds-checked reader over the file image.
class Cursor {
 public:
  Cursor(const uint8_t* d, size_t n, const std::string& path) : d_(d), n_(n), path_(path) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return n_ - pos_; }

  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, d_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const char* what) {
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining())
      fail("{}: {} string of {} bytes runs past the end of the file (offset {})", path_, what, len,
           pos_);
    std::string s(reinterpret_cast<const char*>(d_ + pos_), len);
    pos_ += len;
    return s;
  }
  void need(size_t k, const char* what) {
    if (k > remaining())
      fail("{}: truncated while reading {} (offset {}, file size {})", path_, what, pos_, n_);
  }

 private:
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
  const std::string& path_;
};

size_t scalar_size(GGUFType t) {
  switch (t) {
    case GGUFType::U8:
    case GGUFType::I8:
    case GGUFType::BOOL:
      return 1;
    case GGUFType::U16:
    case GGUFType::I16:
      return 2;
    case GGUFType::U32:
    case GGUFType::I32:
    case GGUFType::F32:
      return 4;
    case GGUFType::U64:
    case GGUFType::I64:
    case GGUFType::F64:
      return 8;
    case GGUFType::STRING:
      return 8;  // at least the length
    case GGUFType::ARRAY:
      return 12;  // at least type + count
  }
  return 0;
}

GGUFValue read_value(Cursor& c, GGUFType type, const std::string& key, const std::string& path,
                     int depth) {
  GGUFValue v;
  v.type = type;
  switch (type) {
    case GGUFType::U8:
      v.v = uint64_t{c.read<uint8_t>("value")};
      break;
    case GGUFType::I8:
      v.v = int64_t{c.read<int8_t>("value")};
      break;
    case GGUFType::U16:
      v.v = uint64_t{c.read<uint16_t>("value")};
      break;
    case GGUFType::I16:
      v.v = int64_t{c.read<int16_t>("value")};
      break;
    case GGUFType::U32:
      v.v = uint64_t{c.read<uint32_t>("value")};
      break;
    case GGUFType::I32:
      v.v = int64_t{c.read<int32_t>("value")};
      break;
    case GGUFType::U64:
      v.v = c.read<uint64_t>("value");
      break;
    case GGUFType::I64:
      v.v = c.read<int64_t>("value");
      break;
    case GGUFType::F32:
      v.v = double{c.read<float>("value")};
      break;
    case GGUFType::F64:
      v.v = c.read<double>("value");
      break;
    case GGUFType::BOOL: {
      const uint8_t b = c.read<uint8_t>("value");
      if (b > 1) fail("{}: key '{}' has a bool of value {}", path, key, b);
      v.v = b != 0;
      break;
    }
    case GGUFType::STRING:
      v.v = c.read_string("value");
      break;
    case GGUFType::ARRAY: {
      if (depth > 2) fail("{}: key '{}' nests arrays too deeply", path, key);
      const uint32_t et = c.read<uint32_t>("array type");
      if (et > static_cast<uint32_t>(GGUFType::F64))
        fail("{}: key '{}' has unknown array element type {}", path, key, et);
      const uint64_t n = c.read<uint64_t>("array length");
      v.elem_type = static_cast<GGUFType>(et);
      if (n > c.remaining() / scalar_size(v.elem_type))
        fail("{}: key '{}' claims {} array elements, more than the file can hold", path, key, n);
      std::vector<GGUFValue> items;
      items.reserve(n);
      for (uint64_t i = 0; i < n; ++i)
        items.push_back(read_value(c, v.elem_type, key, path, depth + 1));
      v.v = std::move(items);
      break;
    }
    default:
      fail("{}: key '{}' has unknown value type {}", path, key, static_cast<uint32_t>(type));
  }
  return v;
}

}  // namespace

// ---- GGUFValue ------------------------------------------------------------------------------

GGUFValue GGUFValue::str_array(const std::vector<std::string>& xs) {
  std::vector<GGUFValue> items;
  items.reserve(xs.size());
  for (const auto& s : xs) items.push_back(str(s));
  return {GGUFType::ARRAY, GGUFType::STRING, std::move(items)};
}
GGUFValue GGUFValue::i32_array(const std::vector<int32_t>& xs) {
  std::vector<GGUFValue> items;
  for (int32_t x : xs) items.push_back(i32(x));
  return {GGUFType::ARRAY, GGUFType::I32, std::move(items)};
}
GGUFValue GGUFValue::u32_array(const std::vector<uint32_t>& xs) {
  std::vector<GGUFValue> items;
  for (uint32_t x : xs) items.push_back(u32(x));
  return {GGUFType::ARRAY, GGUFType::U32, std::move(items)};
}
GGUFValue GGUFValue::f32_array(const std::vector<float>& xs) {
  std::vector<GGUFValue> items;
  for (float x : xs) items.push_back(f32(x));
  return {GGUFType::ARRAY, GGUFType::F32, std::move(items)};
}

bool GGUFValue::is_integer() const {
  return std::holds_alternative<uint64_t>(v) || std::holds_alternative<int64_t>(v);
}
bool GGUFValue::is_number() const {
  return is_integer() || std::holds_alternative<double>(v);
}

int64_t GGUFValue::as_int() const {
  if (auto* u = std::get_if<uint64_t>(&v)) {
    if (*u > static_cast<uint64_t>(INT64_MAX)) fail("integer {} out of range", *u);
    return static_cast<int64_t>(*u);
  }
  if (auto* i = std::get_if<int64_t>(&v)) return *i;
  if (auto* b = std::get_if<bool>(&v)) return *b;
  fail("expected an integer, found {}", to_display());
}
double GGUFValue::as_double() const {
  if (auto* d = std::get_if<double>(&v)) return *d;
  if (is_integer()) return static_cast<double>(as_int());
  fail("expected a number, found {}", to_display());
}
bool GGUFValue::as_bool() const {
  if (auto* b = std::get_if<bool>(&v)) return *b;
  fail("expected a bool, found {}", to_display());
}
const std::string& GGUFValue::as_string() const {
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  fail("expected a string, found {}", to_display());
}
const std::vector<GGUFValue>& GGUFValue::as_array() const {
  if (auto* a = std::get_if<std::vector<GGUFValue>>(&v)) return *a;
  fail("expected an array, found {}", to_display());
}
std::vector<std::string> GGUFValue::as_string_array() const {
  std::vector<std::string> out;
  for (const auto& x : as_array()) out.push_back(x.as_string());
  return out;
}
std::vector<int64_t> GGUFValue::as_int_array() const {
  std::vector<int64_t> out;
  for (const auto& x : as_array()) out.push_back(x.as_int());
  return out;
}
std::vector<double> GGUFValue::as_double_array() const {
  std::vector<double> out;
  for (const auto& x : as_array()) out.push_back(x.as_double());
  return out;
}

std::string GGUFValue::to_display(size_t max_items) const {
  if (auto* u = std::get_if<uint64_t>(&v)) return std::to_string(*u);
  if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
  if (auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto* s = std::get_if<std::string>(&v)) {
    std::string t = s->size() > 60 ? s->substr(0, 57) + "..." : *s;
    for (char& ch : t)
      if (ch == '\n') ch = ' ';
    return "\"" + t + "\"";
  }
  const auto& a = std::get<std::vector<GGUFValue>>(v);
  std::string out = "[";
  for (size_t i = 0; i < a.size() && i < max_items; ++i)
    out += (i ? ", " : "") + a[i].to_display(2);
  if (a.size() > max_items) out += fmt::format(", ... ({} items)", a.size());
  return out + "]";
}

bool ggml_type_to_dtype(uint32_t ggml_type, DType* out) {
  for (const auto& m : kTypes)
    if (m.ggml == ggml_type) {
      *out = m.dtype;
      return true;
    }
  return false;
}

uint32_t dtype_to_ggml_type(DType t) {
  for (const auto& m : kTypes)
    if (m.dtype == t) return m.ggml;
  fail("GGUF cannot store dtype {}", dtype_name(t));
}

// ---- GGUFFile -------------------------------------------------------------------------------

std::unique_ptr<GGUFFile> GGUFFile::open(const std::string& path) {
  MappedFile f(path);
  auto g = parse(f.data(), f.size(), path);
  g->file_ = std::move(f);
  return g;
}

std::unique_ptr<GGUFFile> GGUFFile::parse(const uint8_t* data, size_t size,
                                          const std::string& path) {
  auto g = std::unique_ptr<GGUFFile>(new GGUFFile());
  g->path_ = path;
  Cursor c(data, size, path);
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) fail("{}: not a GGUF file (bad magic)", path);
  g->version_ = c.read<uint32_t>("version");
  if (g->version_ < 2 || g->version_ > 3)
    fail("{}: GGUF version {} is not supported (2 and 3 are)", path, g->version_);
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  if (n_kv > c.remaining() / 12)
    fail("{}: claims {} metadata entries, more than the file holds", path, n_kv);
  if (n_tensors > c.remaining() / 24)
    fail("{}: claims {} tensors, more than the file holds", path, n_tensors);

  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("metadata key");
    const uint32_t t = c.read<uint32_t>("metadata type");
    if (t > static_cast<uint32_t>(GGUFType::F64))
      fail("{}: key '{}' has unknown type {}", path, key, t);
    GGUFValue v = read_value(c, static_cast<GGUFType>(t), key, path, 0);
    if (g->kv_index_.count(key)) fail("{}: duplicate metadata key '{}'", path, key);
    g->kv_index_[key] = g->kv_.size();
    g->kv_.emplace_back(std::move(key), std::move(v));
  }
  if (const GGUFValue* a = g->get_meta("general.alignment")) {
    int64_t al = 0;
    try {
      al = a->as_int();
    } catch (const Error& e) {
      fail("{}: general.alignment: {}", path, e.what());
    }
    if (al <= 0 || al > 65536 || (al & (al - 1)) != 0)
      fail("{}: general.alignment {} is not a power of two between 1 and 65536", path, al);
    g->alignment_ = static_cast<size_t>(al);
  }

  struct Raw {
    uint64_t offset;
  };
  std::vector<Raw> raw;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    t.name = c.read_string("tensor name");
    const uint32_t nd = c.read<uint32_t>("tensor dims");
    if (nd == 0 || nd > kMaxDims) fail("{}: tensor '{}' has {} dimensions", path, t.name, nd);
    std::vector<int64_t> ne(nd);
    int64_t n = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const uint64_t x = c.read<uint64_t>("tensor dim");
      if (x == 0 || x > (1ull << 40)) fail("{}: tensor '{}' has dimension {}", path, t.name, x);
      ne[d] = static_cast<int64_t>(x);
      if (ne[d] > (int64_t{1} << 42) / n)
        fail("{}: tensor '{}' is implausibly large", path, t.name);
      n *= ne[d];
    }
    const uint32_t gt = c.read<uint32_t>("tensor type");
    if (!ggml_type_to_dtype(gt, &t.dtype))
      fail("{}: tensor '{}' has GGML type {} ({}), which flashrt does not support", path, t.name,
           gt, ggml_type_name(gt));
    const int be = dtype_info(t.dtype).block_elems;
    if (ne[0] % be != 0)
      fail("{}: tensor '{}' row length {} is not a multiple of the {} block size {}", path, t.name,
           ne[0], dtype_name(t.dtype), be);
    t.shape.assign(ne.rbegin(), ne.rend());
    t.bytes = dtype_bytes(t.dtype, n);
    raw.push_back({c.read<uint64_t>("tensor offset")});
    if (g->tensor_index_.count(t.name)) fail("{}: duplicate tensor '{}'", path, t.name);
    g->tensor_index_[t.name] = g->tensors_.size();
    g->tensors_.push_back(std::move(t));
  }
  const size_t data_start = (c.pos() + g->alignment_ - 1) / g->alignment_ * g->alignment_;
  if (n_tensors > 0 && data_start > size) fail("{}: truncated before the tensor data", path);
  for (size_t i = 0; i < g->tensors_.size(); ++i) {
    auto& t = g->tensors_[i];
    const uint64_t off = raw[i].offset;
    if (off % g->alignment_ != 0)
      fail("{}: tensor '{}' offset {} is not aligned to {}", path, t.name, off, g->alignment_);
    if (off > size - data_start || t.bytes > size - data_start - off)
      fail(
          "{}: tensor '{}' data ({} bytes at offset {}) runs past the end of the file (truncated?)",
          path, t.name, t.bytes, off);
    t.data = data + data_start + off;
  }
  return g;
}

const TensorInfo* GGUFFile::find(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::vector<std::string> GGUFFile::names() const {
  std::vector<std::string> n;
  for (const auto& t : tensors_) n.push_back(t.name);
  return n;
}

const GGUFValue* GGUFFile::get_meta(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

#define GGUF_TYPED_GET(KIND, CALL)                       \
  try {                                                  \
    return CALL;                                         \
  } catch (const Error& e) {                             \
    fail("{}: metadata '{}': {}", path_, key, e.what()); \
  }

int64_t GGUFFile::get_int(const std::string& key) const {
  const GGUFValue* v = get_meta(key);
  if (!v) fail("{}: missing metadata '{}'", path_, key);
  GGUF_TYPED_GET(int, v->as_int());
}
std::optional<int64_t> GGUFFile::get_int_opt(const std::string& key) const {
  if (!get_meta(key)) return std::nullopt;
  return get_int(key);
}
double GGUFFile::get_float(const std::string& key) const {
  const GGUFValue* v = get_meta(key);
  if (!v) fail("{}: missing metadata '{}'", path_, key);
  GGUF_TYPED_GET(float, v->as_double());
}
std::optional<double> GGUFFile::get_float_opt(const std::string& key) const {
  if (!get_meta(key)) return std::nullopt;
  return get_float(key);
}
std::string GGUFFile::get_string(const std::string& key) const {
  const GGUFValue* v = get_meta(key);
  if (!v) fail("{}: missing metadata '{}'", path_, key);
  GGUF_TYPED_GET(string, v->as_string());
}
std::optional<std::string> GGUFFile::get_string_opt(const std::string& key) const {
  if (!get_meta(key)) return std::nullopt;
  return get_string(key);
}

// ---- GGUFWriter -----------------------------------------------------------------------------

namespace {

class FileOut {
 public:
  FileOut(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("{}: cannot create: {}", path, std::strerror(errno));
  }
  ~FileOut() {
    if (fd_ >= 0) ::close(fd_);
  }
  void write(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    while (n > 0) {
      const ssize_t w = ::write(fd_, b, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("{}: write failed: {}", path_, std::strerror(errno));
      }
      b += w;
      n -= static_cast<size_t>(w);
      written_ += static_cast<size_t>(w);
    }
  }
  template <class T>
  void put(T v) {
    write(&v, sizeof v);
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    write(s.data(), s.size());
  }
  void pad_to(size_t align) {
    static const uint8_t zeros[256] = {};
    size_t k = (align - written_ % align) % align;
    while (k > 0) {
      const size_t m = std::min(k, sizeof zeros);
      write(zeros, m);
      k -= m;
    }
  }
  void sync_and_close() {
    if (::fsync(fd_) != 0) fail("{}: fsync failed: {}", path_, std::strerror(errno));
    if (::close(fd_) != 0) {
      fd_ = -1;
      fail("{}: close failed: {}", path_, std::strerror(errno));
    }
    fd_ = -1;
  }
  size_t written() const { return written_; }

 private:
  std::string path_;
  int fd_ = -1;
  size_t written_ = 0;
};

void write_value(FileOut& f, const GGUFValue& v) {
  switch (v.type) {
    case GGUFType::U8:
      f.put<uint8_t>(static_cast<uint8_t>(v.as_int()));
      break;
    case GGUFType::I8:
      f.put<int8_t>(static_cast<int8_t>(v.as_int()));
      break;
    case GGUFType::U16:
      f.put<uint16_t>(static_cast<uint16_t>(v.as_int()));
      break;
    case GGUFType::I16:
      f.put<int16_t>(static_cast<int16_t>(v.as_int()));
      break;
    case GGUFType::U32:
      f.put<uint32_t>(static_cast<uint32_t>(v.as_int()));
      break;
    case GGUFType::I32:
      f.put<int32_t>(static_cast<int32_t>(v.as_int()));
      break;
    case GGUFType::U64: {
      const auto* u = std::get_if<uint64_t>(&v.v);
      f.put<uint64_t>(u ? *u : static_cast<uint64_t>(v.as_int()));
      break;
    }
    case GGUFType::I64:
      f.put<int64_t>(v.as_int());
      break;
    case GGUFType::F32:
      f.put<float>(static_cast<float>(v.as_double()));
      break;
    case GGUFType::F64:
      f.put<double>(v.as_double());
      break;
    case GGUFType::BOOL:
      f.put<uint8_t>(v.as_bool() ? 1 : 0);
      break;
    case GGUFType::STRING:
      f.put_string(v.as_string());
      break;
    case GGUFType::ARRAY: {
      const auto& a = v.as_array();
      f.put<uint32_t>(static_cast<uint32_t>(v.elem_type));
      f.put<uint64_t>(a.size());
      for (const auto& x : a) write_value(f, x);
      break;
    }
  }
}

}  // namespace

void GGUFWriter::set(const std::string& key, GGUFValue v) {
  if (key == "general.alignment") {
    const int64_t a = v.as_int();
    FLASHRT_CHECK(a > 0 && a <= 65536 && (a & (a - 1)) == 0,
                  "GGUF alignment {} is not a power of two between 1 and 65536", a);
    alignment_ = static_cast<size_t>(a);
  }
  for (auto& [k, old] : kv_)
    if (k == key) {
      old = std::move(v);
      return;
    }
  kv_.emplace_back(key, std::move(v));
}

void GGUFWriter::add_tensor(const std::string& name, DType dtype, std::vector<int64_t> shape,
                            Producer produce) {
  FLASHRT_CHECK(!shape.empty() && shape.size() <= kMaxDims, "GGUF tensor '{}': {} dimensions", name,
                shape.size());
  FLASHRT_CHECK(shape.back() % dtype_info(dtype).block_elems == 0,
                "GGUF tensor '{}': row length {} is not a multiple of the {} block size", name,
                shape.back(), dtype_name(dtype));
  dtype_to_ggml_type(dtype);  // throws for types GGUF cannot hold
  for (const auto& t : tensors_)
    FLASHRT_CHECK(t.name != name, "GGUF tensor '{}' added twice", name);
  tensors_.push_back({name, dtype, std::move(shape), std::move(produce)});
}

void GGUFWriter::add_tensor_bytes(const std::string& name, DType dtype, std::vector<int64_t> shape,
                                  const void* data) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  const size_t bytes = dtype_bytes(dtype, n);
  add_tensor(name, dtype, std::move(shape),
             [data, bytes](uint8_t* dst) { std::memcpy(dst, data, bytes); });
}

void GGUFWriter::write(const std::string& path, const std::string& progress_label) const {
  namespace fs = std::filesystem;
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  try {
    FileOut f(tmp);
    f.put<uint32_t>(kMagic);
    f.put<uint32_t>(3);
    f.put<uint64_t>(tensors_.size());
    f.put<uint64_t>(kv_.size());
    for (const auto& [k, v] : kv_) {
      f.put_string(k);
      f.put<uint32_t>(static_cast<uint32_t>(v.type));
      write_value(f, v);
    }
    std::vector<size_t> sizes;
    uint64_t offset = 0, total = 0;
    for (const auto& t : tensors_) {
      int64_t n = 1;
      for (auto d : t.shape) n *= d;
      const size_t bytes = dtype_bytes(t.dtype, n);
      sizes.push_back(bytes);
      f.put_string(t.name);
      f.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
      for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it)
        f.put<uint64_t>(static_cast<uint64_t>(*it));
      f.put<uint32_t>(dtype_to_ggml_type(t.dtype));
      f.put<uint64_t>(offset);
      offset += (bytes + alignment_ - 1) / alignment_ * alignment_;
      total += bytes;
    }
    f.pad_to(alignment_);
    Progress progress(progress_label.empty() ? "writing" : progress_label, total);
    std::vector<uint8_t> buf;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      buf.assign(sizes[i], 0);
      tensors_[i].produce(buf.data());
      f.write(buf.data(), buf.size());
      f.pad_to(alignment_);
      progress.add(sizes[i]);
    }
    progress.finish();
    f.sync_and_close();
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) fail("{}: cannot move the finished file into place: {}", path, ec.message());
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

}  // namespace flashrt
