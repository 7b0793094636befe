// Python str semantics over UTF-8 bytes for the chat-template renderer: lengths, indexing and
// case mapping work on code points as Python's do, and whitespace is Python's str.isspace().
// Bytes that are not valid UTF-8 decode to U+DC80..U+DCFF (Python's surrogateescape), so that
// encoding the result gives the original bytes back.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace flashrt::jinja::text {

std::u32string decode(std::string_view s);
std::string encode(std::u32string_view s);
void append_utf8(std::string* out, char32_t c);
bool is_ascii(std::string_view s);
size_t length(std::string_view s);  // in code points

bool is_space(char32_t c);  // str.isspace()
bool is_alpha(char32_t c);
bool is_digit(char32_t c);    // str.isdigit(): decimal digits (and superscripts, approximately)
bool is_numeric(char32_t c);  // str.isnumeric()
bool is_word(char32_t c);     // re's \w
bool is_upper(char32_t c);
bool is_lower(char32_t c);
char32_t to_upper(char32_t c);
char32_t to_lower(char32_t c);
char32_t to_title(char32_t c);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);  // str.capitalize()
std::string py_title(std::string_view s);    // str.title()
std::string swapcase(std::string_view s);

// str.strip/lstrip/rstrip: `chars` null means whitespace.
std::string strip(std::string_view s, const std::string* chars, bool left, bool right);

// str.split / str.rsplit; `sep` null means runs of whitespace. maxsplit < 0: no limit.
std::vector<std::string> split(std::string_view s, const std::string* sep, long long maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::string* sep, long long maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);

// Counts non-overlapping occurrences (Python: "" occurs len+1 times).
size_t count(std::string_view s, std::string_view sub);
// str.replace(old, new, count); `limit` < 0: all. `max_size` bounds the result (throws past it).
std::string replace(std::string_view s, std::string_view from, std::string_view to, long long limit,
                    size_t max_size);

}  // namespace flashrt::jinja::text
