// The Jinja renderer feature by feature. Every expected string here is what jinja2 3.1 renders for
// the same template and context in the environment transformers uses
// (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, transformers' tojson);
// they were produced with jinja2 and copied here, so the tests need no Python.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "tokenizer/jinja.h"

namespace flashrt {
namespace {

using nlohmann::ordered_json;

std::string render(const std::string& tpl, const char* context = "{}") {
  jinja::RenderOptions o;
  o.strftime_now = [](const char* f) { return std::string("STRFTIME[") + f + "]"; };
  return jinja::Template(tpl).render(ordered_json::parse(context), o);
}

// The message of the flashrt::Error that parsing or rendering throws ("" when none is thrown).
std::string error_of(const std::string& tpl, const char* context = "{}") {
  try {
    render(tpl, context);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The render fails with a message containing `fragment` (jinja2's own wording).
void expect_error(const std::string& tpl, const char* fragment) {
  const std::string e = error_of(tpl);
  EXPECT_NE(e.find(fragment), std::string::npos) << e;
}
void expect_error(const std::string& tpl, const char* context, const char* fragment) {
  const std::string e = error_of(tpl, context);
  EXPECT_NE(e.find(fragment), std::string::npos) << e;
}

TEST(Jinja, WhitespaceControl) {
  EXPECT_EQ(render(R"J({% if true %}
  yes
{% endif %}
after)J"),
            R"J(  yes
after)J");
  EXPECT_EQ(render(R"J(  {% if true %}x{% endif %}  
  {%- if true %}y{% endif -%}  
  z)J"),
            R"J(xyz)J");
  EXPECT_EQ(render(R"J(a  {%+ if true %}b{% endif %})J"), R"J(a  b)J");
  EXPECT_EQ(render(R"J(a
  {# comment #}
b
{#- c -#}
  c)J"),
            R"J(a
bc)J");
  EXPECT_EQ(render(R"J({{ 'a' }}
{{ 'b' -}}
   {{- 'c' }}  
)J"),
            R"J(a
bc  )J");
  EXPECT_EQ(render(R"J({% for i in [1, 2] %}
  - {{ i }}
{% endfor %}
)J"),
            R"J(  - 1
  - 2
)J");
  EXPECT_EQ(render("line\r\nwindows\r\n{% if true %}\r\nx\r\n{% endif %}\r\n"),
            R"J(line
windows
x
)J");
  EXPECT_EQ(render(R"J({% raw %}{{ not evaluated }}{% endraw %}
  {%- raw -%}  {%x%}  {%- endraw %}
end)J"),
            R"J({{ not evaluated }}{%x%}end)J");
  EXPECT_EQ(render(R"J(trailing newline kept once

)J"),
            R"J(trailing newline kept once
)J");
}

TEST(Jinja, Literals) {
  EXPECT_EQ(
      render(
          R"J({{ 'single' }} {{ "double" }} {{ 'esc\'aped' }} {{ "tab\there" }} {{ 'a' 'b' }} {{ '\u00e9\x41' }})J"),
      R"J(single double esc'aped tab	here ab éA)J");
  EXPECT_EQ(
      render(
          R"J({{ 1 }} {{ -2 }} {{ 1_000 }} {{ 0x1f }} {{ 1.5 }} {{ 1e3 }} {{ 1.0 }} {{ 2.50 }})J"),
      R"J(1 -2 1000 31 1.5 1000.0 1.0 2.5)J");
  EXPECT_EQ(render(R"J({{ true }} {{ True }} {{ false }} {{ none }} {{ None }})J"),
            R"J(True True False None None)J");
  EXPECT_EQ(
      render(
          R"J({{ [1, 'a', none, true, 1.5] }} {{ (1,) }} {{ (1, 2) }} {{ () }} {{ {'k': 'v', 'n': [1]} }} {{ ["it's"] }})J"),
      R"J([1, 'a', None, True, 1.5] (1,) (1, 2) () {'k': 'v', 'n': [1]} ["it's"])J");
}

TEST(Jinja, PythonValues) {
  EXPECT_EQ(
      render(
          R"J({{ 10 / 4 }} {{ 10 // 4 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2**3**2 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }})J"),
      R"J(2.5 2 -4 2 -2 1024 0.5 64 3.0 0.5)J");
  EXPECT_EQ(
      render(
          R"J({{ 0.1 + 0.2 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1 / 3 }} {{ 1e300 * 1e10 }} {{ -0.0 }} {{ 3 * 1.0 }})J"),
      R"J(0.30000000000000004 1e+16 1000000000000000.0 0.0001 1e-05 0.3333333333333333 inf -0.0 3.0)J");
  EXPECT_EQ(
      render(
          R"J({{ 1 == 1.0 }} {{ true == 1 }} {{ 1 < 2.5 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ (1, 2) == [1, 2] }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }})J"),
      R"J(True True True True True False True False)J");
  EXPECT_EQ(
      render(
          R"J({{ 'a' ~ 1 ~ none ~ true ~ [1] }} {{ 'a' + 'b' }} {{ [1] + [2] }} {{ 'ab' * 3 }} {{ [0] * 3 }} {{ true + 1 }})J"),
      R"J(a1NoneTrue[1] ab [1, 2] ababab [0, 0, 0] 2)J");
  EXPECT_EQ(
      render(
          R"J({{ none or 'fallback' }} {{ 'x' and 'y' }} {{ 0 and 1 }} {{ not [] }} {{ not 'a' }} {{ 'x' if 0 else 'y' }} [{{ 'x' if false }}])J"),
      R"J(fallback y 0 True False y [])J");
  EXPECT_EQ(
      render(
          R"J({{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }} [{{ x }}])J"),
      R"J(True True True True [])J");
}

TEST(Jinja, AttributesAndSlices) {
  EXPECT_EQ(
      render(
          R"J({{ m.content }} {{ m['content'] }} {{ m.missing }}|{{ m.get('missing', 'dflt') }} {{ m.items()|list }} {{ l.0 }} {{ l[-1] }} [{{ l[9] }}])J",
          R"J({"m": {"content": "hi", "role": "user"}, "l": [1, 2, 3]})J"),
      R"J(hi hi |dflt [('content', 'hi'), ('role', 'user')] 1 3 [])J");
  EXPECT_EQ(
      render(
          R"J({{ l[::-1] }} {{ l[1:] }} {{ l[:-1] }} {{ l[::2] }} {{ l[-2:] }} {{ l[5:] }} {{ s[1:] }} {{ s[:-1] }} {{ s[::-1] }} {{ u[1:3] }} {{ u[-1] }})J",
          R"J({"l": [1, 2, 3, 4], "s": "hello", "u": "héllo→"})J"),
      R"J([4, 3, 2, 1] [2, 3, 4] [1, 2, 3] [1, 3] [3, 4] [] ello hell olleh él →)J");
  EXPECT_EQ(render(R"J({{ schema.items is callable }}|{{ schema['items'] }})J",
                   R"J({"schema": {"items": {"type": "string"}}})J"),
            R"J(True|{'type': 'string'})J");
}

TEST(Jinja, Loops) {
  EXPECT_EQ(
      render(
          R"J({% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.cycle('o', 'e') }}|{% endfor %})J"),
      R"J(1032TrueFalse3o|2121FalseFalse3e|3210FalseTrue3o|)J");
  EXPECT_EQ(
      render(
          R"J({% for x in [1, 2, 3] %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }};{% endfor %})J"),
      R"J(<1>2;1<2>3;2<3>;)J");
  EXPECT_EQ(
      render(
          R"J({% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}{% for a, b in [(1, 2), [3, 4]] %}{{ a + b }}{% endfor %})J",
          R"J({"d": {"b": 1, "a": 2}})J"),
      R"J(b=1;a=2;ba37)J");
  EXPECT_EQ(
      render(
          R"J({% for x in range(10) if x is odd %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% endfor %})J"),
      R"J(1:1/5 3:2/5 5:3/5 7:4/5 9:5/5 )J");
  EXPECT_EQ(
      render(
          R"J({% for x in [] %}never{% else %}empty{% endfor %} {% for c in 'ab' %}{{ c }}{% endfor %})J"),
      R"J(empty ab)J");
  EXPECT_EQ(
      render(
          R"J({% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %})J"),
      R"J(0134)J");
  EXPECT_EQ(
      render(
          R"J({% for i in range(2) %}{% for j in range(2) %}{{ i }}{{ j }}{{ loop.index }} {% endfor %}{{ loop.index }}|{% endfor %})J"),
      R"J(001 012 1|101 112 2|)J");
  EXPECT_EQ(
      render(
          R"J({% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + 1 %}{{ x }}|{% endfor %}{{ x }})J"),
      R"J(12|12|1)J");
  EXPECT_EQ(
      render(
          R"J({{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(5, 0, -2)|list }} {{ range(0)|list }})J"),
      R"J([0, 1, 2] [1, 3, 5] [5, 3, 1] [])J");
}

TEST(Jinja, Assignments) {
  EXPECT_EQ(
      render(
          R"J({% set a, b = 1, 2 %}{{ a }}{{ b }} {% set t = 1, 2 %}{{ t }} {% set (c, d) = [3, 4] %}{{ c }}{{ d }})J"),
      R"J(12 (1, 2) 34)J");
  EXPECT_EQ(
      render(
          R"J({% set ns = namespace(n=0, s='') %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }} {{ ns.s }})J"),
      R"J(6 0123)J");
  EXPECT_EQ(
      render(
          R"J({% set block %}  inside {{ 1 + 1 }}  {% endset %}[{{ block }}] {% set up | upper %}shout{% endset %}{{ up }})J"),
      R"J([  inside 2  ] SHOUT)J");
  EXPECT_EQ(render(R"J({% for i in [1] %}{% set inner = 'x' %}{% endfor %}[{{ inner }}])J"),
            R"J([])J");
  EXPECT_EQ(render(R"J({% for i in [1] %}{{ x }}{% endfor %}{% set x = 'late' %}{{ x }})J",
                   R"J({"x": "context"})J"),
            R"J(late)J");
  EXPECT_EQ(
      render(
          R"J({% for i in [1] %}{{ x }}{% endfor %}{% if true %}{% set x = 'late' %}{% endif %}{{ x }})J",
          R"J({"x": "context"})J"),
      R"J(contextlate)J");
  EXPECT_EQ(render(R"J({% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}])J"), R"J(3[])J");
  EXPECT_EQ(
      render(R"J({% generation %}generated {{ 1 }}{% set g = 1 %}{% endgeneration %}[{{ g }}])J"),
      R"J(generated 1[])J");
}

TEST(Jinja, Macros) {
  EXPECT_EQ(
      render(
          R"J({% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', greeting='Hi') }} {{ greet(name='Cy') }})J"),
      R"J(Hello, Ann! Hi, Bob! Hello, Cy!)J");
  EXPECT_EQ(render(R"J({% macro f(a, b=a) %}{{ a }}{{ b }}{% endmacro %}{{ f(1) }} [{{ f() }}])J"),
            R"J(11 [])J");
  EXPECT_EQ(
      render(
          R"J({% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(5) }})J"),
      R"J(120)J");
  EXPECT_EQ(
      render(R"J({% set x = 5 %}{% macro m() %}{{ x }}{% endmacro %}{% set x = 6 %}{{ m() }})J"),
      R"J(6)J");
  EXPECT_EQ(
      render(
          R"J({% macro render(m) %}<{{ m.role }}>{{ m.content|trim }}{% endmacro %}{% for m in [{'role': 'u', 'content': ' a '}] %}{{ render(m) }}{% endfor %})J"),
      R"J(<u>a)J");
}

TEST(Jinja, Filters) {
  EXPECT_EQ(
      render(
          R"J({{ x|tojson }} {{ x|tojson(indent=2) }} {{ x|tojson(separators=(',', ':')) }} {{ x|tojson(sort_keys=true) }} {{ 'é\n"\\\t\b\f\x01\x7f'|tojson }} {{ [1.0, 1e-05, 1e16, 2.5, -0.0, 3]|tojson }} {{ 'é'|tojson(ensure_ascii=true) }})J",
          R"J({"x": {"b": [1, 2.0, null, true], "a": {"nested": "ü"}, "e": {}, "f": []}})J"),
      R"J({"b": [1, 2.0, null, true], "a": {"nested": "ü"}, "e": {}, "f": []} {
  "b": [
    1,
    2.0,
    null,
    true
  ],
  "a": {
    "nested": "ü"
  },
  "e": {},
  "f": []
} {"b":[1,2.0,null,true],"a":{"nested":"ü"},"e":{},"f":[]} {"a": {"nested": "ü"}, "b": [1, 2.0, null, true], "e": {}, "f": []} "é\n\"\\\t\b\f\u0001" [1.0, 1e-05, 1e+16, 2.5, -0.0, 3] "\u00e9")J");
  EXPECT_EQ(
      render(
          R"J({{ ' a b '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ [1, 2]|length }}{{ 'héllo'|length }}{{ {'a': 1}|count }}|{{ [3, 4]|first }}{{ [3, 4]|last }}{{ 'ab'|first }}|{{ 'aBc'|lower }}{{ 'aBc'|upper }}|{{ 'hello wORLD-foo (bar'|title }}|{{ 'hello World'|capitalize }})J"),
      R"J(a b|a|251|34a|abcABC|Hello World-Foo (Bar|Hello world)J");
  EXPECT_EQ(
      render(
          R"J({{ 'aaa'|replace('a', 'b') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ [1, 2, 3]|join(', ') }} {{ [{'n': 'a'}, {'n': 'b'}]|join('-', attribute='n') }} {{ 'abc'|join('.') }})J"),
      R"J(bbb bba 1, 2, 3 a-b a.b.c)J");
  EXPECT_EQ(
      render(
          R"J({{ x|default('d') }} {{ ''|default('d') }} {{ ''|default('d', true) }} {{ none|d('n') }} {{ 0|default('z', boolean=true) }})J"),
      R"J(d  d None z)J");
  EXPECT_EQ(
      render(
          R"J({{ 'ab'|list }} {{ (1, 2)|list }} {{ 12|string ~ 3 }} {{ '42'|int + 1 }} {{ '42.9'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ 'ff'|int(base=16) }} {{ 3.9|int }} {{ '1.5'|float }} {{ 'x'|float }} {{ 2|float }})J"),
      R"J(['a', 'b'] [1, 2] 123 43 42 0 7 255 3 1.5 0.0 2.0)J");
  EXPECT_EQ(
      render(
          R"J({{ -3|abs }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 3|round }} {{ 3.14159|round(2, 'floor') }} {{ 3.1|round(method='ceil') }})J"),
      R"J(3 2.0 4.0 2.67 3 3.14 4.0)J");
  EXPECT_EQ(
      render(
          R"J({{ d|items|list }} {{ d|dictsort }} {{ d|dictsort(by='value') }} {{ d|dictsort(reverse=true) }})J",
          R"J({"d": {"b": 2, "A": 3, "c": 1}})J"),
      R"J([('b', 2), ('A', 3), ('c', 1)] [('A', 3), ('b', 2), ('c', 1)] [('c', 1), ('b', 2), ('A', 3)] [('c', 1), ('b', 2), ('A', 3)])J");
  EXPECT_EQ(
      render(
          R"J({{ 'a\nb\n\nc'|indent }}|{{ 'a\nb'|indent(2, true) }}|{{ 'a\n\nb'|indent(2, blank=true) }}|{{ 'a\nb'|indent('> ') }})J"),
      R"J(a
    b

    c|  a
  b|a
  
  b|a
> b)J");
  EXPECT_EQ(
      render(
          R"J({{ ms|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }} {{ ms|rejectattr('role', 'eq', 'user')|list|length }} {{ ms|selectattr('tool')|list|length }} {{ ms|selectattr('tool', 'defined')|map(attribute='tool.name')|list }} {{ ms|map(attribute='missing', default='-')|join }})J",
          R"J({"ms": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b", "tool": {"name": "t"}}, {"role": "user", "content": "c"}]})J"),
      R"J(a,c 1 1 ['t'] ---)J");
  EXPECT_EQ(
      render(
          R"J({{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('even')|list }} {{ [none, 0, 1]|select|list }} {{ [1, 2]|select('in', [2, 3])|list }} {{ ['a', 'b']|map('upper')|list }} {{ [1.5]|map('round')|list }})J"),
      R"J([1, 3] [1, 3] [1] [2] ['A', 'B'] [2.0])J");
  EXPECT_EQ(
      render(
          R"J({{ ['b', 'A', 'c', 'a']|unique|list }} {{ ['b', 'A', 'c', 'a']|unique(case_sensitive=true)|list }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }} {{ [3, 1, 2]|sort(reverse=true) }} {{ [{'a': 2, 'b': 1}, {'a': 1, 'b': 2}]|sort(attribute='a')|map(attribute='b')|list }})J"),
      R"J(['b', 'A', 'c'] ['b', 'A', 'c', 'a'] ['A', 'b', 'c'] ['A', 'b', 'c'] [3, 2, 1] [2, 1])J");
  EXPECT_EQ(
      render(
          R"J({{ [1, 2]|reverse|list }} {{ 'abc'|reverse }} {{ [1, 2, 3]|sum }} {{ [{'v': 1}, {'v': 2}]|sum(attribute='v') }} {{ [1, 2]|sum(start=10) }} {{ [3, 1, 2]|min }} {{ ['b', 'A']|max }} {{ []|max }}|{{ [{'v': 1}, {'v': 3}]|max(attribute='v') }})J"),
      R"J([2, 1] cba 6 3 13 1 b |{'v': 3})J");
  EXPECT_EQ(
      render(
          R"J({{ '<a href="x">&\'</a>'|e }} {{ '<b>'|escape }} {{ '<b>'|safe }} {{ 'one two  three'|wordcount }} [{{ 'abc'|center(9) }}] [{{ 'ab'|center(7) }}] {{ 'hello world and more'|truncate(12) }} {{ 'hello world and more'|truncate(12, true, '..') }} {{ [1, 2, 3]|batch(2)|list }})J"),
      R"J(&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt; &lt;b&gt; <b> 3 [   abc   ] [   ab  ] hello... hello worl.. [[1, 2], [3]])J");
}

TEST(Jinja, Tests) {
  EXPECT_EQ(
      render(
          R"J({{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ n is none }} {{ 'a' is string }} {{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 1 is integer }} {{ true is integer }} {{ 1.0 is float }} {{ true is boolean }})J",
          R"J({"x": 1, "n": null})J"),
      R"J(True False True True True True True True True False True True)J");
  EXPECT_EQ(
      render(
          R"J({{ {} is mapping }} {{ [] is mapping }} {{ [] is iterable }} {{ 'a' is iterable }} {{ 1 is iterable }} {{ 'a' is sequence }} {{ true is true }} {{ 1 is true }} {{ false is false }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }})J"),
      R"J(True False True True False True True False True True True True False)J");
  EXPECT_EQ(
      render(
          R"J({{ 2 is in [1, 2] }} {{ 1 is eq 1 }} {{ 1 is equalto 2 }} {{ 1 is ne 2 }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 'aB' is lower }} {{ 1 is not none }} {{ none is sameas none }} {{ 3 is gt 2 }} {{ 3 is lt 2 }} {{ 'upper' is filter }} {{ 'odd' is test }})J"),
      R"J(True True False True True True False True True True False True True)J");
}

TEST(Jinja, Methods) {
  EXPECT_EQ(
      render(
          R"J({{ '  x  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ '  x  '.lstrip() }}|{{ '  x  '.rstrip() }}|{{ '\n\nhi\n'.lstrip('\n') }}|{{ '\u3000wide\u3000'.strip() }})J"),
      R"J(x|hi|x  |  x|hi
|wide)J");
  EXPECT_EQ(
      render(
          R"J({{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ 'x</think>y</think>z'.split('</think>')[-1] }} {{ 'a\nb\r\nc'.splitlines() }})J"),
      R"J(['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a b', 'c'] z ['a', 'b', 'c'])J");
  EXPECT_EQ(
      render(
          R"J({{ 'hello'.startswith('he') }} {{ 'hello'.startswith(('x', 'h')) }} {{ 'hello'.endswith('lo') }} {{ 'hello'.replace('l', 'L') }} {{ 'hello'.replace('l', 'L', 1) }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'Hi'.upper() }}{{ 'Hi'.lower() }})J"),
      R"J(True True True heLLo heLlo Hello World Hello HIhi)J");
  EXPECT_EQ(
      render(
          R"J({{ 'hello'.find('l') }} {{ 'hello'.rfind('l') }} {{ 'hello'.find('z') }} {{ 'hello'.count('l') }} {{ '{} and {}'.format(1, 'b') }} {{ '{0}{1}{0}'.format('a', 'b') }} {{ '-'.join(['a', 'b']) }} {{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' '.isspace() }} {{ 'ab'.islower() }} {{ 'AB'.isupper() }})J"),
      R"J(2 3 -1 2 1 and b aba a-b True True True True True)J");
  EXPECT_EQ(
      render(
          R"J({{ d.keys()|list }} {{ d.values()|list }} {{ d.get('a') }} {{ d.get('z') }} {{ l.index(2) }} {{ l.count(1) }} {{ 'ab'.center(6, '*') }} {{ '7'.zfill(3) }} {{ 'a=b'.partition('=') }})J",
          R"J({"d": {"a": 1, "b": 2}, "l": [1, 2, 1]})J"),
      R"J(['a', 'b'] [1, 2] 1 None 1 2 **ab** 007 ('a', '=', 'b'))J");
}

TEST(Jinja, Globals) {
  EXPECT_EQ(render(R"J({{ dict(a=1, b='x') }} {{ namespace(a=1).a }} {{ range(3)|list }})J"),
            R"J({'a': 1, 'b': 'x'} 1 [0, 1, 2])J");
}

// Errors a template raises or causes: flashrt::Error with the line and jinja2's message.
TEST(JinjaErrors, RaiseException) {
  // jinja2: TemplateError: Conversation roles must alternate
  expect_error(R"J(line one
{{ raise_exception('Conversation roles must alternate') }})J",
               R"J(chat template line 2: Conversation roles must alternate)J");
}

TEST(JinjaErrors, UndefinedAttribute) {
  // jinja2: UndefinedError: 'dict object' has no attribute 'y'
  expect_error(R"J({{ x.y.z }})J", R"J({"x": {}})J",
               R"J(chat template line 1: 'dict object' has no attribute 'y')J");
}

TEST(JinjaErrors, UndefinedName) {
  // jinja2: UndefinedError: 'nope' is undefined
  expect_error(R"J(a
b
{{ nope.attr }})J",
               R"J(chat template line 3: 'nope' is undefined)J");
}

TEST(JinjaErrors, UndefinedArithmetic) {
  // jinja2: UndefinedError: 'nope' is undefined
  expect_error(R"J({{ nope + 1 }})J", R"J('nope' is undefined)J");
}

TEST(JinjaErrors, TypeErrorConcat) {
  // jinja2: TypeError: can only concatenate str (not "int") to str
  expect_error(R"J({{ 'a' + 1 }})J", R"J(can only concatenate str (not "int") to str)J");
}

TEST(JinjaErrors, TypeErrorUnsupported) {
  // jinja2: TypeError: unsupported operand type(s) for -: 'list' and 'int'
  expect_error(R"J({{ [] - 1 }})J", R"J(unsupported operand type(s) for -: 'list' and 'int')J");
}

TEST(JinjaErrors, DivisionByZero) {
  // jinja2: ZeroDivisionError: division by zero
  expect_error(R"J({{ 1 / 0 }})J", R"J(division by zero)J");
}

TEST(JinjaErrors, NotIterable) {
  // jinja2: TypeError: 'int' object is not iterable
  expect_error(R"J({% for x in 5 %}{% endfor %})J", R"J('int' object is not iterable)J");
}

TEST(JinjaErrors, Unpack) {
  // jinja2: ValueError: too many values to unpack (expected 2)
  expect_error(R"J({% for a, b in [[1, 2, 3]] %}{% endfor %})J", R"J(too many values to unpack)J");
}

TEST(JinjaErrors, ListAppend) {
  // jinja2: SecurityError: access to attribute 'append' of 'list' object is unsafe.
  expect_error(R"J({% set xs = [] %}{{ xs.append(1) }})J",
               R"J(access to attribute 'append' of 'list' object is unsafe.)J");
}

TEST(JinjaErrors, DictUpdate) {
  // jinja2: SecurityError: access to attribute 'update' of 'dict' object is unsafe.
  expect_error(R"J({% set d = {} %}{% set _ = d.update({'a': 1}) %})J",
               R"J(access to attribute 'update' of 'dict' object is unsafe.)J");
}

TEST(JinjaErrors, ContextListPop) {
  // jinja2: SecurityError: access to attribute 'pop' of 'list' object is unsafe.
  expect_error(R"J({{ messages.pop() }})J", R"J({"messages": [1]})J",
               R"J(access to attribute 'pop' of 'list' object is unsafe.)J");
}

TEST(JinjaErrors, RangeTooBig) {
  // jinja2: OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).
  expect_error(R"J({{ range(100001)|length }})J", R"J(Range too big)J");
}

TEST(JinjaErrors, MacroArgs) {
  // jinja2: TypeError: macro 'f' takes not more than 1 argument(s)
  expect_error(R"J({% macro f(a) %}{% endmacro %}{{ f(1, 2) }})J",
               R"J(macro 'f' takes not more than 1 argument(s))J");
}

TEST(JinjaErrors, NotNamespace) {
  // jinja2: TemplateRuntimeError: cannot assign attribute on non-namespace object
  expect_error(R"J({% set x = {} %}{% set x.a = 1 %})J",
               R"J(cannot assign attribute on non-namespace object)J");
}

TEST(JinjaErrors, SliceOfNone) {
  // jinja2: TypeError: 'NoneType' object is not subscriptable
  expect_error(R"J({{ n[1:] }})J", R"J({"n": null})J",
               R"J('NoneType' object is not subscriptable)J");
}

// Syntax errors: thrown by the constructor, with the line and column.
TEST(JinjaSyntax, UnclosedBlock) {
  // jinja2: TemplateSyntaxError: Unexpected end of template. Jinja was looking for the following
  // tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.
  try {
    jinja::Template t(R"J(a
{% if x %}
b)J");
    FAIL() << "no syntax error";
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find(
            R"J(chat template line 3, column 2: unexpected end of template, expected 'elif' or 'else' or 'endif')J"),
        std::string::npos)
        << e.what();
  }
}

TEST(JinjaSyntax, UnknownTag) {
  // jinja2: TemplateSyntaxError: Encountered unknown tag 'frobnicate'.
  try {
    jinja::Template t(R"J(x
  {% frobnicate %})J");
    FAIL() << "no syntax error";
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find(R"J(chat template line 2, column 6: unknown tag 'frobnicate')J"),
        std::string::npos)
        << e.what();
  }
}

TEST(JinjaSyntax, UnclosedVariable) {
  // jinja2: TemplateSyntaxError: unexpected end of template, expected 'end of print statement'.
  try {
    jinja::Template t(R"J({{ x )J");
    FAIL() << "no syntax error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  R"J(chat template line 1, column 1: unexpected end of template, expected '}}')J"),
              std::string::npos)
        << e.what();
  }
}

