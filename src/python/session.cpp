// flashrt.Session (and Model.session): one sequence's slot, its capsules, and generate().
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "capsule/capsule_file.h"
#include "engine/scheduler.h"
#include "python/generation.h"

namespace flashrt::python {

namespace {

using ModelClass = py::class_<ModelHandle, std::shared_ptr<ModelHandle>>;
using SessionPtr = std::shared_ptr<SessionHandle>;

uint64_t random_seed() {
  return std::random_device{}();
}

SessionPtr new_session(const std::shared_ptr<ModelHandle>& m, int64_t ctx,
                       const std::string& kv_type, int batch, const std::string& gdn, bool mtp,
                       std::optional<uint64_t> seed) {
  SessionOptions o;
  o.max_ctx = ctx;
  o.max_batch = batch;
  if (kv_type != "f32" && kv_type != "f16")
    throw py::value_error("kv_type must be \"f32\" or \"f16\", not \"" + kv_type + "\"");
  o.kv_dtype = kv_type == "f16" ? DType::F16 : DType::F32;
  if (gdn != "auto" && gdn != "recurrent" && gdn != "chunked")
    throw py::value_error("gdn must be \"auto\", \"recurrent\" or \"chunked\", not \"" + gdn +
                          "\"");
  o.gdn_mode = gdn == "recurrent" ? GdnMode::kRecurrent
               : gdn == "chunked" ? GdnMode::kChunked
                                  : GdnMode::kAuto;
  o.mtp = mtp;
  auto h = std::make_shared<SessionHandle>();
  h->model = m;
  h->seed = seed ? *seed : random_seed();
  compute(*m, [&] {
    h->session = std::make_unique<Session>(*m->model, *m->backend, o);
    h->session->seed(h->seed);
  });
  return h;
}

// Text (encoded, special tokens parsed) or a sequence of ids.
std::vector<int32_t> ids_of(const SessionHandle& h, const py::handle& input) {
  if (py::isinstance<py::str>(input)) return h.model->tok().encode(input.cast<std::string>());
  if (py::isinstance<py::bytes>(input))
    throw py::type_error("append takes text (str) or token ids, not bytes");
  try {
    return input.cast<std::vector<int32_t>>();
  } catch (const py::cast_error&) {
    throw py::type_error("append takes text (str) or a sequence of token ids (int)");
  }
}

std::vector<std::string> strings_of(const py::object& o, const char* what) {
  if (o.is_none()) return {};
  if (py::isinstance<py::str>(o)) return {o.cast<std::string>()};
  try {
    return o.cast<std::vector<std::string>>();
  } catch (const py::cast_error&) {
    throw py::type_error(std::string(what) + " must be a string or a list of strings");
  }
}

std::shared_ptr<const ConstraintSpec> constraint_of(const py::object& json_schema,
                                                    const py::object& grammar, bool json_object) {
  const int given = !json_schema.is_none() + !grammar.is_none() + json_object;
  if (given > 1) throw py::value_error("give one of json_schema, grammar and json_object");
  if (!json_schema.is_none()) {
    const std::string text = py::isinstance<py::str>(json_schema) ? json_schema.cast<std::string>()
                                                                  : to_json_text(json_schema);
    const auto schema = nlohmann::ordered_json::parse(text, nullptr, false);
    if (schema.is_discarded()) throw py::value_error("json_schema: not valid JSON");
    try {
      return constraint_from_json_schema(schema);
    } catch (const Error& e) {
      fail("json_schema: {}", e.what());
    }
  }
  if (!grammar.is_none()) {
    try {
      return constraint_from_gbnf(grammar.cast<std::string>());
    } catch (const Error& e) {
      fail("grammar: {}", e.what());
    }
  }
  if (json_object) return constraint_json_object();
  return nullptr;
}

void check_range(bool ok, const char* what) {
  if (!ok) throw py::value_error(what);
}

std::shared_ptr<Generation> generate(const SessionPtr& h, int max_tokens, float temperature,
                                     int top_k, float top_p, float min_p, float repeat_penalty,
                                     float presence_penalty, float frequency_penalty,
                                     std::optional<uint64_t> seed, const py::object& stop,
                                     std::optional<std::vector<int32_t>> stop_ids, bool ignore_eos,
                                     const py::object& json_schema, const py::object& grammar,
                                     bool json_object, const py::object& speculative,
                                     int draft_max) {
  check_range(max_tokens >= 0, "max_tokens must be >= 0");
  check_range(temperature >= 0, "temperature must be >= 0 (0: greedy)");
  check_range(top_k >= 0, "top_k must be >= 0 (0: off)");
  check_range(top_p > 0 && top_p <= 1, "top_p must be in (0, 1]");
  check_range(min_p >= 0 && min_p <= 1, "min_p must be in [0, 1]");
  check_range(repeat_penalty > 0, "repeat_penalty must be > 0 (1: off)");
  check_range(draft_max >= 1 && draft_max <= 16, "draft_max must be in 1..16");
  GenerationSetup g;
  g.max_new = max_tokens;
  g.params.temperature = temperature;
  g.params.top_k = top_k;
  g.params.top_p = top_p;
  g.params.min_p = min_p;
  g.params.repeat_penalty = repeat_penalty;
  g.params.presence_penalty = presence_penalty;
  g.params.frequency_penalty = frequency_penalty;
  g.stop = strings_of(stop, "stop");
  for (const auto& s : g.stop) check_range(!s.empty(), "a stop string must not be empty");
  const ModelHandle& m = *h->model;
  if (!ignore_eos) {
    g.stop_ids = m.model->cfg.eos_ids;
    if (m.tokenizer)
      for (int32_t id : m.tokenizer->stop_ids()) g.stop_ids.push_back(id);
  }
  if (stop_ids) g.stop_ids.insert(g.stop_ids.end(), stop_ids->begin(), stop_ids->end());
  g.constraint = constraint_of(json_schema, grammar, json_object);
  FLASHRT_CHECK(!g.constraint || !ignore_eos,
                "ignore_eos cannot be combined with a constrained output: it ends at the "
                "end-of-turn token once complete");
  if (py::isinstance<ModelHandle>(speculative)) {  // a draft model
    g.speculative = "draft";
    g.draft_model = speculative.cast<std::shared_ptr<ModelHandle>>();
  } else if (!speculative.is_none()) {
    if (!py::isinstance<py::str>(speculative))
      throw py::type_error("speculative must be \"ngram\", \"mtp\", a draft Model or None");
    g.speculative = speculative.cast<std::string>();
  }
  g.draft_max = draft_max;
  g.draft_seed = seed ? *seed : random_seed();
  // The seed replaces the session's RNG state; without one the state's RNG goes on.
  if (seed) compute(*h->model, [&] { h->session->seed(*seed); });
  return std::make_shared<Generation>(h, std::move(g));
}

py::array logits_view(const py::object& self) {
  auto& h = self.cast<SessionHandle&>();
  Session& s = *h.session;
  FLASHRT_CHECK(s.pos() > 0, "no logits yet: nothing has been fed to this session");
  const ssize_t V = s.model().cfg.vocab;
  py::array out;
  if (s.arena().on_host()) {
    // The slot's own logits, kept alive by the session object (the array's base).
    out = py::array_t<float>({V}, {static_cast<ssize_t>(sizeof(float))},
                             s.arena().region_as<float>(regions::kLogits), self);
  } else {
    const auto l = compute(*h.model, [&] { return s.logits(); });
    auto a = py::array_t<float>(V);
    std::memcpy(a.mutable_data(), l.data(), l.size() * sizeof(float));
    out = a;
  }
  out.attr("setflags")(py::arg("write") = false);
  return out;
}

std::shared_ptr<CapsuleHandle> snapshot(const SessionPtr& h, const std::string& tier,
                                        const py::object& path) {
  Tier t;
  if (!tier_from_name(tier, &t))
    throw py::value_error("tier must be \"host\", \"disk\" or \"device\", not \"" + tier + "\"");
  std::string p;
  if (!path.is_none()) p = py::str(path).cast<std::string>();
  if (t == Tier::kDisk && p.empty()) throw py::value_error("a disk snapshot needs a path");
  if (t != Tier::kDisk && !p.empty()) throw py::value_error("path is for tier=\"disk\"");
  auto c = std::make_shared<CapsuleHandle>();
  c->owner = h->model;
  compute(*h->model, [&] {
    c->capsule = h->session->snapshot(t, p);
    c->tokens = h->session->pos() + (h->session->pending() >= 0 ? 1 : 0);
  });
  return c;
}

void restore(const SessionPtr& h, const CapsuleHandle& c) {
  compute(*h->model, [&] {
    try {
      h->session->restore(c.capsule);
    } catch (const Error& e) {
      throw CapsuleError(e.what());
    }
  });
}

// Model.batch: the prompts as request-scoped sequences of one Scheduler (engine/scheduler.h), so
// their tokens decode side by side in shared steps (continuous batching), each with its own slot.
py::list batch(const std::shared_ptr<ModelHandle>& m, const std::vector<py::object>& prompts,
               int max_tokens, float temperature, int top_k, float top_p, float min_p,
               std::optional<uint64_t> seed, const py::object& stop, bool ignore_eos,
               std::optional<int> slots, int64_t ctx) {
  check_range(max_tokens >= 0, "max_tokens must be >= 0");
  check_range(temperature >= 0, "temperature must be >= 0 (0: greedy)");
  check_range(top_k >= 0, "top_k must be >= 0 (0: off)");
  check_range(top_p > 0 && top_p <= 1, "top_p must be in (0, 1]");
  check_range(min_p >= 0 && min_p <= 1, "min_p must be in [0, 1]");
  check_range(!slots || *slots >= 1, "slots must be at least 1");
  const Tokenizer& tok = m->tok();
  std::vector<RunSpec> specs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    RunSpec r;
    if (py::isinstance<py::str>(prompts[i])) {
      r.prefill = tok.encode(prompts[i].cast<std::string>());
    } else {
      try {
        r.prefill = prompts[i].cast<std::vector<int32_t>>();
      } catch (const py::cast_error&) {
        throw py::type_error("each prompt is text (str) or a sequence of token ids (int)");
      }
    }
    FLASHRT_CHECK(!r.prefill.empty(), "prompt {} is empty", i);
    r.max_tokens = max_tokens;
    r.params.temperature = temperature;
    r.params.top_k = top_k;
    r.params.top_p = top_p;
    r.params.min_p = min_p;
    if (seed) r.seed = *seed + i;  // prompt i samples with seed + i, as OpenAI's n does
    r.stop_strings = strings_of(stop, "stop");
    if (!ignore_eos) {
      r.stop_ids = m->model->cfg.eos_ids;
      for (int32_t id : tok.stop_ids()) r.stop_ids.push_back(id);
    }
    specs.push_back(std::move(r));
  }
  std::vector<RunResult> results;
  if (!specs.empty()) {
    SchedulerOptions o;
    o.slots = std::min<int>(slots.value_or(4), static_cast<int>(specs.size()));
    o.session.max_ctx = ctx;
    o.cache_bytes = 0;
    compute(*m, [&] {
      Scheduler sched(*m->model, *m->backend, tok, o);
      std::vector<std::shared_ptr<TokenStream>> streams;
      for (auto& r : specs) streams.push_back(sched.submit(std::move(r)));
      for (auto& st : streams) results.push_back(st->result());
    });
  }
  py::list out;
  for (const RunResult& r : results) {
    py::dict d;
    d["text"] = r.text;
    d["tokens"] = r.ids;
    d["finish_reason"] = r.finish_reason;
    d["prompt_tokens"] = r.prompt_tokens;
    out.append(d);
  }
  return out;
}

}  // namespace

