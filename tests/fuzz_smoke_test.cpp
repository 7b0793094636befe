// Runs the libFuzzer targets in fuzz/ in every test run, without clang: their entry points are
// compiled in under other names and fed a deterministic corpus (valid files plus seeded mutations:
// bit flips, truncations, inserted bytes, length fields set to huge values, JSON numbers and dtypes
// swapped). Real fuzzing (-DFLASHRT_FUZZ=ON) explores far more; this keeps the targets building and
// catches regressions on the cases that matter most, in a few seconds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_paths.h"

// A broken invariant becomes an exception the test reports with its input, instead of a trap.
#define FLASHRT_FUZZ_REQUIRE(cond)                                        \
  do {                                                                    \
    if (!(cond)) throw std::logic_error("fuzz invariant failed: " #cond); \
  } while (0)

#define FLASHRT_FUZZ_ENTRY flashrt_fuzz_gguf_parse
#include "../fuzz/gguf_parse.cpp"
#undef FLASHRT_FUZZ_ENTRY

#define FLASHRT_FUZZ_ENTRY flashrt_fuzz_safetensors_parse
#include "../fuzz/safetensors_parse.cpp"
#undef FLASHRT_FUZZ_ENTRY

#define FLASHRT_FUZZ_ENTRY flashrt_fuzz_capsule_parse
#include "../fuzz/capsule_parse.cpp"
#undef FLASHRT_FUZZ_ENTRY

#define FLASHRT_FUZZ_ENTRY flashrt_fuzz_http_framing
#include "../fuzz/http_framing.cpp"
#undef FLASHRT_FUZZ_ENTRY

#include <xxhash.h>

namespace flashrt {
namespace {

namespace fs = std::filesystem;
using Entry = int (*)(const uint8_t*, size_t);

// A numeric field of a seed file: where it is and how wide (4 or 8 bytes).
struct Field {
  size_t pos;
  int width;
};

// Values that sit on the parsers' limits or overflow them.
uint64_t interesting(std::mt19937_64& rng, size_t size) {
  static const uint64_t kValues[] = {
      0, 1, 2, 5, 8, 12, 13, 31, 32, 33, 255, 65535, 65536, 0x7fffffff, 0xffffffff,
      // Past the per-dimension (2^40) and per-tensor (2^42) limits, and the signed/unsigned edges.
      uint64_t{1} << 32, uint64_t{1} << 40, (uint64_t{1} << 40) + 1, uint64_t{1} << 42,
      uint64_t{1} << 62, 0x7fffffffffffffff, 0x8000000000000000, ~uint64_t{31}, ~uint64_t{0}};
  const size_t k = rng() % (std::size(kValues) + 3);
  if (k < std::size(kValues)) return kValues[k];
  return size + k - std::size(kValues) - 1;  // size - 1, size, size + 1
}

class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}
  size_t below(size_t n) { return n ? static_cast<size_t>(rng_() % n) : 0; }

  // One to four byte-level mutations; `fields` are candidates for huge values.
  void mutate_bytes(std::vector<uint8_t>* b, const std::vector<Field>& fields) {
    const size_t count = 1 + below(4);
    for (size_t i = 0; i < count; ++i) {
      switch (below(7)) {
        case 0:  // flip a bit
          if (!b->empty()) (*b)[below(b->size())] ^= static_cast<uint8_t>(1u << below(8));
          break;
        case 1:  // set a byte
          if (!b->empty()) (*b)[below(b->size())] = static_cast<uint8_t>(rng_());
          break;
        case 2:  // truncate
          b->resize(below(b->size() + 1));
          break;
        case 3: {  // insert random bytes
          const size_t at = below(b->size() + 1), n = 1 + below(16);
          std::vector<uint8_t> ins(n);
          for (auto& x : ins) x = static_cast<uint8_t>(rng_());
          b->insert(b->begin() + static_cast<ptrdiff_t>(at), ins.begin(), ins.end());
          break;
        }
        case 4: {  // duplicate a chunk (duplicate keys, tensors, repeated fields)
          if (b->empty()) break;
          const size_t from = below(b->size()),
                       n = 1 + below(std::min<size_t>(64, b->size() - from));
          const std::vector<uint8_t> chunk(b->begin() + static_cast<ptrdiff_t>(from),
                                           b->begin() + static_cast<ptrdiff_t>(from + n));
          b->insert(b->begin() + static_cast<ptrdiff_t>(below(b->size() + 1)), chunk.begin(),
                    chunk.end());
          break;
        }
        default: {  // a length, count, type, dim or offset field set to an edge value
          if (fields.empty()) break;
          const Field f = fields[below(fields.size())];
          if (f.pos + static_cast<size_t>(f.width) > b->size()) break;
          const uint64_t v = interesting(rng_, b->size());
          std::memcpy(b->data() + f.pos, &v, static_cast<size_t>(f.width));  // little-endian
          break;
        }
      }
    }
  }

  // Swaps a number, a dtype or a punctuation character of a JSON header for an edge case.
  void mutate_json(std::string* s) {
    static const char* kNumbers[] = {
        "0", "1", "-1", "2.5", "1e30", "null", "\"4\"", "[]", "{}", "true",
        // Past uint64, int64, the 2^40 dimension and 2^42 element limits; products that overflow.
        "18446744073709551615", "18446744073709551616", "9223372036854775807", "1099511627776",
        "16777216", "4398046511104", "4294967296"};
    static const char* kDtypes[] = {"F32",     "F16",  "BF16", "I64", "U8",
                                    "F8_E4M3", "Q4_0", "",     "bf16"};
    const size_t count = 1 + below(3);
    for (size_t i = 0; i < count && !s->empty(); ++i) {
      const size_t at = below(s->size());
      if (below(3) == 0) {  // a dtype
        const size_t p = s->find("\"dtype\":\"", at);
        if (p == std::string::npos) continue;
        const size_t b = p + 9, e = s->find('"', b);
        s->replace(b, e - b, kDtypes[below(std::size(kDtypes))]);
      } else if (below(4) != 0) {  // a number
        size_t b = s->find_first_of("0123456789", at);
        if (b == std::string::npos) continue;
        size_t e = b;
        while (e < s->size() && std::isdigit(static_cast<unsigned char>((*s)[e]))) ++e;
        s->replace(b, e - b, kNumbers[below(std::size(kNumbers))]);
      } else {  // structure
        static const char kPunct[] = "{}[],:\"\\ ";
        (*s)[at] = kPunct[below(sizeof kPunct - 1)];
      }
    }
  }

 private:
  std::mt19937_64 rng_;
};

// The numeric fields of a valid GGUF file (written by GGUFWriter, so the walk needs no checks).
std::vector<Field> gguf_fields(const std::vector<uint8_t>& b) {
  std::vector<Field> fields;
  size_t p = 0;
  auto u32 = [&] {
    uint32_t v;
    std::memcpy(&v, &b[p], 4);
    fields.push_back({p, 4});
    p += 4;
    return v;
  };
  auto u64 = [&] {
    uint64_t v;
    std::memcpy(&v, &b[p], 8);
    fields.push_back({p, 8});
    p += 8;
    return v;
  };
  auto skip_string = [&] { p += u64(); };
  std::function<void(uint32_t)> value = [&](uint32_t type) {
    switch (static_cast<GGUFType>(type)) {
      case GGUFType::U8:
      case GGUFType::I8:
      case GGUFType::BOOL:
        p += 1;
        break;
      case GGUFType::U16:
      case GGUFType::I16:
        p += 2;
        break;
      case GGUFType::U32:
      case GGUFType::I32:
      case GGUFType::F32:
        u32();
        break;
      case GGUFType::U64:
      case GGUFType::I64:
      case GGUFType::F64:
        u64();
        break;
      case GGUFType::STRING:
        skip_string();
        break;
      case GGUFType::ARRAY: {
        const uint32_t et = u32();
        for (uint64_t i = 0, n = u64(); i < n; ++i) value(et);
        break;
      }
    }
  };
  fields.push_back({0, 4});  // magic
  p = 4;
  u32();  // version
  const uint64_t n_tensors = u64(), n_kv = u64();
  for (uint64_t i = 0; i < n_kv; ++i) {
    skip_string();
    value(u32());
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    skip_string();
    for (uint32_t d = 0, nd = u32(); d < nd; ++d) u64();
    u32();  // type
    u64();  // offset
  }
  return fields;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// With FLASHRT_FUZZ_CORPUS=DIR set, the seeds of each target are written to DIR/TARGET/ as well:
// fuzz/run.sh seeds libFuzzer's corpus with them (the formats whose seeds are built in code).
void export_seeds(const std::string& target, const std::vector<std::vector<uint8_t>>& seeds) {
  const char* dir = std::getenv("FLASHRT_FUZZ_CORPUS");
  if (!dir || !*dir) return;
  const fs::path out = fs::path(dir) / target;
  fs::create_directories(out);
  for (size_t i = 0; i < seeds.size(); ++i)
    std::ofstream(out / ("seed" + std::to_string(i)), std::ios::binary)
        .write(reinterpret_cast<const char*>(seeds[i].data()),
               static_cast<std::streamsize>(seeds[i].size()));
}

// Small GGUF files with every metadata kind and several tensor types.
std::vector<std::vector<uint8_t>> gguf_seeds() {
  const fs::path dir =
      fs::temp_directory_path() / ("flashrt-fuzz-smoke-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::vector<std::vector<uint8_t>> seeds;
  for (int variant = 0; variant < 3; ++variant) {
    GGUFWriter w;
    w.set("general.architecture", GGUFValue::str("qwen3"));
    if (variant == 1) w.set("general.alignment", GGUFValue::u32(64));
    w.set("qwen3.block_count", GGUFValue::u32(2));
    w.set("qwen3.rope.freq_base", GGUFValue::f32(1e6f));
    w.set("i64", GGUFValue{GGUFType::I64, GGUFType::U32, int64_t{-3}});
    w.set("u8", GGUFValue{GGUFType::U8, GGUFType::U32, uint64_t{9}});
    w.set("flag", GGUFValue::boolean(true));
    w.set("tokenizer.ggml.tokens", GGUFValue::str_array({"a", "b", "<|im_end|>", ""}));
    w.set("tokenizer.ggml.token_type", GGUFValue::i32_array({1, 1, 3, 1}));
    w.set("scores", GGUFValue::f32_array({0.5f, -1.0f}));
    w.set("nested", GGUFValue{GGUFType::ARRAY, GGUFType::ARRAY,
                              std::vector<GGUFValue>{GGUFValue::u32_array({1, 2}),
                                                     GGUFValue::u32_array({})}});
    static const std::vector<uint8_t> zeros(4096);
    if (variant != 2) {
      w.add_tensor_bytes("token_embd.weight", DType::F16, {3, 5}, zeros.data());
      w.add_tensor_bytes("blk.0.attn_q.weight", DType::Q8_0, {2, 64}, zeros.data());
      w.add_tensor_bytes("blk.0.ffn_up.weight", DType::Q4_0, {32}, zeros.data());
      w.add_tensor_bytes("output_norm.weight", DType::F32, {7}, zeros.data());
      w.add_tensor_bytes("blk.0.attn_k.weight", DType::BF16, {1, 2, 1, 3}, zeros.data());
    }
    const std::string path = (dir / ("seed" + std::to_string(variant) + ".gguf")).string();
    w.write(path);
    seeds.push_back(read_bytes(path));
  }
  fs::remove_all(dir);
  return seeds;
}

// Feeds `in` through an exact-size heap copy (so AddressSanitizer sees over-reads); returns false
// and records the input when the target throws anything.
bool run_one(Entry entry, const std::vector<uint8_t>& in, const std::string& label) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[in.size() + (in.empty() ? 1 : 0)]);
  if (!in.empty()) std::memcpy(copy.get(), in.data(), in.size());
  std::string error;
  try {
    entry(copy.get(), in.size());
    return true;
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "a non-std exception";
  }
  // Save the input for the real fuzz target (fuzz_x FILE reproduces it).
  const std::string file =
      (fs::temp_directory_path() / ("flashrt-fuzz-failure-" + label + ".bin")).string();
  std::ofstream(file, std::ios::binary)
      .write(reinterpret_cast<const char*>(in.data()), static_cast<std::streamsize>(in.size()));
  ADD_FAILURE() << label << ": " << error << " (" << in.size() << " bytes, saved to " << file
                << ")";
  return false;
}

using Mutant = std::function<std::vector<uint8_t>(Mutator&, size_t)>;
using Accepts = std::function<bool(const std::vector<uint8_t>&)>;

// Runs `iterations` mutants of each seed; stops after a few failures to keep the log readable.
// `accepts` (the parser alone) counts the mutants that still parse: a corpus where none or all do
// would exercise only one side of the parser.
void run_corpus(Entry entry, const std::string& name,
                const std::vector<std::vector<uint8_t>>& seeds, int iterations,
                const Mutant& mutant, const Accepts& accepts) {
  int failures = 0;
  for (size_t s = 0; s < seeds.size(); ++s) {
    ASSERT_TRUE(run_one(entry, seeds[s], name + "-seed" + std::to_string(s)));
    Mutator m(0x5eed0000 + s);
    int accepted = 0;
    for (int i = 0; i < iterations && failures < 5; ++i) {
      const std::vector<uint8_t> in = mutant(m, s);
      if (!run_one(entry, in, name + "-" + std::to_string(s) + "-" + std::to_string(i))) ++failures;
      accepted += accepts(in) ? 1 : 0;
    }
    EXPECT_GT(accepted, iterations / 100) << name << " seed " << s;
    EXPECT_LT(accepted, iterations / 2) << name << " seed " << s;
    std::printf("%s seed %zu: %d of %d mutants parse\n", name.c_str(), s, accepted, iterations);
  }
}

TEST(FuzzSmoke, GGUFParse) {
  const auto seeds = gguf_seeds();
  std::vector<std::vector<Field>> fields;
  for (const auto& s : seeds) {
    // The seeds must be valid, or the mutants would test nothing past the first error.
    ASSERT_NO_THROW(GGUFFile::parse(s.data(), s.size(), "seed.gguf"));
    fields.push_back(gguf_fields(s));
    ASSERT_GT(fields.back().size(), 20u);
  }
  export_seeds("gguf_parse", seeds);
  // Every prefix of every seed.
  for (size_t s = 0; s < seeds.size(); ++s)
    for (size_t len = 0; len < seeds[s].size(); ++len)
      run_one(flashrt_fuzz_gguf_parse,
              {seeds[s].begin(), seeds[s].begin() + static_cast<ptrdiff_t>(len)},
              "gguf-prefix-" + std::to_string(s) + "-" + std::to_string(len));
  run_corpus(
      flashrt_fuzz_gguf_parse, "gguf", seeds, 4000,
      [&](Mutator& m, size_t s) {
        std::vector<uint8_t> b = seeds[s];
        m.mutate_bytes(&b, fields[s]);
        return b;
      },
      [](const std::vector<uint8_t>& b) {
        try {
          GGUFFile::parse(b.data(), b.size(), "mutant.gguf");
          return true;
        } catch (const Error&) {
          return false;
        }
      });
}

// A safetensors file split into its JSON header and payload, so mutants can change the header
// text and still carry a consistent length field (or, sometimes, an inconsistent one).
struct StSeed {
  std::string header;
  std::vector<uint8_t> payload;
};

// Sized up front and copied with memcpy: GCC 12 warns falsely (-Warray-bounds,
// -Wstringop-overflow) about vector::insert at the end of a short vector.
std::vector<uint8_t> concat(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  std::vector<uint8_t> out(a.size() + b.size());
  if (!a.empty()) std::memcpy(out.data(), a.data(), a.size());
  if (!b.empty()) std::memcpy(out.data() + a.size(), b.data(), b.size());
  return out;
}

std::vector<uint8_t> assemble(const std::string& header, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> head(8 + header.size());
  const uint64_t n = header.size();
  std::memcpy(head.data(), &n, 8);
  if (n) std::memcpy(head.data() + 8, header.data(), n);
  return concat(head, payload);
}

StSeed split(const std::vector<uint8_t>& file) {
  uint64_t n;
  std::memcpy(&n, file.data(), 8);
  return {std::string(file.begin() + 8, file.begin() + 8 + static_cast<ptrdiff_t>(n)),
          std::vector<uint8_t>(file.begin() + 8 + static_cast<ptrdiff_t>(n), file.end())};
}

TEST(FuzzSmoke, SafetensorsParse) {
  std::vector<StSeed> seeds;
  const std::string reference = shared_dir() + "/reference/qwen3/model.safetensors";
  const std::vector<uint8_t> reference_bytes = read_bytes(reference);
  ASSERT_GT(reference_bytes.size(), 8u) << reference;
  seeds.push_back(split(reference_bytes));
  ASSERT_GT(seeds[0].header.size(), 1000u);
  seeds.push_back(
      {R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
       R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},)"
       R"("s":{"dtype":"I64","shape":[],"data_offsets":[32,40]},)"
       R"("e":{"dtype":"U8","shape":[0],"data_offsets":[40,40]}})",
       std::vector<uint8_t>(40, 7)});
  std::vector<std::vector<uint8_t>> files;
  for (const auto& s : seeds) {
    files.push_back(assemble(s.header, s.payload));
    std::map<std::string, TensorInfo> t;
    ASSERT_NO_THROW(
        SafetensorsFile::parse(files.back().data(), files.back().size(), "seed", &t, nullptr));
  }
  export_seeds("safetensors_parse", {files[1]});  // the 1.7 MB reference would slow libFuzzer
  for (size_t len = 0; len < files[1].size(); ++len)
    run_one(flashrt_fuzz_safetensors_parse,
            {files[1].begin(), files[1].begin() + static_cast<ptrdiff_t>(len)},
            "safetensors-prefix-" + std::to_string(len));

  // The reference header is 3.8 KB of JSON (slow to parse in a sanitizer build) and the file
  // 1.7 MB, so it gets fewer mutants than the small one.
  const std::vector<int> iterations = {250, 2000};
  for (size_t s = 0; s < seeds.size(); ++s) {
    run_corpus(
        flashrt_fuzz_safetensors_parse, "safetensors" + std::to_string(s), {files[s]},
        iterations[s],
        [&](Mutator& m, size_t) {
          if (m.below(4) == 0) {  // raw bytes of the header region and the length field
            std::vector<uint8_t> head = assemble(seeds[s].header, {});
            m.mutate_bytes(&head, {{0, 8}});
            return concat(head, seeds[s].payload);
          }
          std::string header = seeds[s].header;
          m.mutate_json(&header);
          std::vector<uint8_t> b = assemble(header, seeds[s].payload);
          if (m.below(8) == 0) m.mutate_bytes(&b, {{0, 8}});  // an inconsistent length too
          return b;
        },
        [](const std::vector<uint8_t>& b) {
          std::map<std::string, TensorInfo> t;
          try {
            SafetensorsFile::parse(b.data(), b.size(), "mutant", &t, nullptr);
            return true;
          } catch (const Error&) {
            return false;
          }
        });
  }
}

