// A generation in progress: Session.generate's iterator. Each __next__ runs engine steps (the GIL
// released) until it has a token to return, so every pause between tokens is a committed boundary
// of the session: breaking out, close(), an exception or KeyboardInterrupt leave it holding exactly
// the tokens produced.
#pragma once
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/constraint.h"
#include "engine/sampler.h"
#include "engine/speculative.h"
#include "engine/stop_matcher.h"
#include "python/handles.h"
#include "tokenizer/stream_decoder.h"

namespace flashrt::python {

struct Token {
  int32_t id = -1;
  std::string text;  // what the token adds to the output
};

struct GenerationSetup {
  int max_new = 128;
  SamplerParams params;
  std::vector<int32_t> stop_ids;  // end tokens (the model's, the caller's)
  std::vector<std::string> stop;  // stop strings
  std::shared_ptr<const ConstraintSpec> constraint;
  std::string speculative;  // "", "ngram", "mtp" or "draft" (with draft_model)
  std::shared_ptr<ModelHandle> draft_model;
  int draft_max = 8;
  uint64_t draft_seed = 0;  // an MTP drafter's own RNG (sampled drafts)
};

class Generation {
 public:
  Generation(std::shared_ptr<SessionHandle> s, GenerationSetup setup);
  Generation(const Generation&) = delete;  // the decoder points at its constraint
  Generation& operator=(const Generation&) = delete;
  // The next token (GIL released inside), or nullopt once it has ended.
  std::optional<Token> next();
  void close();
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const std::string& text() const { return text_; }
  const std::string& finish_reason() const { return finish_; }
  const SpecStats* spec_stats() const { return spec_ ? &spec_->stats() : nullptr; }
  const std::shared_ptr<SessionHandle>& session() const { return s_; }

 private:
  void step();                   // one engine step: queues the tokens it yields
  bool emit(int32_t id);         // queues one token; false when the generation ends at it
  void end(const char* reason);  // ends it, flushing held-back text onto the last token
  Session& session_ref() { return *s_->session; }

  std::shared_ptr<SessionHandle> s_;
  GenerationSetup setup_;
  std::optional<StreamDecoder> decoder_;
  std::optional<StopMatcher> stop_;
  std::optional<OutputConstraint> constraint_;
  std::unique_ptr<Drafter> drafter_;
  std::optional<SpeculativeDecoder> spec_;
  std::deque<Token> queue_;
  std::vector<int32_t> tokens_;
  std::string text_;
  std::string finish_;  // empty while it runs
  bool started_ = false;
};

}  // namespace flashrt::python
