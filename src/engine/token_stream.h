// The channel from the scheduler thread to the thread serving one generation (an HTTP thread): text
// pieces and token ids as they are produced, then the result (or the error). The HTTP side may
// cancel it (client gone, interrupt); the scheduler notices before the next token.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/errors.h"
#include "engine/sampler.h"

namespace flashrt {

struct StreamChunk {
  std::string text;  // may be empty (a token whose text is held back or special)
  std::vector<int32_t> ids;
  std::vector<TokenLogprob> logprobs;  // of the ids that are not stop tokens, when asked for
};

struct RunResult {
  std::string finish_reason;           // "stop", "length", "cancelled"; "" for a prefill-only run
  int64_t prompt_tokens = 0;           // tokens in the sequence before generation
  int64_t cached_tokens = 0;           // of those, restored from the prefix cache
  int64_t prefilled_tokens = 0;        // of those, fed through the model by this run
  int64_t completion_tokens = 0;       // tokens sampled (a stop token included)
  std::vector<int32_t> ids;            // the sampled ids
  std::string text;                    // the emitted text (stop strings and special tokens removed)
  std::vector<TokenLogprob> logprobs;  // when asked for: one per sampled id but a stop token
  int64_t session_tokens = 0;          // tokens in the sequence afterwards
  // A speculative run: drafts verified, and of those accepted.
  int64_t spec_drafted = 0, spec_accepted = 0;
};

class TokenStream {
 public:
  // ---- scheduler side ----
  void push(StreamChunk c) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (c.text.empty() && c.ids.empty()) return;
      chunks_.push_back(std::move(c));
    }
    cv_.notify_all();
  }
  void finish(RunResult r) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      result_ = std::move(r);
      done_ = true;
    }
    cv_.notify_all();
  }
  void fail(ErrorInfo e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = std::move(e);
      done_ = true;
    }
    cv_.notify_all();
  }

  // ---- HTTP side ----
  // Waits up to `timeout` for chunks or the end; moves the chunks into *out. Returns true once the
  // run is over and every chunk has been taken.
  bool wait(std::vector<StreamChunk>* out, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return done_ || !chunks_.empty(); });
    while (!chunks_.empty()) {
      out->push_back(std::move(chunks_.front()));
      chunks_.pop_front();
    }
    return done_;
  }
  // Blocks until the run is over; throws its error (as a fresh EngineError).
  RunResult result() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    if (error_) error_->raise();
    return result_;
  }
  // Waits up to `timeout` for the run to end; true if it has.
  bool wait_done(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done_; });
  }

  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }
  // Tokens sampled so far (interrupt reports it).
  std::atomic<int64_t> generated{0};

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StreamChunk> chunks_;
  bool done_ = false;
  RunResult result_;
  std::optional<ErrorInfo> error_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace flashrt
