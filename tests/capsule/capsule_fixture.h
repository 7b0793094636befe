// Shared setup for capsule tests: a model, sessions on it, and arena comparisons.
#pragma once
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "engine/session.h"
#include "models/model_fixtures.h"

namespace flashrt::testing {

struct CapsuleModel {
  std::string name;  // reference/<name> or models/<name>
  bool trained;
  DType kv = DType::F32;  // KV cache type of the sessions
  std::string dir() const { return trained ? trained_model_dir(name) : ref_model_dir(name); }
  std::vector<int32_t> prompt() const {
    const Reference ref(dir());
    return trained ? ref.ids("p1.input_ids") : ref.ids("T96.input_ids");
  }
  bool hybrid() const { return name == "qwen35" || name == "pycoder-hybrid-12m"; }
};

inline std::vector<CapsuleModel> capsule_models() {
  return {{"qwen3", false},
          {"qwen35", false},
          {"pycoder-hybrid-12m", true},
          {"pycoder-dense-7m", true},
          {"qwen35", false, DType::F16},
          {"pycoder-dense-7m", true, DType::F16}};
}

// How ctest and failure messages show a model (instead of its bytes).
inline void PrintTo(const CapsuleModel& m, std::ostream* os) {
  *os << m.name << (m.kv == DType::F16 ? " kv f16" : "");
}

inline std::string param_name(const ::testing::TestParamInfo<CapsuleModel>& info) {
  std::string n = info.param.name + (info.param.kv == DType::F16 ? "_kv_f16" : "");
  for (char& c : n)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

// The live bytes of every region of a session's slot, concatenated.
inline std::vector<uint8_t> live_state(const Session& s) {
  std::vector<uint8_t> out;
  const auto& l = s.arena().layout();
  for (size_t i = 0; i < l.regions().size(); ++i) {
    const size_t n = l.regions()[i].live_bytes(s.pos());
    const uint8_t* p = s.arena().region(static_cast<int>(i));
    out.insert(out.end(), p, p + n);
  }
  return out;
}

inline SamplerParams sampled() {
  SamplerParams p;
  p.temperature = 0.9f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

}  // namespace flashrt::testing
