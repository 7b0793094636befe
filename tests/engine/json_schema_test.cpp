// JSON Schema -> GBNF: documents produced by random walks through the grammar (byte by byte, and
// token by token with the real 8192-token vocabulary) parse and validate against the schema;
// hand-written documents are accepted or refused as the schema says; unsupported keywords and
// malformed schemas are errors naming the keyword and its JSON pointer.
#include "engine/json_schema.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "engine/grammar.h"
#include "engine/grammar_matcher.h"
#include "engine/json_validate.h"
#include "engine/token_mask.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"

namespace flashrt {
namespace {

using test::ojson;

const char* kSchemas[] = {
    // Nested objects, string lengths, a uuid, integer bounds, an array of an enum.
    R"({"type":"object","properties":{
        "name":{"type":"string","minLength":1,"maxLength":12},
        "age":{"type":"integer","minimum":0,"maximum":150},
        "id":{"type":"string","format":"uuid"},
        "address":{"type":"object","properties":{"city":{"type":"string"},
                   "zip":{"type":"string","minLength":5,"maxLength":5}},"required":["city"]},
        "tags":{"type":"array","items":{"enum":["a","b","c"]},"minItems":1,"maxItems":3}},
      "required":["name","age"]})",
    // $defs/$ref, const, anyOf with null, a type list, number, boolean, minItems.
    R"({"$defs":{"point":{"type":"object","properties":{"x":{"type":"number"},
                 "y":{"type":"number"}},"required":["x","y"],"additionalProperties":false}},
      "type":"object","properties":{"kind":{"const":"shape"},
        "points":{"type":"array","items":{"$ref":"#/$defs/point"},"minItems":2},
        "closed":{"type":"boolean"},"label":{"anyOf":[{"type":"string"},{"type":"null"}]},
        "weight":{"type":["number","null"]}},
      "required":["kind","points","closed"]})",
    // Recursion through "#", negative integer bounds.
    R"({"type":"object","properties":{"value":{"type":"integer","minimum":-20,"maximum":20},
        "children":{"type":"array","items":{"$ref":"#"},"maxItems":2}},"required":["value"]})",
    // Extra members with a schema, a date.
    R"({"type":"object","properties":{"id":{"type":"integer"},"when":{"type":"string",
        "format":"date"}},"required":["id"],"additionalProperties":{"type":"integer"}})",
    // A tuple with items after it.
    R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"},{"type":"boolean"}],
      "items":{"type":"null"},"maxItems":5})",
    // allOf of objects (merged), definitions.
    R"({"definitions":{"b":{"properties":{"b":{"type":"string","maxLength":4}},"required":["b"]}},
      "allOf":[{"type":"object","properties":{"a":{"type":"integer","exclusiveMinimum":5}},
      "required":["a"]},{"$ref":"#/definitions/b"}]})",
    // A top-level enum of mixed values, oneOf of disjoint types, date-time, any value.
    R"({"enum":["red",1,null,{"x":[1,2]},true]})",
    R"({"oneOf":[{"type":"integer","maximum":-3},{"type":"string","maxLength":3}]})",
    R"({"type":"object","properties":{"at":{"type":"string","format":"date-time"},
        "t":{"type":"string","format":"time"},"any":{},"n":{"type":"number","minimum":0}},
        "required":["at","any","n"]})",
    R"({"type":"object"})",
    R"({"type":"array","items":{"type":"array","items":{"type":"integer"},"maxItems":2},
        "minItems":2,"maxItems":4})",
};

// Tokens, as bytes: every single byte, then an end token (id 256).
std::vector<std::string> byte_vocab() {
  std::vector<std::string> v;
  for (int b = 0; b < 256; ++b) v.push_back(std::string(1, static_cast<char>(b)));
  v.push_back("<end>");
  return v;
}