// Capsule files: a small capsule (positional, fixed and meta regions) written plain and with zstd.
std::vector<std::vector<uint8_t>> capsule_seeds() {
  const fs::path dir =
      fs::temp_directory_path() / ("flashrt-fuzz-capsule-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  Capsule c;
  c.fingerprint = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  c.pos = 3;
  c.entries = {{"attn.0.k", DType::F16, RegionKind::kPositional, {3, 2, 4}, 48, 0, 0},
               {"gdn.1.state", DType::F32, RegionKind::kFixed, {2, 3, 3}, 72, 48, 0},
               {"meta.pos", DType::I64, RegionKind::kMeta, {1}, 8, 120, 0},
               {"meta.empty", DType::U8, RegionKind::kFixed, {0}, 0, 128, 0}};
  c.data = std::shared_ptr<uint8_t>(new uint8_t[128], std::default_delete<uint8_t[]>());
  for (int i = 0; i < 128; ++i) c.data.get()[i] = static_cast<uint8_t>(i * 7 + 1);
  std::vector<std::vector<uint8_t>> seeds;
  for (bool zstd : {false, true}) {
    const std::string path = (dir / (zstd ? "z.cap" : "plain.cap")).string();
    CapsuleWriteOptions o;
    o.zstd = zstd;
    write_capsule_file(c, path, o);
    seeds.push_back(read_bytes(path));
  }
  fs::remove_all(dir);
  return seeds;
}

// The numeric fields of a capsule file: header (version, flags, position, counts, sizes) and
// every manifest entry (name length, dtype/kind/rank bytes, shape, sizes, offset).
std::vector<Field> capsule_fields(const std::vector<uint8_t>& b) {
  std::vector<Field> f = {{8, 4}, {12, 4}, {32, 8}, {40, 4}, {48, 8}};
  uint64_t manifest = 0;
  uint32_t n = 0;
  std::memcpy(&manifest, b.data() + 48, 8);
  std::memcpy(&n, b.data() + 40, 4);
  size_t p = 64;
  for (uint32_t i = 0; i < n && p + 2 <= b.size(); ++i) {
    uint16_t len;
    std::memcpy(&len, b.data() + p, 2);
    f.push_back({p, 2});
    p += 2 + len;
    f.push_back({p, 1});      // dtype
    f.push_back({p + 1, 1});  // kind
    f.push_back({p + 2, 1});  // rank
    const uint8_t nd = b[p + 2];
    p += 4;
    for (int d = 0; d < nd; ++d, p += 8) f.push_back({p, 8});
    for (int k = 0; k < 3; ++k, p += 8) f.push_back({p, 8});  // raw, stored, offset
    p += 8;                                                   // checksum
  }
  return f;
}

// Recomputes the header checksum (header[0..56) + manifest) of a mutant, where its manifest size
// still fits, so mutations get past it to the manifest checks.
void reseal_capsule_header(std::vector<uint8_t>* b) {
  if (b->size() < 64) return;
  uint64_t manifest;
  std::memcpy(&manifest, b->data() + 48, 8);
  if (manifest > b->size() - 64) return;
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  XXH3_64bits_update(st, b->data(), 56);
  XXH3_64bits_update(st, b->data() + 64, manifest);
  const uint64_t sum = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  std::memcpy(b->data() + 56, &sum, 8);
}

TEST(FuzzSmoke, CapsuleParse) {
  const auto seeds = capsule_seeds();
  std::vector<std::vector<Field>> fields;
  for (const auto& s : seeds) {
    ASSERT_NO_THROW(parse_capsule_bytes(s.data(), s.size(), "seed.cap"));
    fields.push_back(capsule_fields(s));
    ASSERT_GT(fields.back().size(), 25u);
  }
  export_seeds("capsule_parse", seeds);
  for (size_t s = 0; s < seeds.size(); ++s)
    for (size_t len = 0; len < seeds[s].size(); ++len)
      run_one(flashrt_fuzz_capsule_parse,
              {seeds[s].begin(), seeds[s].begin() + static_cast<ptrdiff_t>(len)},
              "capsule-prefix-" + std::to_string(s) + "-" + std::to_string(len));
  // Checksums reject nearly every mutant, so there are no bounds on the accepted share here; what
  // counts is that every mutant is refused with an Error or parses into a consistent capsule.
  int failures = 0;
  for (size_t s = 0; s < seeds.size(); ++s) {
    Mutator m(0xca95u + s);
    for (int i = 0; i < 3000 && failures < 5; ++i) {
      std::vector<uint8_t> b = seeds[s];
      m.mutate_bytes(&b, fields[s]);
      if (m.below(4) != 0) reseal_capsule_header(&b);
      if (!run_one(flashrt_fuzz_capsule_parse, b,
                   "capsule-" + std::to_string(s) + "-" + std::to_string(i)))
        ++failures;
    }
  }
  EXPECT_EQ(failures, 0);
}

// Raw connections to a live server: the seeds of fuzz/corpus/http_framing (well-formed requests of
// every route plus the framing attacks of the hardening issue), then byte mutants of them and
// mutants whose Content-Length is set to an edge value.
TEST(FuzzSmoke, HttpFraming) {
  std::vector<std::vector<uint8_t>> seeds;
  for (const auto& e : fs::directory_iterator(source_dir() + "/fuzz/corpus/http_framing"))
    seeds.push_back(read_bytes(e.path().string()));
  ASSERT_GE(seeds.size(), 15u);
  static const char* kLengths[] = {"0",  "-1",   "1", "18446744073709551616", "99999999999", "2, 3",
                                   " 4", "0x10", ""};
  int failures = 0;
  for (size_t s = 0; s < seeds.size(); ++s) {
    ASSERT_TRUE(run_one(flashrt_fuzz_http_framing, seeds[s], "http-seed" + std::to_string(s)));
    Mutator m(0x4779u + s);
    for (int i = 0; i < 20 && failures < 5; ++i) {
      std::vector<uint8_t> b = seeds[s];
      std::string text(b.begin(), b.end());
      const size_t cl = text.find("Content-Length: ");
      if (cl != std::string::npos && m.below(2) == 0) {
        const size_t end = text.find("\r\n", cl);
        text.replace(cl + 16, end - cl - 16, kLengths[m.below(std::size(kLengths))]);
        b.assign(text.begin(), text.end());
      } else {
        m.mutate_bytes(&b, {});
      }
      if (!run_one(flashrt_fuzz_http_framing, b,
                   "http-" + std::to_string(s) + "-" + std::to_string(i)))
        ++failures;
    }
  }
  EXPECT_EQ(failures, 0);
}

}  // namespace
}  // namespace flashrt