TEST(JinjaSyntax, UnclosedString) {
  // jinja2: TemplateSyntaxError: unexpected char "'" at 3
  try {
    jinja::Template t(R"J({{ 'abc }})J");
    FAIL() << "no syntax error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  R"J(chat template line 1, column 4: unterminated string literal)J"),
              std::string::npos)
        << e.what();
  }
}

TEST(JinjaSyntax, UnclosedComment) {
  // jinja2: TemplateSyntaxError: Missing end of comment tag
  try {
    jinja::Template t(R"J(a {# b)J");
    FAIL() << "no syntax error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  R"J(chat template line 1, column 3: missing end of comment tag)J"),
              std::string::npos)
        << e.what();
  }
}

TEST(JinjaSyntax, BadToken) {
  // jinja2: TemplateSyntaxError: unexpected char '!' at 5
  try {
    jinja::Template t(R"J({{ a ! b }})J");
    FAIL() << "no syntax error";
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find(R"J(chat template line 1, column 6: unexpected char '!')J"),
        std::string::npos)
        << e.what();
  }
}

TEST(JinjaSyntax, UnbalancedBracket) {
  // jinja2: TemplateSyntaxError: unexpected ']', expected ')'
  try {
    jinja::Template t(R"J({{ (a] }})J");
    FAIL() << "no syntax error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  R"J(chat template line 1, column 6: unexpected ']', expected ')')J"),
              std::string::npos)
        << e.what();
  }
}

