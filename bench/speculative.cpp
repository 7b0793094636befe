// bench_speculative: greedy decoding of held-out Python prompts by a target model, plain and with
// each drafter (n-gram prompt lookup, a draft model, the MTP head of the target's `*-mtp` twin:
// the same base weights plus a trained head), side by side in one run: tokens/s, the ratio to
// plain, acceptance rate, mean accepted length (tokens per target step) and k over time. Every
// speculative run must produce plain decoding's tokens (exit 1 otherwise).
//   ./build/bench_speculative [-m TARGET] [--draft DRAFT] [--mtp-model M] [-n 128] [--prompts 6]
//                             [--draft-max 8]
// Prompts: tests/data/heldout.py cut before each of its first `--prompts` methods ("code"), and
// one edit-style prompt that holds the file and starts rewriting it ("edit": where n-gram lookup
// shines).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "backends/backend.h"
#include "core/thread_pool.h"
#include "engine/speculative.h"
#include "models/model.h"
#include "tokenizer/gguf_vocab.h"

namespace {

using namespace flashrt;

struct Prompt {
  std::string kind;  // code | edit
  std::vector<int32_t> ids;
  std::string text;
};

std::vector<Prompt> make_prompts(const Tokenizer& tok, const std::string& text, int n_code) {
  std::vector<Prompt> out;
  size_t at = 0;
  for (int i = 0; i < n_code; ++i) {
    at = text.find("\n    def ", at + 1);
    if (at == std::string::npos) break;
    const size_t line_end = text.find('\n', at + 1);
    const std::string t = text.substr(0, line_end + 1);
    out.push_back({"code", tok.encode(t), t});
  }
  // The file, then the start of its rewrite: the continuation mostly re-quotes the context.
  const size_t cut = text.find("\nclass Snapshot");
  const std::string head = text.substr(0, std::min(text.size(), size_t{3000}));
  const std::string t = head + "\n\n# --- the same module, with type hints ---\n" +
                        text.substr(0, cut == std::string::npos ? 200 : cut);
  out.push_back({"edit", tok.encode(t), t});
  return out;
}

struct Mode {
  std::string name;
  double seconds = 0;
  int64_t tokens = 0;
  SpecStats stats;
  std::vector<int> ks;  // k of every step, over all prompts
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Speculative decoding vs plain decoding, side by side"};
  std::string target_path = "models/pycoder-hybrid-12m.gguf";
  std::string draft_path = "../shared/models/pycoder-dense-7m";
  std::string mtp_path = "../shared/models/pycoder-hybrid-12m-mtp";
  std::string heldout = "tests/data/heldout.py";
  int n = 128, n_prompts = 6, draft_max = 8, threads = 0, ctx = 2048;
  int64_t draft_vocab = 0;
  app.add_option("-m,--model", target_path, "Target model")->capture_default_str();
  app.add_option("--draft", draft_path, "Draft model (same tokenizer)")->capture_default_str();
  app.add_option("--mtp-model", mtp_path,
                 "The target with an MTP head (same base weights; \"\" to leave MTP out)")
      ->capture_default_str();
  app.add_option("--draft-vocab", draft_vocab, "MTP drafts from the first N tokens (0: all)")
      ->capture_default_str();
  app.add_option("--heldout", heldout, "Python file the prompts come from")->capture_default_str();
  app.add_option("-n", n, "Tokens per prompt")->capture_default_str();
  app.add_option("--prompts", n_prompts, "Code prompts (plus one edit prompt)")
      ->capture_default_str();
  app.add_option("--draft-max", draft_max, "k at most")->capture_default_str();
  bool fixed_k = false;
  std::string dump;
  app.add_option("--dump-prompts", dump,
                 "Write each prompt's text to DIR/<i>-<kind>.txt and exit (for llama.cpp's tools)");
  app.add_flag("--fixed-k", fixed_k, "Always draft --draft-max tokens (no adaptive k)");
  app.add_option("--ctx", ctx, "Context per session")->capture_default_str();
  app.add_option("-t,--threads", threads, "CPU threads (default: all cores)");
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) ThreadPool::set_default_threads(threads);
    auto be = make_backend("cpu");
    auto target = load_model(target_path, *be);
    auto draft = load_model(draft_path, *be);
    std::unique_ptr<Model> with_head;
    if (!mtp_path.empty()) with_head = load_model(mtp_path, *be);
    const Tokenizer tok = load_tokenizer(target_path);
    std::ifstream in(heldout);
    if (!in) throw std::runtime_error("cannot read " + heldout);
    std::stringstream ss;
    ss << in.rdbuf();
    const auto prompts = make_prompts(tok, ss.str(), n_prompts);
    if (!dump.empty()) {
      for (size_t i = 0; i < prompts.size(); ++i) {
        const std::string f = dump + "/" + std::to_string(i) + "-" + prompts[i].kind + ".txt";
        std::ofstream(f, std::ios::binary) << prompts[i].text;
      }
      std::printf("%zu prompts written to %s\n", prompts.size(), dump.c_str());
      return 0;
    }
    SessionOptions so;
    so.max_ctx = ctx;
    std::printf(
        "== bench_speculative: target %s, draft %s, mtp %s, %zu prompts x %d tokens, greedy, "
        "k <= %d (%s), %d threads\n",
        target_path.c_str(), draft_path.c_str(), mtp_path.empty() ? "-" : mtp_path.c_str(),
        prompts.size(), n, draft_max, fixed_k ? "fixed" : "adaptive", ThreadPool::global().size());