// A random document: uniform over the allowed tokens at first; after `soft` steps closing
// characters first, then anything that opens nothing, so documents finish.
std::string random_walk(TokenMasker& masker, const std::vector<std::string>& vocab, int32_t end,
                        const std::shared_ptr<const Grammar>& g, std::mt19937& rng, int soft) {
  GrammarMatcher m(g);
  std::string out;
  std::vector<uint64_t> bits;
  for (int step = 0; step < 5000; ++step) {
    masker.fill(m, bits);
    std::vector<int32_t> allowed, closing, plain;
    for (int32_t id = 0; id < masker.vocab_size(); ++id) {
      if (!TokenMasker::allowed(bits, id) || id == end) continue;
      allowed.push_back(id);
      const std::string& t = vocab[static_cast<size_t>(id)];
      if (t.find_first_not_of("\"}]") == std::string::npos) closing.push_back(id);
      if (t.find_first_of("[{, \t\n") == std::string::npos &&
          std::all_of(t.begin(), t.end(), [](char c) { return c > 0x20 && c < 0x7F; }))
        plain.push_back(id);
    }
    const bool can_end = TokenMasker::allowed(bits, end);
    EXPECT_EQ(can_end, m.can_end());
    if (can_end && (allowed.empty() || step > soft || rng() % 16 == 0)) return out;
    if (allowed.empty()) {
      ADD_FAILURE() << "dead end after " << out;
      return out;
    }
    const auto& pool = step <= soft       ? allowed
                       : !closing.empty() ? closing
                       : !plain.empty()   ? plain
                                          : allowed;
    const int32_t id = pool[rng() % pool.size()];
    GrammarMatcher copy = m;
    EXPECT_TRUE(masker.accept_token(m, id));
    EXPECT_TRUE(copy.accept_bytes(vocab[static_cast<size_t>(id)]));
    EXPECT_TRUE(copy == m);
    out += vocab[static_cast<size_t>(id)];
  }
  ADD_FAILURE() << "no end after 5000 steps: " << out.substr(0, 200);
  return out;
}

void check_document(const std::string& doc, const ojson& schema, const std::string& label) {
  ojson parsed;
  try {
    parsed = ojson::parse(doc);
  } catch (const std::exception& e) {
    ADD_FAILURE() << label << ": not JSON (" << e.what() << "): " << doc;
    return;
  }
  EXPECT_EQ(test::validate(parsed, schema), "") << label << ": " << doc;
}

TEST(JsonSchema, RandomWalksByByteAreValid) {
  const std::vector<std::string> vocab = byte_vocab();
  TokenMasker masker(vocab, {}, {256});
  std::mt19937 rng(1234);
  for (size_t i = 0; i < std::size(kSchemas); ++i) {
    const ojson schema = ojson::parse(kSchemas[i]);
    const auto g = Grammar::parse(json_schema_to_gbnf(schema));
    for (int n = 0; n < 30; ++n) {
      const std::string doc = random_walk(masker, vocab, 256, g, rng, 40 + n * 4);
      check_document(doc, schema, "schema " + std::to_string(i));
    }
  }
}

TEST(JsonSchema, RandomWalksByTokenAreValid) {
  const Tokenizer tok =
      Tokenizer::from_hf_dir_or_file(shared_dir() + "/models/pycoder-hybrid-12m/tokenizer.json");
  std::vector<std::string> vocab;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) vocab.emplace_back(tok.token_bytes(id));
  const int32_t end = tok.stop_ids().at(0);
  TokenMasker masker(tok, {end});
  std::mt19937 rng(99);
  for (size_t i = 0; i < std::size(kSchemas); ++i) {
    const ojson schema = ojson::parse(kSchemas[i]);
    const auto g = Grammar::parse(json_schema_to_gbnf(schema));
    for (int n = 0; n < 6; ++n)
      check_document(random_walk(masker, vocab, end, g, rng, 20 + n * 5), schema,
                     "schema " + std::to_string(i));
  }
  const auto object = Grammar::parse(json_object_gbnf());
  for (int n = 0; n < 10; ++n) {
    const std::string doc = random_walk(masker, vocab, end, object, rng, 30);
    check_document(doc, ojson::parse(R"({"type":"object"})"), "json_object");
  }
}

