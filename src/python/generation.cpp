// Session.generate as an iterator: the loop of Session::generate (and SpeculativeDecoder::generate)
// cut at every token, with the CLI's text path (StreamDecoder skipping special tokens) and stop
// strings held back as the server holds them.
#include "python/generation.h"

#include <algorithm>
#include <chrono>

#include "tokenizer/tokenizer.h"

namespace flashrt::python {

Generation::Generation(std::shared_ptr<SessionHandle> s, GenerationSetup setup)
    : s_(std::move(s)), setup_(std::move(setup)) {
  ModelHandle& m = *s_->model;
  if (m.tokenizer) decoder_.emplace(*m.tokenizer, /*skip_special=*/true);
  if (!setup_.stop.empty()) stop_.emplace(setup_.stop);
  if (setup_.constraint)
    constraint_.emplace(setup_.constraint, make_token_masker(m.tok(), setup_.stop_ids));
  Session& ses = session_ref();
  if (setup_.speculative == "ngram") {
    drafter_ = std::make_unique<NgramDrafter>();
  } else if (setup_.speculative == "mtp") {
    FLASHRT_CHECK(ses.options().mtp,
                  "speculative=\"mtp\" needs a session that runs the MTP head: "
                  "model.session(mtp=True)");
    drafter_ = std::make_unique<MtpDrafter>(ses, setup_.draft_seed);
  } else if (setup_.speculative == "draft") {
    const Model& d = *setup_.draft_model->model;
    FLASHRT_CHECK(d.cfg.vocab == ses.model().cfg.vocab,
                  "the draft model {} has {} tokens, the model {}: they must share a tokenizer",
                  d.path, d.cfg.vocab, ses.model().cfg.vocab);
    SessionOptions o = ses.options();
    o.mtp = false;  // the draft's own slot: same context, no MTP head
    drafter_ =
        std::make_unique<DraftModelDrafter>(d, *setup_.draft_model->backend, o, setup_.draft_seed);
  } else {
    FLASHRT_CHECK(setup_.speculative.empty(), "unknown speculative '{}' (ngram, mtp or a Model)",
                  setup_.speculative);
  }
  if (drafter_) {
    spec_.emplace(ses, *drafter_, SpecOptions{.draft_max = setup_.draft_max});
    spec_->set_constraint(constraint_ ? &*constraint_ : nullptr);
  }
  if (setup_.max_new <= 0) finish_ = "length";
}

std::optional<Token> Generation::next() {
  while (queue_.empty()) {
    if (!finish_.empty()) return std::nullopt;
    try {
      compute(*s_->model, [&] { step(); });
    } catch (...) {
      if (finish_.empty()) finish_ = "error";
      throw;
    }
  }
  Token t = std::move(queue_.front());
  queue_.pop_front();
  return t;
}

void Generation::close() {
  queue_.clear();
  if (finish_.empty()) finish_ = "cancelled";
}

void Generation::step() {
  Session& s = session_ref();
  if (!started_) {
    started_ = true;
    if (spec_) spec_->begin();
    if (drafter_) drafter_->prime(s.tokens());  // a draft model catches up with the boundary
  }
  // A pending token needs one more position before the next can be sampled.
  if (s.pending() >= 0 && s.pos() + 1 > s.max_ctx()) return end("context_full");
  OutputConstraint* c = constraint_ ? &*constraint_ : nullptr;
  if (!spec_ || s.pending() < 0) {  // speculation's first token comes from the prompt's logits
    if (!emit(s.next_token(setup_.params, c))) return;
  } else {
    const size_t limit = static_cast<size_t>(setup_.max_new) - tokens_.size();
    const Draft& d = spec_->propose(setup_.params, static_cast<int>(limit) - 1);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<int32_t> buf;
    StepInput in = s.step_input(d.tokens, buf);
    spec_->prepare(in);
    s.feed_rows(in);
    const auto& out = spec_->accept(
        setup_.params,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    size_t n = 0;
    bool go_on = true;
    while (n < out.size() && go_on) {
      go_on = emit(out[n]);
      ++n;
    }
    spec_->commit(n);  // the boundary after the last token emitted, which is left pending
    if (!go_on) return;
  }
  // The next step would find the context full: this token is the last (its text flushed now).
  if (s.pos() + 1 > s.max_ctx()) end("context_full");
}

bool Generation::emit(int32_t id) {
  tokens_.push_back(id);
  std::string piece = decoder_ ? decoder_->push(id) : std::string();
  if (stop_) piece = stop_->push(piece);
  text_ += piece;
  queue_.push_back(Token{id, std::move(piece)});
  if (stop_ && stop_->stopped()) {
    end("stop");
    return false;
  }
  if (std::find(setup_.stop_ids.begin(), setup_.stop_ids.end(), id) != setup_.stop_ids.end()) {
    end("stop");
    return false;
  }
  if (tokens_.size() >= static_cast<size_t>(setup_.max_new)) {
    end("length");
    return false;
  }
  return true;
}

void Generation::end(const char* reason) {
  finish_ = reason;
  // Text still held: an incomplete UTF-8 character, or what might have begun a stop string.
  std::string tail = decoder_ ? decoder_->flush() : std::string();
  if (stop_ && !stop_->stopped()) {
    tail = stop_->push(tail);
    if (!stop_->stopped()) tail += stop_->flush();
  } else if (stop_) {
    tail.clear();
  }
  if (tail.empty()) return;
  text_ += tail;
  if (queue_.empty()) {
    queue_.push_back(Token{-1, std::move(tail)});
  } else {
    queue_.back().text += tail;
  }
}

}  // namespace flashrt::python
