// Chat templates rendered natively. The expected texts are what transformers' way of running Jinja
// (jinja2 3.1, trim_blocks + lstrip_blocks) produces with the official Qwen3 and Qwen3.5 templates
// and the pycoder ChatML one.
#include <gtest/gtest.h>

#include "tokenizer/chat_template.h"
#include "tokenizer_fixtures.h"

namespace flashrt {
namespace {

using namespace tokenizer_test;

ChatOptions opts(bool generation_prompt, bool thinking) {
  ChatOptions o;
  o.add_generation_prompt = generation_prompt;
  o.enable_thinking = thinking;
  return o;
}

const std::vector<ChatMessage> kHello = {{"user", "Hi", ""}};
const std::vector<ChatMessage> kHistory = {{"system", "Be terse.", ""},
                                           {"user", "Q1", ""},
                                           {"assistant", "<think>\nR1\n</think>\n\nA1", ""},
                                           {"user", "Q2", ""}};
const std::vector<ChatMessage> kAfterQuery = {{"user", "Q", ""}, {"assistant", "A", "R"}};
const std::vector<ChatMessage> kTools = {{"user", "Q", ""},
                                         {"assistant", "A", ""},
                                         {"tool", "T1", ""},
                                         {"tool", "T2", ""},
                                         {"assistant", "B", ""}};

TEST(TokenizerChatQwen3, GenerationPromptWithThinkingOnAndOff) {
  EXPECT_EQ(render_chat(ChatFamily::kQwen3, kHello, opts(true, true)),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render_chat(ChatFamily::kQwen3, kHello, opts(true, false)),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(render_chat(ChatFamily::kQwen3, kHello, opts(false, false)),
            "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(TokenizerChatQwen3, HistoryDropsReasoningBeforeLastQuery) {
  EXPECT_EQ(render_chat(ChatFamily::kQwen3, kHistory, opts(true, true)),
            "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n"
            "<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(TokenizerChatQwen3, ReasoningAfterLastQueryIsShown) {
  EXPECT_EQ(render_chat(ChatFamily::kQwen3, kAfterQuery, opts(false, true)),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nR\n</think>\n\nA"
            "<|im_end|>\n");
  EXPECT_EQ(render_chat(ChatFamily::kQwen3, kTools, opts(true, true)),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
            "<|im_start|>user\n<tool_response>\nT1\n</tool_response>\n<tool_response>\nT2\n"
            "</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nB"
            "<|im_end|>\n<|im_start|>assistant\n");
}

TEST(TokenizerChatQwen3, ThinkingOffEncodesToThinkTokens) {
  ChatOptions o = opts(true, false);
  const auto ids = qwen3().encode(qwen3().render_chat(kHello, o));
  const std::vector<int32_t> tail{151644, 77091, 198, 151667, 271, 151668, 271};
  ASSERT_GE(ids.size(), tail.size());
  EXPECT_EQ(std::vector<int32_t>(ids.end() - static_cast<ptrdiff_t>(tail.size()), ids.end()), tail);
}

TEST(TokenizerChatQwen35, GenerationPromptOpensOrClosesThinking) {
  EXPECT_EQ(render_chat(ChatFamily::kQwen35, kHello, opts(true, true)),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n");
  EXPECT_EQ(render_chat(ChatFamily::kQwen35, kHello, opts(true, false)),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  EXPECT_EQ(render_chat(ChatFamily::kQwen35, kHistory, opts(true, true)),
            "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n"
            "<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n"
            "<|im_start|>assistant\n<think>\n");
}

TEST(TokenizerChatQwen35, TrimsAndShowsEmptyThinkingAfterLastQuery) {
  EXPECT_EQ(render_chat(ChatFamily::kQwen35, kTools, opts(true, false)),
            "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA"
            "<|im_end|>\n<|im_start|>user\n<tool_response>\nT1\n</tool_response>\n"
            "<tool_response>\nT2\n</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n\n"
            "</think>\n\nB<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  const std::vector<ChatMessage> padded = {
      {"system", "  sys \n", ""}, {"user", "\n q \u3000", ""}, {"assistant", " a ", " \n r \n"}};
  EXPECT_EQ(render_chat(ChatFamily::kQwen35, padded, opts(false, true)),
            "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nq<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nr\n</think>\n\na<|im_end|>\n");
}

TEST(TokenizerChatQwen35, RejectsWhatTheTemplateRejects) {
  const std::vector<ChatMessage> no_user = {{"system", "s", ""}, {"assistant", "a", ""}};
  expect_error([&] { render_chat(ChatFamily::kQwen35, no_user); }, {"no user query"});
  const std::vector<ChatMessage> late_system = {{"user", "u", ""}, {"system", "s", ""}};
  expect_error([&] { render_chat(ChatFamily::kQwen35, late_system); }, {"system message must be"});
  const std::vector<ChatMessage> odd_role = {{"user", "u", ""}, {"narrator", "n", ""}};
  expect_error([&] { render_chat(ChatFamily::kQwen35, odd_role); }, {"\"narrator\""});
  expect_error([&] { render_chat(ChatFamily::kQwen35, std::vector<ChatMessage>{}); },
               {"no messages"});
}

TEST(TokenizerChatML, EveryMessageOneTurn) {
  EXPECT_EQ(render_chat(ChatFamily::kChatML, kHistory, opts(true, false)),
            "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nR1\n</think>\n\nA1<|im_end|>\n<|im_start|>user\nQ2"
            "<|im_end|>\n<|im_start|>assistant\n");
}

// The parts of Qwen3.5's template that identify it (the whole template is ~7 KB).
constexpr std::string_view kQwen35TemplateExcerpt = R"({%- for message in messages %}
    {%- if message.role == "user" %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = reasoning_content|trim %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- else %}
        {{- '<think>\n' }}
    {%- endif %}
{%- endif %})";

TEST(TokenizerChatTemplate, DetectsFamilies) {
  EXPECT_EQ(detect_chat_family(qwen3().chat_template()), ChatFamily::kQwen3);
  EXPECT_EQ(detect_chat_family(pycoder().chat_template()), ChatFamily::kChatML);
  EXPECT_EQ(detect_chat_family(kQwen35TemplateExcerpt), ChatFamily::kQwen35);
  EXPECT_EQ(detect_chat_family(
                "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "
                "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"),
            ChatFamily::kChatML);
}

TEST(TokenizerChatTemplate, UnknownTemplateSuggestsChatml) {
  expect_error([] { detect_chat_family("{{- bos_token }}{% for m in messages %}[INST] ..."); },
               {"unrecognised chat template", "--chat-template chatml"});
  // Qwen2.5-style: ChatML with a default system prompt; rendering it as plain ChatML would differ.
  expect_error(
      [] {
        detect_chat_family(
            "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' }}"
            "{%- else %}You are Qwen, created by Alibaba Cloud.<|im_end|>");
      },
      {"--chat-template chatml"});
  expect_error([] { detect_chat_family(""); }, {"no chat template", "--chat-template chatml"});
}

TEST(TokenizerChatTemplate, OverrideByName) {
  ChatOptions o;
  o.family_override = "chatml";
  EXPECT_EQ(qwen3().render_chat(kHello, o),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  o.family_override = "qwen3.5";
  EXPECT_EQ(qwen3().render_chat(kHello, o),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n");
  o.family_override = "llama3";
  expect_error([&] { qwen3().render_chat(kHello, o); },
               {"\"llama3\"", "chatml", "qwen3", "qwen3.5"});
  EXPECT_EQ(chat_family_from_name("qwen35"), ChatFamily::kQwen35);
  EXPECT_EQ(chat_family_name(ChatFamily::kQwen35), "qwen3.5");
}

TEST(TokenizerChatTemplate, NoTemplateIsAnErrorUnlessOverridden) {
  const Tokenizer bare = Tokenizer::from_hf_json(
      read_file(shared_dir() + "/models/pycoder-hybrid-12m/tokenizer.json"));
  expect_error([&] { bare.render_chat(kHello); }, {"no chat template", "--chat-template chatml"});
  ChatOptions o;
  o.family_override = "chatml";
  EXPECT_EQ(bare.render_chat(kHello, o), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace flashrt