TEST(JinjaSyntax, BreakOutsideLoop) {
  // jinja2: SyntaxError: 'break' outside loop (<template>, line 11)
  try {
    jinja::Template t(R"J({% break %})J");
    FAIL() << "no syntax error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(R"J('break' outside of a loop)J"), std::string::npos)
        << e.what();
  }
}

TEST(JinjaSyntax, ChainedTests) {
  // jinja2: TemplateSyntaxError: You cannot chain multiple tests with is
  try {
    jinja::Template t(R"J({{ a is b is c }})J");
    FAIL() << "no syntax error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(R"J(column)J"), std::string::npos) << e.what();
  }
}

// Popular chat templates (written after the originals) rendered as jinja2 renders them.
const char* const kLlama31 = R"J({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)J";

const char* const kMistral =
    R"J({{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %})J";

const char* const kGemma =
    R"J({{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %})J";

const char* const kPhi3 =
    R"J({% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>
' + message['content'] + '<|end|>
'}}{% elif message['role'] == 'user' %}{{'<|user|>
' + message['content'] + '<|end|>
'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>
' + message['content'] + '<|end|>
'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>
' }}{% else %}{{ eos_token }}{% endif %})J";

const char* const kChatML =
    R"J({% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %})J";

const char* const kDeepSeek =
    R"J({% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %}{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '\n\n' + message['content'] %}{%- endif %}{%- endif %}{%- endfor %}{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and 'tool_calls' in message %}{%- set ns.is_tool = false -%}{%- for tool in message['tool_calls'] %}{%- if not ns.is_first %}{%- if message['content'] is none %}{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{%- else %}{{'<｜Assistant｜>' + message['content'] + '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{%- endif %}{%- set ns.is_first = true -%}{%- else %}{{'\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{%- endif %}{%- endfor %}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- if message['role'] == 'assistant' and 'tool_calls' not in message %}{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- set ns.is_output_first = false %}{%- else %}{{'<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\n'}}{% endif %})J";

