// Stop strings on streamed text: text that might be the start of a stop string is held back until
// it is known not to be, so a client never sees part of a stop string, and the text before a
// matched stop string is all that is emitted. Works on valid UTF-8 pieces (StreamDecoder output);
// since a stop string starts at a character boundary, so does every cut made here.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace flashrt {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds generated text; returns the text that is now safe to emit. After a match, stopped() is
  // true and further pushes return nothing.
  std::string push(std::string_view text);
  bool stopped() const { return stopped_; }
  // The held-back text, at the end of a generation that did not stop on a string.
  std::string flush();

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace flashrt