// Constrained decoding: GBNF grammars and JSON schemas (both arrive in requests).
#define FLASHRT_FUZZ_ENTRY flashrt_fuzz_grammar_parse
#include "../fuzz/grammar_parse.cpp"
#undef FLASHRT_FUZZ_ENTRY

#define FLASHRT_FUZZ_ENTRY flashrt_fuzz_json_schema
#include "../fuzz/json_schema.cpp"
#undef FLASHRT_FUZZ_ENTRY

namespace flashrt {
namespace {

// A corpus's seeds in file-name order (the directory's own order differs between machines).
std::vector<std::vector<uint8_t>> corpus_seeds(const std::string& target) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(source_dir() + "/fuzz/corpus/" + target))
    files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<std::vector<uint8_t>> seeds;
  for (const auto& f : files) seeds.push_back(read_bytes(f.string()));
  return seeds;
}

// Seeds, their prefixes, byte mutants and (for text) swaps of the syntax's operators.
int fuzz_text_target(Entry entry, const std::string& name,
                     const std::vector<std::vector<uint8_t>>& seeds, const char* tokens,
                     int iterations) {
  int failures = 0;
  for (size_t s = 0; s < seeds.size(); ++s) {
    // Prefixes every few bytes (about 200 of a long seed): cuts inside every kind of token.
    const size_t step = std::max<size_t>(3, seeds[s].size() / 200);
    for (size_t len = 0; len <= seeds[s].size(); len += step)
      if (!run_one(entry, {seeds[s].begin(), seeds[s].begin() + static_cast<ptrdiff_t>(len)},
                   name + "-prefix-" + std::to_string(s) + "-" + std::to_string(len)))
        ++failures;
    Mutator m(0x6b9fu + s);
    for (int i = 0; i < iterations && failures < 5; ++i) {
      std::vector<uint8_t> b = seeds[s];
      if (m.below(2) == 0) {
        m.mutate_bytes(&b, {});
      } else {
        std::string text(b.begin(), b.end());
        if (name == "json_schema" && m.below(2) == 0) {
          m.mutate_json(&text);
        } else {
          for (size_t k = 0, n = 1 + m.below(3); k < n && !text.empty(); ++k)
            text[m.below(text.size())] = tokens[m.below(std::strlen(tokens))];
        }
        b.assign(text.begin(), text.end());
      }
      if (!run_one(entry, b, name + "-" + std::to_string(s) + "-" + std::to_string(i))) ++failures;
    }
  }
  return failures;
}