TEST(JinjaTemplates, Llama31Plain) {
  EXPECT_EQ(
      render(
          kLlama31,
          R"J({"bos_token": "<|begin_of_text|>", "messages": [{"role": "system", "content": "  You are terse.\n"}, {"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi there."}, {"role": "user", "content": "How are you? ü 中文"}], "add_generation_prompt": true, "date_string": "02 Dec 2025"})J"),
      R"J(<|begin_of_text|><|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: December 2023
Today Date: 02 Dec 2025

You are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>

Hello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>

Hi there.<|eot_id|><|start_header_id|>user<|end_header_id|>

How are you? ü 中文<|eot_id|><|start_header_id|>assistant<|end_header_id|>

)J");
}

TEST(JinjaTemplates, Llama31StrftimeNow) {
  EXPECT_EQ(
      render(
          kLlama31,
          R"J({"bos_token": "<|begin_of_text|>", "messages": [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi there."}, {"role": "user", "content": "How are you? ü 中文"}], "add_generation_prompt": false})J"),
      R"J(<|begin_of_text|><|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: December 2023
Today Date: STRFTIME[%d %b %Y]

<|eot_id|><|start_header_id|>user<|end_header_id|>

Hello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>

Hi there.<|eot_id|><|start_header_id|>user<|end_header_id|>