void bind_session(py::module_& m) {
  auto model = py::reinterpret_borrow<ModelClass>(m.attr("Model"));
  model.def("session", &new_session, py::arg("ctx") = 4096, py::arg("kv_type") = "f32",
            py::arg("batch") = 512, py::arg("gdn") = "auto", py::arg("mtp") = false,
            py::arg("seed") = py::none(),
            "A new session of ctx tokens (its own slot). kv_type f16 halves KV memory and capsule "
            "size; mtp runs the model's MTP head along (speculative=\"mtp\"); seed seeds its "
            "sampler RNG (None: a random seed).");
  model.def("batch", &batch, py::arg("prompts"), py::arg("max_tokens") = 128,
            py::arg("temperature") = 0.8f, py::arg("top_k") = 40, py::arg("top_p") = 0.95f,
            py::arg("min_p") = 0.05f, py::arg("seed") = py::none(), py::arg("stop") = py::none(),
            py::arg("ignore_eos") = false, py::arg("slots") = py::none(), py::arg("ctx") = 4096,
            "Generates a continuation of every prompt with continuous batching (one scheduler, "
            "their tokens decoded side by side in shared steps, at most `slots` at once); "
            "returns one dict per prompt: text, tokens, finish_reason, prompt_tokens.");

  py::class_<SessionHandle, SessionPtr>(
      m, "Session",
      "One sequence: its whole state lives in one slot of the model, so it can be snapshotted, "
      "restored, forked and rolled back. Every method call ends at a committed boundary.")
      .def_property_readonly("model", [](const SessionHandle& h) { return h.model; })
      .def_property_readonly("pos", [](const SessionHandle& h) { return h.session->pos(); })
      .def_property_readonly("pending",
                             [](const SessionHandle& h) -> std::optional<int32_t> {
                               const int32_t p = h.session->pending();
                               if (p < 0) return std::nullopt;
                               return p;
                             })
      .def_property_readonly("tokens",
                             [](const SessionPtr& h) {
                               return compute(*h->model, [&] { return h->session->tokens(); });
                             })
      .def_property_readonly("ctx", [](const SessionHandle& h) { return h.session->max_ctx(); })
      .def(
          "append",
          [](const SessionPtr& h, const py::object& input) {
            std::vector<int32_t> ids = ids_of(*h, input);
            compute(*h->model, [&] { h->session->append(ids); });
            return ids;
          },
          py::arg("input"),
          "Feeds text (encoded with the model's tokenizer, special tokens parsed) or token ids "
          "after any pending token; returns the ids fed. On error the session is unchanged.")
      .def(
          "forward",
          [](const SessionPtr& h, const std::vector<int32_t>& ids) {
            const auto l = compute(*h->model, [&] { return h->session->forward_all_logits(ids); });
            const ssize_t V = h->model->model->cfg.vocab;
            py::array_t<float> a({static_cast<ssize_t>(ids.size()), V});
            std::memcpy(a.mutable_data(), l.data(), l.size() * sizeof(float));
            return a;
          },
          py::arg("ids"),
          "Feeds ids in one pass and returns every position's logits [len(ids), vocab] (a new "
          "array), as `flashrt logits` writes them. Needs a boundary without a pending token.")
      .def("logits", &logits_view,
           "The logits after the last fed token [vocab]: on the CPU a read-only view of the "
           "session's own memory (no copy), valid until the session next changes; copy() to "
           "keep them.")
      .def("generate", &generate, py::arg("max_tokens") = 128, py::arg("temperature") = 0.8f,
           py::arg("top_k") = 40, py::arg("top_p") = 0.95f, py::arg("min_p") = 0.05f,
           py::arg("repeat_penalty") = 1.0f, py::arg("presence_penalty") = 0.0f,
           py::arg("frequency_penalty") = 0.0f, py::arg("seed") = py::none(),
           py::arg("stop") = py::none(), py::arg("stop_ids") = py::none(),
           py::arg("ignore_eos") = false, py::arg("json_schema") = py::none(),
           py::arg("grammar") = py::none(), py::arg("json_object") = false,
           py::arg("speculative") = py::none(), py::arg("draft_max") = 8,
           "Streams a continuation as an iterator of Token (see the stub for every argument).")
      .def("snapshot", &snapshot, py::arg("tier") = "host", py::arg("path") = py::none(),
           "The whole state as a Capsule: in host memory, a file (tier=\"disk\", path=...) or "
           "device memory.")
      .def("restore", &restore, py::arg("capsule"),
           "Replaces the whole state with the capsule's; checked first (flashrt.CapsuleError, "
           "the session unchanged).")
      .def("rollback", &restore, py::arg("capsule"), "Returns to an earlier boundary (a restore).")
      .def(
          "fork",
          [](const SessionPtr& h) {
            auto f = std::make_shared<SessionHandle>();
            f->model = h->model;
            f->seed = h->seed;
            compute(*h->model, [&] { f->session = h->session->fork(); });
            return f;
          },
          "A new session (its own slot) at this exact boundary.")
      .def(
          "reset",
          [](const SessionPtr& h) {
            compute(*h->model, [&] {
              h->session->reset();
              h->session->seed(h->seed);
            });
          },
          "Back to an empty boundary (the RNG seeded as when the session was made).")
      .def(
          "seed",
          [](const SessionPtr& h, uint64_t seed) {
            compute(*h->model, [&] { h->session->seed(seed); });
          },
          py::arg("seed"))
      .def("__repr__", [](const SessionHandle& h) {
        return fmt::format("<flashrt.Session pos={} ctx={}>", h.session->pos(),
                           h.session->max_ctx());
      });
}

