// Steps for op tests: StepRows over one or more sequences whose "slots" are plain buffers (a
// region is at an offset into its buffer), with the step's arrays in the backend's memory.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

#include "backends/backend.h"

namespace flashrt::testing {

struct TestSeq {
  int T;                          // rows
  int64_t pos0;                   // position of its first row
  uint8_t* slot;                  // its slot's base (backend memory)
  std::vector<int32_t> ids = {};  // its tokens (zeros when empty)
};

class TestStep {
 public:
  TestStep(Backend& be, std::vector<TestSeq> seqs) {
    std::vector<int64_t> pos;
    std::vector<int32_t> ids;
    std::vector<uint8_t*> slots;
    for (const TestSeq& s : seqs) {
      if (!s.ids.empty() && s.ids.size() != static_cast<size_t>(s.T))
        throw std::invalid_argument("TestStep: ids for some rows only");
      seqs_.push_back({static_cast<int>(pos.size()), s.T});
      for (int t = 0; t < s.T; ++t) {
        pos.push_back(s.pos0 + t);
        ids.push_back(s.ids.empty() ? 0 : s.ids[static_cast<size_t>(t)]);
      }
      slots.push_back(s.slot);
    }
    const size_t n = pos.size();
    mem_ = be.alloc(n * 8 + slots.size() * 8 + n * 4 + 8);
    be.to_device(mem_.get(), pos.data(), n * 8);
    be.to_device(mem_.get() + n * 8, slots.data(), slots.size() * 8);
    be.to_device(mem_.get() + n * 8 + slots.size() * 8, ids.data(), n * 4);
    rows_.n = static_cast<int>(n);
    rows_.seqs = seqs_;
    rows_.pos = reinterpret_cast<const int64_t*>(mem_.get());
    rows_.slots = reinterpret_cast<uint8_t* const*>(mem_.get() + n * 8);
    rows_.ids = reinterpret_cast<const int32_t*>(mem_.get() + n * 8 + slots.size() * 8);
  }
  // One sequence.
  TestStep(Backend& be, int T, int64_t pos0, uint8_t* slot, std::vector<int32_t> ids = {})
      : TestStep(be, std::vector<TestSeq>{{T, pos0, slot, std::move(ids)}}) {}
  TestStep(const TestStep&) = delete;
  TestStep& operator=(const TestStep&) = delete;

  const StepRows& rows() const { return rows_; }
  operator const StepRows&() const { return rows_; }

 private:
  std::vector<SeqRows> seqs_;
  std::shared_ptr<uint8_t> mem_;
  StepRows rows_;
};

}  // namespace flashrt::testing