bool accepts(const std::string& gbnf, const std::string& doc) {
  GrammarMatcher m(Grammar::parse(gbnf));
  return m.accept_bytes(doc) && m.can_end();
}

TEST(JsonSchema, HandWrittenDocuments) {
  const std::string person = json_schema_to_gbnf(ojson::parse(kSchemas[0]));
  EXPECT_TRUE(accepts(person, R"({"name":"Ann","age":31})"));
  EXPECT_TRUE(
      accepts(person, "{\n  \"name\": \"Bo\",\n  \"age\": 150,\n  \"tags\": [\"a\", \"c\"]\n}\n"));
  EXPECT_TRUE(accepts(person, R"({"name":"Zoë","age":0,"address":{"city":"Oslo","zip":"01234"}})"));
  EXPECT_FALSE(accepts(person, R"({"age":31,"name":"Ann"})"));   // schema order
  EXPECT_FALSE(accepts(person, R"({"name":"Ann"})"));            // age is required
  EXPECT_FALSE(accepts(person, R"({"name":"","age":3})"));       // minLength
  EXPECT_FALSE(accepts(person, R"({"name":"Ann","age":151})"));  // maximum
  EXPECT_FALSE(accepts(person, R"({"name":"Ann","age":-1})"));
  EXPECT_FALSE(accepts(person, R"({"name":"Ann","age":1,"tags":[]})"));  // minItems
  EXPECT_FALSE(accepts(person, R"({"name":"Ann","age":1,"tags":["d"]})"));
  EXPECT_FALSE(accepts(person, R"({"name":"Ann","age":1,"other":1})"));  // no extra members
  EXPECT_FALSE(accepts(person, R"({"name":"Ann","age":1})" + std::string(21, ' ')));  // ws bound
  const std::string extra = json_schema_to_gbnf(ojson::parse(kSchemas[3]));
  EXPECT_TRUE(accepts(extra, R"({"id":1,"when":"2024-02-29","i":5,"idx":6,"":7})"));
  EXPECT_FALSE(accepts(extra, R"({"id":1,"id":2})"));  // a declared name is not an extra one
  EXPECT_FALSE(accepts(extra, R"({"id":1,"x":"s"})"));
  EXPECT_FALSE(accepts(extra, R"({"id":1,"when":"2024-13-01"})"));
  const std::string object = json_object_gbnf();
  EXPECT_TRUE(accepts(object, R"({"a":[1,2.5e-3,{"b":null}],"c":"\u00e9\n","d":true})"));
  EXPECT_FALSE(accepts(object, "[1]"));
  EXPECT_FALSE(accepts(object, R"({"a":01})"));
  EXPECT_FALSE(accepts(object, R"({"a":"\ud800"})"));  // a lone surrogate escape
  EXPECT_FALSE(accepts(object, "{\"a\":\"\x01\"}"));
}

TEST(JsonSchema, IntegerBoundsAreExact) {
  const struct {
    const char* schema;
    long lo, hi;
  } cases[] = {
      {R"({"type":"integer","minimum":-57,"maximum":1234})", -57, 1234},
      {R"({"type":"integer","minimum":7})", 7, 1000000},
      {R"({"type":"integer","maximum":-12})", -1000000, -12},
      {R"({"type":"integer","exclusiveMinimum":-1,"exclusiveMaximum":100})", 0, 99},
      {R"({"type":"integer","minimum":1.5,"maximum":99.9})", 2, 99},
      {R"({"type":"integer","minimum":100,"maximum":100})", 100, 100},
  };
  for (const auto& c : cases) {
    const auto g = Grammar::parse(json_schema_to_gbnf(ojson::parse(c.schema)));
    for (long v = -1500; v <= 1500; ++v) {
      GrammarMatcher m(g);
      EXPECT_EQ(m.accept_bytes(std::to_string(v)) && m.can_end(), v >= c.lo && v <= c.hi)
          << c.schema << " " << v;
    }
    GrammarMatcher big(g);
    EXPECT_EQ(big.accept_bytes("999999") && big.can_end(), 999999 >= c.lo && 999999 <= c.hi);
  }
}