TEST(FuzzSmoke, GrammarParse) {
  const auto seeds = corpus_seeds("grammar_parse");
  ASSERT_GE(seeds.size(), 5u);
  EXPECT_EQ(fuzz_text_target(flashrt_fuzz_grammar_parse, "grammar_parse", seeds,
                             "\"[]()|*+?{},-^\\.:=#\n x09", 600),
            0);
}

TEST(FuzzSmoke, JsonSchema) {
  const auto seeds = corpus_seeds("json_schema");
  ASSERT_GE(seeds.size(), 5u);
  EXPECT_EQ(fuzz_text_target(flashrt_fuzz_json_schema, "json_schema", seeds,
                             "{}[]\",:0123456789-.e#/$tfn", 600),
            0);
}

}  // namespace
}  // namespace flashrt

// Chat templates: untrusted Jinja from model files, parsed and rendered.
#define FLASHRT_FUZZ_ENTRY flashrt_fuzz_jinja_template
#include "../fuzz/jinja_template.cpp"
#undef FLASHRT_FUZZ_ENTRY

namespace flashrt {
namespace {

// The seeds of fuzz/corpus/jinja_template (popular chat templates and a feature mix), about 200
// prefixes of each (cut inside tags, strings and blocks), byte mutants, and mutants with
// Jinja's syntax characters swapped in (whitespace markers, brackets, operators, tag ends).
TEST(FuzzSmoke, JinjaTemplate) {
  const std::vector<std::vector<uint8_t>> seeds = corpus_seeds("jinja_template");
  ASSERT_GE(seeds.size(), 8u);
  EXPECT_EQ(fuzz_text_target(flashrt_fuzz_jinja_template, "jinja_template", seeds,
                             "{}%#-+|.()[]'\"~,:=!<>*/ \n\\0123456789", 300),
            0);
}

}  // namespace
}  // namespace flashrt