How are you? ü 中文<|eot_id|>)J");
}

TEST(JinjaTemplates, Llama31Tools) {
  EXPECT_EQ(
      render(
          kLlama31,
          R"J({"bos_token": "<|begin_of_text|>", "messages": [{"role": "system", "content": "  You are terse.\n"}, {"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi there."}, {"role": "user", "content": "How are you? ü 中文"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]}, {"role": "tool", "content": "{\"temp\": 18}"}], "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}, "days": {"type": "integer", "minimum": 1, "maximum": 7.5}}, "required": ["city"]}}}], "add_generation_prompt": true, "date_string": "02 Dec 2025"})J"),
      R"J(<|begin_of_text|><|start_header_id|>system<|end_header_id|>

Environment: ipython
Cutting Knowledge Date: December 2023
Today Date: 02 Dec 2025

You are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>

Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.

Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.Do not use variables.

{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {
                    "type": "string",
                    "description": "City name"
                },
                "unit": {
                    "type": "string",
                    "enum": [
                        "celsius",
                        "fahrenheit"
                    ]
                },
                "days": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 7.5
                }
            },
            "required": [
                "city"
            ]
        }
    }
}

Hello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>

Hi there.<|eot_id|><|start_header_id|>user<|end_header_id|>

How are you? ü 中文<|eot_id|><|start_header_id|>assistant<|end_header_id|>