    std::vector<std::string> names = {"plain", "ngram", "draft"};
    if (with_head) names.push_back("mtp");
    std::map<std::string, std::map<std::string, Mode>> by_kind;  // kind -> mode -> totals
    bool exact = true;
    for (const Prompt& pr : prompts) {
      std::vector<int32_t> reference;
      for (const std::string& name : names) {
        SessionOptions mo = so;
        mo.mtp = name == "mtp";  // the head's state in the slot, advanced by every step
        Session s(name == "mtp" ? *with_head : *target, *be, mo);
        s.append(pr.ids);
        std::unique_ptr<Drafter> drafter;
        if (name == "ngram") drafter = std::make_unique<NgramDrafter>();
        if (name == "draft") drafter = std::make_unique<DraftModelDrafter>(*draft, *be, so);
        if (name == "mtp") drafter = std::make_unique<MtpDrafter>(s, 0, draft_vocab);
        std::optional<SpeculativeDecoder> dec;
        if (drafter)
          dec.emplace(s, *drafter, SpecOptions{.draft_max = draft_max, .adaptive = !fixed_k});
        // Decode is timed; a draft model prefills the prompt with the target, before it (its
        // cost shows in time to first token, as the target's prefill does).
        if (drafter) drafter->prime(pr.ids);
        const auto t0 = std::chrono::steady_clock::now();
        const auto r = dec ? dec->generate(n, SamplerParams::greedy(), {})
                           : s.generate(n, SamplerParams::greedy(), {});
        const double sec =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (name == "plain") reference = r.tokens;
        if (r.tokens != reference) {
          std::fprintf(stderr, "MISMATCH: %s differs from plain decoding on a %s prompt\n",
                       name.c_str(), pr.kind.c_str());
          exact = false;
        }
        for (const std::string& kind : {pr.kind, std::string("all")}) {
          Mode& m = by_kind[kind][name];
          m.name = name;
          m.seconds += sec;
          m.tokens += static_cast<int64_t>(r.tokens.size());
          if (dec) {
            const SpecStats& st = dec->stats();
            m.stats.steps += st.steps;
            m.stats.plain_steps += st.plain_steps;
            m.stats.drafted += st.drafted;
            m.stats.accepted += st.accepted;
            m.ks.insert(m.ks.end(), st.k_history.begin(), st.k_history.end());
          }
        }
      }
    }
    for (const std::string kind : {"code", "edit", "all"}) {
      const auto& modes = by_kind[kind];
      const double plain_tps = modes.at("plain").tokens / modes.at("plain").seconds;
      std::printf("\n-- %s prompts\n%-6s %9s %8s %7s %10s %9s %s\n", kind.c_str(), "mode", "tok/s",
                  "vs plain", "accept", "mean len", "steps", "mean k by quarter of the steps");
      for (const std::string& name : names) {
        const Mode& m = modes.at(name);
        const double tps = m.tokens / m.seconds;
        std::printf("%-6s %9.1f %7.2fx", name.c_str(), tps, tps / plain_tps);
        if (name == "plain") {
          std::printf(" %7s %10s %9lld\n", "-", "1.00", static_cast<long long>(m.tokens));
          continue;
        }
        std::printf(" %6.1f%% %10.2f %9lld ", 100 * m.stats.acceptance_rate(),
                    m.stats.mean_accepted_length(),
                    static_cast<long long>(m.stats.steps + m.stats.plain_steps));
        const size_t q = std::max<size_t>(1, m.ks.size() / 4);
        for (size_t i = 0; i < m.ks.size(); i += q) {
          double sum = 0;
          const size_t e = std::min(m.ks.size(), i + q);
          for (size_t j = i; j < e; ++j) sum += m.ks[j];
          std::printf(" %.1f", sum / static_cast<double>(e - i));
        }
        std::printf("\n");
      }
    }
    std::printf("\nevery speculative run %s plain greedy's tokens\n",
                exact ? "reproduced" : "did NOT reproduce");
    return exact ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_speculative: %s\n", e.what());
    return 1;
  }
}