void bind_generation(py::module_& m) {
  py::class_<Token>(m, "Token", "One generated token: its id and the text it adds to the output.")
      .def_readonly("id", &Token::id)
      .def_readonly("text", &Token::text)
      .def("__str__", [](const Token& t) { return t.text; })
      .def("__repr__",
           [](const Token& t) {
             return "Token(id=" + std::to_string(t.id) +
                    ", text=" + py::repr(py::str(t.text)).cast<std::string>() + ")";
           })
      .def("__eq__",
           [](const Token& a, const Token& b) { return a.id == b.id && a.text == b.text; });

  py::class_<Generation, std::shared_ptr<Generation>>(
      m, "Generation",
      "The tokens of Session.generate as they are produced; between tokens the session is at a "
      "committed boundary.")
      .def("__iter__", [](const py::object& self) { return self; })
      .def("__next__",
           [](Generation& g) {
             auto t = g.next();
             if (!t) throw py::stop_iteration();
             return *t;
           })
      .def("close", &Generation::close, "Ends the generation here.")
      .def(
          "text",
          [](Generation& g) {
            while (g.next()) {
            }
            return g.text();
          },
          "Runs the generation to its end and returns the whole output text.")
      .def_property_readonly("tokens", &Generation::tokens)
      .def_property_readonly("finish_reason",
                             [](const Generation& g) -> std::optional<std::string> {
                               if (g.finish_reason().empty()) return std::nullopt;
                               return g.finish_reason();
                             })
      .def_property_readonly("stats", [](const Generation& g) {
        py::dict d;
        d["tokens"] = g.tokens().size();
        if (const SpecStats* s = g.spec_stats()) {
          d["verify_steps"] = s->steps;
          d["plain_steps"] = s->plain_steps;
          d["drafted"] = s->drafted;
          d["accepted"] = s->accepted;
          d["acceptance_rate"] = s->acceptance_rate();
          d["mean_accepted_length"] = s->mean_accepted_length();
          d["k_history"] = s->k_history;
        }
        return d;
      });
}

}  // namespace flashrt::python