{"name": "get_weather", "parameters": {"city": "Paris", "days": 2}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>

"{\"temp\": 18}"<|eot_id|><|start_header_id|>assistant<|end_header_id|>

)J");
}

TEST(JinjaTemplates, Llama31ToolsInSystem) {
  EXPECT_EQ(
      render(
          kLlama31,
          R"J({"bos_token": "<|begin_of_text|>", "messages": [{"role": "system", "content": "  You are terse.\n"}, {"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi there."}, {"role": "user", "content": "How are you? ü 中文"}], "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}, "days": {"type": "integer", "minimum": 1, "maximum": 7.5}}, "required": ["city"]}}}], "tools_in_user_message": false, "add_generation_prompt": true, "date_string": "02 Dec 2025"})J"),
      R"J(<|begin_of_text|><|start_header_id|>system<|end_header_id|>

Environment: ipython
Cutting Knowledge Date: December 2023
Today Date: 02 Dec 2025

You have access to the following functions. To call a function, please respond with JSON for a function call.Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.Do not use variables.

{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {
                    "type": "string",
                    "description": "City name"
                },
                "unit": {
                    "type": "string",
                    "enum": [
                        "celsius",
                        "fahrenheit"
                    ]
                },
                "days": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 7.5
                }
            },
            "required": [
                "city"
            ]
        }
    }
}

You are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>

Hello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>

Hi there.<|eot_id|><|start_header_id|>user<|end_header_id|>

How are you? ü 中文<|eot_id|><|start_header_id|>assistant<|end_header_id|>

)J");
}

TEST(JinjaTemplates, Llama31BuiltinTools) {
  EXPECT_EQ(
      render(
          kLlama31,
          R"J({"bos_token": "<|begin_of_text|>", "messages": [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi there."}, {"role": "user", "content": "How are you? ü 中文"}, {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "brave_search", "arguments": {"query": "weather"}}}]}, {"role": "ipython", "content": {"result": [1, 2]}}], "builtin_tools": ["brave_search", "code_interpreter", "wolfram_alpha"], "add_generation_prompt": true, "date_string": "02 Dec 2025"})J"),
      R"J(<|begin_of_text|><|start_header_id|>system<|end_header_id|>

