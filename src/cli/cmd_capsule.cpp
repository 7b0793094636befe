// flashrt capsule save | inspect | verify: execution-state capsules as files.
#include <chrono>
#include <cstdio>

#include "capsule/capsule_file.h"
#include "cli/common.h"
#include "core/error.h"
#include "tokenizer/gguf_vocab.h"

namespace flashrt::cli {

namespace {

std::string human_bytes(uint64_t n) {
  if (n >= (1ull << 30)) return fmt::format("{:.2f} GiB", n / double(1ull << 30));
  if (n >= (1ull << 20)) return fmt::format("{:.2f} MiB", n / double(1ull << 20));
  if (n >= (1ull << 10)) return fmt::format("{:.1f} KiB", n / double(1ull << 10));
  return fmt::format("{} B", n);
}

}  // namespace

void register_capsule(CLI::App& app) {
  auto* cap = app.add_subcommand("capsule", "Save, inspect and verify execution-state capsules");
  cap->require_subcommand(1);

  struct SaveOpts {
    ModelOptions m;
    std::string prompt, ids, out;
    bool zstd = false;
  };
  auto so = std::make_shared<SaveOpts>();
  auto* save =
      cap->add_subcommand("save", "Prefill a prompt and save the whole state as a capsule file");
  add_model_options(save, so->m);
  auto* ids = save->add_option("--ids", so->ids, "Prompt as token ids");
  save->add_option("-p,--prompt", so->prompt, "Prompt text")->excludes(ids);
  save->add_option("-o,--output", so->out, "Capsule file to write")->required()->check(kOutputFile);
  save->add_flag("--zstd", so->zstd, "Compress the payloads with zstd");
  save->callback([so] {
    auto loaded = load(so->m);
    Session s(*loaded.model, *loaded.backend, session_options(so->m));
    const auto prompt =
        so->ids.empty() ? load_tokenizer(so->m.model).encode(so->prompt) : parse_ids(so->ids);
    FLASHRT_CHECK(!prompt.empty(), "the prompt is empty (give -p TEXT or --ids)");
    const auto t0 = std::chrono::steady_clock::now();
    s.append(prompt);
    const auto t1 = std::chrono::steady_clock::now();
    CapsuleWriteOptions wo;
    wo.zstd = so->zstd;
    const uint64_t bytes =
        write_capsule_file(to_host(s.snapshot(Tier::kHost), *loaded.backend), so->out, wo);
    const auto t2 = std::chrono::steady_clock::now();
    std::fprintf(stderr, "saved %s: %zu tokens, %s (prefill %.1f ms, save %.1f ms)\n",
                 so->out.c_str(), prompt.size(), human_bytes(bytes).c_str(),
                 std::chrono::duration<double, std::milli>(t1 - t0).count(),
                 std::chrono::duration<double, std::milli>(t2 - t1).count());
  });

  auto path = std::make_shared<std::string>();
  auto* inspect =
      cap->add_subcommand("inspect", "Print a capsule's manifest, sizes, fingerprint and position");
  inspect->add_option("file", *path, "Capsule file")->required();
  inspect->callback([path] {
    const CapsuleFileInfo info = inspect_capsule_file(*path);
    const Capsule& c = info.capsule;
    std::printf("capsule:     %s\n", path->c_str());
    std::printf("format:      version %u%s, %s on disk, %s of state\n", info.version,
                info.zstd ? ", zstd" : "", human_bytes(info.file_bytes).c_str(),
                human_bytes(c.payload_bytes()).c_str());
    std::printf("fingerprint: %s\n", c.fingerprint.hex().c_str());
    std::printf("position:    %lld tokens\n", static_cast<long long>(c.pos));
    std::printf("regions:     %zu\n", c.entries.size());
    std::printf("  %-18s %-5s %-10s %-18s %12s %12s  %s\n", "name", "dtype", "kind", "shape",
                "bytes", "stored", "xxh3");
    for (size_t i = 0; i < c.entries.size(); ++i) {
      const auto& e = c.entries[i];
      std::printf("  %-18s %-5s %-10s %-18s %12llu %12llu  %016llx\n", e.name.c_str(),
                  std::string(dtype_name(e.dtype)).c_str(), region_kind_name(e.kind),
                  fmt::format("[{}]", fmt::join(e.shape, ",")).c_str(),
                  static_cast<unsigned long long>(e.bytes),
                  static_cast<unsigned long long>(info.stored_bytes[i]),
                  static_cast<unsigned long long>(e.checksum));
    }
  });

  struct VerifyOpts {
    ModelOptions m;
    std::string file;
  };
  auto vo = std::make_shared<VerifyOpts>();
  auto* verify = cap->add_subcommand(
      "verify", "Check that a capsule is intact and would restore into a model");
  verify->add_option("file", vo->file, "Capsule file")->required();
  add_model_options(verify, vo->m);
  verify->callback([vo] {
    const Capsule c = read_capsule_file(vo->file);  // every checksum
    auto loaded = load(vo->m);
    SessionOptions so = session_options(vo->m);
    so.max_ctx = std::max(so.max_ctx, c.pos + 1);
    Session s(*loaded.model, *loaded.backend, so);
    s.check_restorable(c);
    std::printf("ok: %s restores into %s (%lld tokens, %zu regions, checksums valid)\n",
                vo->file.c_str(), vo->m.model.c_str(), static_cast<long long>(c.pos),
                c.entries.size());
  });
}

}  // namespace flashrt::cli
