// The Hermes/Qwen tool-call reader: calls come out whole and in order however the text is split
// into pieces (streaming), content around them is kept, and text that only looks like a call
// stays content.
#include "server/tool_calls.h"

#include <gtest/gtest.h>

#include "test_paths.h"

namespace flashrt::server {
namespace {

struct Read {
  std::string content;
  std::vector<ParsedToolCall> calls;
};

// Feeds `text` in pieces of `piece` bytes (0: at once).
Read read_all(std::string_view text, size_t piece) {
  Read r;
  auto reader = hermes_tool_call_format().reader();
  if (piece == 0) piece = text.size() + 1;
  for (size_t i = 0; i < text.size(); i += piece)
    reader->feed(text.substr(i, piece), r.content, r.calls);
  reader->finish(r.content, r.calls);
  return r;
}

TEST(ToolCallReader, CallsAndContentAtAnySplit) {
  const std::string text =
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
      "\"Paris\", \"unit\": \"celsius\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"noop\", "
      "\"arguments\": {}}\n</tool_call>";
  for (size_t piece : {0, 1, 2, 3, 7, 11}) {
    SCOPED_TRACE(piece);
    const Read r = read_all(text, piece);
    EXPECT_EQ(r.content, "Let me check.\n");
    ASSERT_EQ(r.calls.size(), 2u);
    EXPECT_EQ(r.calls[0].name, "get_weather");
    EXPECT_EQ(r.calls[0].arguments, R"({"city":"Paris","unit":"celsius"})");
    EXPECT_EQ(r.calls[1].name, "noop");
    EXPECT_EQ(r.calls[1].arguments, "{}");
  }
}

TEST(ToolCallReader, WhatIsNotACallStaysContent) {
  // A tag-like prefix that never becomes a tag, a malformed body, an unterminated call.
  for (size_t piece : {0, 1, 4}) {
    SCOPED_TRACE(piece);
    EXPECT_EQ(read_all("a <tool_ b", piece).content, "a <tool_ b");
    EXPECT_EQ(read_all("x<tool", piece).content, "x<tool");
    const Read bad = read_all("<tool_call>not json</tool_call>", piece);
    EXPECT_TRUE(bad.calls.empty());
    EXPECT_EQ(bad.content, "<tool_call>not json</tool_call>");
    const Read open = read_all("<tool_call>\n{\"name\": \"x\"", piece);
    EXPECT_TRUE(open.calls.empty());
    EXPECT_EQ(open.content, "<tool_call>\n{\"name\": \"x\"");
  }
}

TEST(ToolCallReader, ArgumentsAsTextOrMissing) {
  const Read r = read_all(
      "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}</tool_call>"
      "<tool_call>{\"name\": \"g\"}</tool_call>",
      0);
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].arguments, R"({"a": 1})");
  EXPECT_EQ(r.calls[1].arguments, "{}");
}

TEST(ToolCallFormat, PickedFromTheTemplate) {
  EXPECT_EQ(tool_call_format_for("{{ '<tool_call>' }}"), &hermes_tool_call_format());
  EXPECT_EQ(tool_call_format_for("{% for m in messages %}{{ m.content }}{% endfor %}"), nullptr);
}

}  // namespace
}  // namespace flashrt::server