Environment: ipython
Tools: brave_search, wolfram_alpha

Cutting Knowledge Date: December 2023
Today Date: 02 Dec 2025

<|eot_id|><|start_header_id|>user<|end_header_id|>

Hello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>

Hi there.<|eot_id|><|start_header_id|>user<|end_header_id|>

How are you? ü 中文<|eot_id|><|start_header_id|>assistant<|end_header_id|>

<|python_tag|>brave_search.call(query="weather")<|eom_id|><|start_header_id|>ipython<|end_header_id|>

{"result": [1, 2]}<|eot_id|><|start_header_id|>assistant<|end_header_id|>

)J");
}

TEST(JinjaTemplates, Llama31NoUserForTools) {
  // jinja2: TemplateError: Cannot put tools in the first user message when there's no first user
  // message!
  EXPECT_NE(
      error_of(
          kLlama31,
          R"J({"bos_token": "", "messages": [{"role": "system", "content": "s"}], "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city.", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}, "days": {"type": "integer", "minimum": 1, "maximum": 7.5}}, "required": ["city"]}}}]})J")
          .find(
              R"J(Cannot put tools in the first user message when there's no first user message!)J"),
      std::string::npos);
}

TEST(JinjaTemplates, Llama31TwoToolCalls) {
  // jinja2: TemplateError: This model only supports single tool-calls at once!
  EXPECT_NE(
      error_of(
          kLlama31,
          R"J({"bos_token": "", "messages": [{"role": "user", "content": "u"}, {"role": "assistant", "tool_calls": [{"function": {"name": "a", "arguments": {}}}, {"function": {"name": "b", "arguments": {}}}]}], "date_string": "x"})J")
          .find(R"J(This model only supports single tool-calls at once!)J"),
      std::string::npos);
}

TEST(JinjaTemplates, MistralAlternating) {
  EXPECT_EQ(
      render(
          kMistral,
          R"J({"bos_token": "<s>", "eos_token": "</s>", "messages": [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi there."}, {"role": "user", "content": "How are you? ü 中文"}]})J"),
      R"J(<s>[INST] Hello! [/INST]Hi there.</s>[INST] How are you? ü 中文 [/INST])J");
}

TEST(JinjaTemplates, MistralNotAlternating) {
  // jinja2: TemplateError: Conversation roles must alternate user/assistant/user/assistant/...
  EXPECT_NE(
      error_of(
          kMistral,
          R"J({"bos_token": "<s>", "eos_token": "</s>", "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]})J")
          .find(R"J(Conversation roles must alternate user/assistant/user/assistant/...)J"),
      std::string::npos);
}

TEST(JinjaTemplates, MistralSystemRole) {
  // jinja2: TemplateError: Conversation roles must alternate user/assistant/user/assistant/...
  EXPECT_NE(
      error_of(
          kMistral,
          R"J({"bos_token": "<s>", "eos_token": "</s>", "messages": [{"role": "system", "content": "a"}]})J")
          .find(R"J(Conversation roles must alternate user/assistant/user/assistant/...)J"),
      std::string::npos);
}

TEST(JinjaTemplates, GemmaRoles) {
  EXPECT_EQ(
      render(
          kGemma,
          R"J({"bos_token": "<bos>", "messages": [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi there."}, {"role": "user", "content": "How are you? ü 中文"}], "add_generation_prompt": true})J"),
      R"J(<bos><start_of_turn>user
Hello!<end_of_turn>
<start_of_turn>model
Hi there.<end_of_turn>
<start_of_turn>user
How are you? ü 中文<end_of_turn>
<start_of_turn>model
)J");
}

TEST(JinjaTemplates, GemmaSystemRejected) {
  // jinja2: TemplateError: System role not supported
  EXPECT_NE(
      error_of(
          kGemma,
          R"J({"bos_token": "<bos>", "messages": [{"role": "system", "content": "  You are terse.\n"}, {"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi there."}, {"role": "user", "content": "How are you? ü 中文"}], "add_generation_prompt": true})J")
          .find(R"J(System role not supported)J"),
      std::string::npos);
}

TEST(JinjaTemplates, Phi3) {
  EXPECT_EQ(
      render(
          kPhi3,
          R"J({"eos_token": "<|endoftext|>", "messages": [{"role": "system", "content": "  You are terse.\n"}, {"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi there."}, {"role": "user", "content": "How are you? ü 中文"}], "add_generation_prompt": false})J"),
      R"J(<|system|>
  You are terse.
<|end|>
<|user|>
Hello!<|end|>
<|assistant|>
Hi there.<|end|>
<|user|>
How are you? ü 中文<|end|>
<|endoftext|>)J");
}

TEST(JinjaTemplates, Phi3GenerationPrompt) {
  EXPECT_EQ(
      render(
          kPhi3,
          R"J({"eos_token": "<|endoftext|>", "messages": [{"role": "system", "content": "  You are terse.\n"}, {"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi there."}, {"role": "user", "content": "How are you? ü 中文"}], "add_generation_prompt": true})J"),
      R"J(<|system|>
  You are terse.
<|end|>
<|user|>
Hello!<|end|>
<|assistant|>
Hi there.<|end|>
<|user|>
How are you? ü 中文<|end|>
<|assistant|>
)J");
}

TEST(JinjaTemplates, ChatML) {
  EXPECT_EQ(
      render(
          kChatML,
          R"J({"messages": [{"role": "system", "content": "  You are terse.\n"}, {"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi there."}, {"role": "user", "content": "How are you? ü 中文"}], "add_generation_prompt": true})J"),
      R"J(<|im_start|>system
  You are terse.
<|im_end|>
<|im_start|>user
Hello!<|im_end|>
<|im_start|>assistant
Hi there.<|im_end|>
<|im_start|>user
How are you? ü 中文<|im_end|>
<|im_start|>assistant
)J");
}