std::string schema_error(const std::string& text, bool strict = false) {
  try {
    (void)json_schema_to_gbnf(ojson::parse(text), JsonSchemaOptions{strict});
  } catch (const Error& e) {
    return e.what();
  }
  return "(converted)";
}

TEST(JsonSchema, RefusesWhatItCannotHonour) {
  const std::string cases[][2] = {
      {R"({"type":"string","pattern":"^a"})", R"(at #: "pattern" is not supported)"},
      {R"({"properties":{"a":{"not":{}}}})", R"(at #/properties/a: "not" is not supported)"},
      {R"({"items":{"multipleOf":2}})", R"(at #/items: "multipleOf")"},
      {R"({"properties":{"a/b":{"if":{}}}})", R"(at #/properties/a~1b: "if")"},
      {R"({"type":"array","uniqueItems":true})", "uniqueItems"},
      {R"({"$ref":"other.json#/x"})", "only local"},
      {R"({"$ref":"#/$defs/missing"})", "does not resolve"},
      {R"({"$ref":"#"})", "recursion never reads input"},
      {R"({"anyOf":[{"$ref":"#"},{"type":"null"}]})", "recursion never reads input"},
      {R"({"type":"number","maximum":3})", R"("maximum" on a number)"},
      {R"({"type":"strin"})", R"(at #/type: unknown type "strin")"},
      {R"({"type":"integer","minimum":"a"})", "must be a number"},
      {R"({"type":"integer","minimum":5,"maximum":4})", "no integer"},
      {R"({"minItems":-1})", R"(at #/minItems: "minItems" must be a non-negative integer)"},
      {R"({"minItems":3,"maxItems":2})", "above"},
      {R"({"properties":[]})", R"(at #/properties: "properties" must be an object)"},
      {R"({"required":[1]})", "array of strings"},
      {R"({"enum":[]})", "non-empty array"},
      {R"([1])", "must be an object or a boolean"},
      {R"(false)", "matches nothing"},
      {R"({"properties":{"a":false}})", R"(at #/properties/a: schema false)"},
      {R"({"properties":{"a":{}},"additionalProperties":false,"required":["b"]})",
       R"(required property "b" is not allowed)"},
      {R"({"type":"string","anyOf":[{"maxLength":2}]})", R"(keywords next to "anyOf")"},
  };
  for (const auto& [schema, want] : cases) {
    const std::string got = schema_error(schema);
    EXPECT_NE(got.find(want), std::string::npos) << schema << "\n  got: " << got;
  }
  // Unknown keywords and formats: ignored, or errors when strict.
  EXPECT_EQ(schema_error(R"({"type":"string","format":"email","x-extra":1})"), "(converted)");
  EXPECT_NE(schema_error(R"({"type":"string","format":"email"})", true)
                .find(R"(at #/format: unknown format "email")"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"properties":{"a":{"foo":1}}})", true)
                .find(R"(at #/properties/a: unknown keyword "foo")"),
            std::string::npos);
  // parse_json_schema: text in, the same checks.
  EXPECT_THROW(parse_json_schema("{not json"), Error);
  EXPECT_THROW(parse_json_schema(R"({"type":"string","pattern":"x"})"), Error);
  EXPECT_EQ(parse_json_schema(R"({"type":"string"})")["type"], "string");
}

}  // namespace
}  // namespace flashrt