TEST(JinjaTemplates, DeepSeekThinkSplit) {
  EXPECT_EQ(
      render(
          kDeepSeek,
          R"J({"bos_token": "<｜begin▁of▁sentence｜>", "messages": [{"role": "system", "content": "S1"}, {"role": "system", "content": "S2"}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nA"}, {"role": "user", "content": "Q2"}], "add_generation_prompt": true})J"),
      R"J(<｜begin▁of▁sentence｜>S1

S2<｜User｜>Q<｜Assistant｜>

A<｜end▁of▁sentence｜><｜User｜>Q2<｜Assistant｜><think>
)J");
}

TEST(JinjaTemplates, DeepSeekTools) {
  EXPECT_EQ(
      render(
          kDeepSeek,
          R"J({"bos_token": "<｜begin▁of▁sentence｜>", "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": null, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}, {"type": "function", "function": {"name": "g", "arguments": "{}"}}]}, {"role": "tool", "content": "r1"}, {"role": "tool", "content": "r2"}, {"role": "assistant", "content": "done"}]})J"),
      R"J(<｜begin▁of▁sentence｜><｜User｜>Q<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>f
```json
{"x": 1}
```<｜tool▁call▁end｜>
<｜tool▁call▁begin｜>function<｜tool▁sep｜>g
```json
{}
```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>r1<｜tool▁output▁end｜><｜tool▁output▁begin｜>r2<｜tool▁output▁end｜><｜tool▁outputs▁end｜>done<｜end▁of▁sentence｜>)J");
}

// The limits that keep an untrusted template from hanging or exhausting the process.
TEST(JinjaLimits, LoopStepsBounded) {
  const std::string e =
      error_of("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
  EXPECT_NE(e.find("template runs too long"), std::string::npos) << e;
}

TEST(JinjaLimits, OutputSizeBounded) {
  const std::string e =
      error_of("{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}");
  EXPECT_NE(e.find("output too long"), std::string::npos) << e;
}

TEST(JinjaLimits, StringSizeBounded) {
  EXPECT_NE(error_of("{{ 'x' * 100000000000 }}").find("string too long"), std::string::npos);
  EXPECT_NE(error_of("{% set s = 'ab' * 1000000 %}{{ s|replace('a', s) }}").find("string too long"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 'a'.center(100000000000) }}").find("string too long"), std::string::npos);
}

TEST(JinjaLimits, StringDoublingBounded) {
  const std::string e = error_of(
      "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}"
      "{% endfor %}");
  EXPECT_NE(e.find("string too long"), std::string::npos) << e;
}

TEST(JinjaLimits, MacroRecursionBounded) {
  const std::string e = error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_NE(e.find("nested too deeply"), std::string::npos) << e;
}

TEST(JinjaLimits, ValueNestingBounded) {
  const std::string e = error_of(
      "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}"
      "{% endfor %}{{ ns.l }}");
  EXPECT_NE(e.find("nested too deeply"), std::string::npos) << e;
}

TEST(JinjaLimits, ParserNestingBounded) {
  EXPECT_THROW(jinja::Template("{{ " + std::string(5000, '(') + " }}"), Error);
  EXPECT_THROW(jinja::Template("{{ " + std::string(5000, '[') + " }}"), Error);
  EXPECT_THROW(jinja::Template("{{ not " + std::string(2000, '-') + "x }}"), Error);
  std::string chain = "{{ 1";
  for (int i = 0; i < 5000; ++i) chain += " + 1";
  EXPECT_THROW(jinja::Template(chain + " }}"), Error);
  std::string blocks;
  for (int i = 0; i < 500; ++i) blocks += "{% if x %}";
  EXPECT_THROW(jinja::Template{blocks}, Error);
}

TEST(JinjaLimits, IntegerOverflowIsAnError) {
  EXPECT_NE(error_of("{{ 2 ** 64 }}").find("integer overflow"), std::string::npos);
  EXPECT_NE(error_of("{{ 9223372036854775807 + 1 }}").find("integer overflow"), std::string::npos);
}

TEST(JinjaLimits, NamespaceCyclesAreFreed) {
  // A namespace holding itself: a reference cycle the renderer breaks when it finishes (ASan's
  // leak checker would report it otherwise).
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.self = ns %}{% set ns.l = [ns] %}ok"),
            "ok");
}

TEST(JinjaRender, ContextKeepsOrderAndNumberTypes) {
  EXPECT_EQ(
      render("{{ t|tojson }} {{ t.i }} {{ t.f }} {{ t.i / 2 }} {{ t.big }}",
             R"({"t": {"z": 1, "a": 2, "i": 3, "f": 3.0, "big": 18446744073709551615}})"),
      R"({"z": 1, "a": 2, "i": 3, "f": 3.0, "big": 1.8446744073709552e+19} 3 3.0 1.5 1.8446744073709552e+19)");
}

TEST(JinjaRender, StrftimeNow) {
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y') }}"), "STRFTIME[%d %b %Y]");
  // Without a callback: the local time now, through strftime.
  const std::string year =
      jinja::Template("{{ strftime_now('%Y') }}").render(ordered_json::object());
  ASSERT_EQ(year.size(), 4u);
  EXPECT_GE(year, "2024");
}

TEST(JinjaRender, ThreadSafe) {
  const jinja::Template tpl(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + m|length %}"
      "{% endfor %}{{ ns.n }}");
  const ordered_json ctx = ordered_json::parse(R"({"messages": ["ab", "cde", "f"]})");
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i)
        if (tpl.render(ctx) != "6") ++bad;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(JinjaRender, MoveAndReuse) {
  jinja::Template a("{{ x }}");
  jinja::Template b = std::move(a);
  EXPECT_EQ(b.render(ordered_json::parse(R"({"x": 1})")), "1");
  EXPECT_EQ(b.render(ordered_json::parse(R"({"x": "two"})")), "two");
  EXPECT_EQ(b.render(ordered_json()), "");  // a null context: no variables
  EXPECT_THROW(b.render(ordered_json::array()), Error);
}

}  // namespace
}  // namespace flashrt
