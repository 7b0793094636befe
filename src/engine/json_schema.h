// JSON Schema -> GBNF, for response_format json_schema (and json_object): every document the
// grammar produces is valid against the schema; keywords that cannot be honoured are refused.
//
// Supported: type (one or a list), properties, required, additionalProperties (false / true /
// schema; absent means no properties beyond `properties` when there are any, as in llama.cpp; an
// object schema without `properties` takes any members), enum, const, items, prefixItems (and
// draft-4 tuple `items`), minItems, maxItems, anyOf, oneOf (as anyOf: exclusivity is not
// enforced), allOf of object schemas (merged), $ref to any #/... pointer ($defs, definitions,
// recursion included), minLength/maxLength, format date / time / date-time / uuid, integer
// minimum/maximum/exclusiveMinimum/exclusiveMaximum, number minimum 0, boolean, null.
// Annotations (title, description, default, examples, $schema, $id, $comment, ...) are ignored,
// as are unknown keywords and formats unless options.strict.
// Refused with flashrt::Error naming the keyword and its JSON pointer: not, if/then/else,
// pattern, patternProperties, propertyNames, dependencies, contains, multipleOf, uniqueItems,
// unevaluated*, number bounds other than minimum 0, remote $ref, malformed values.
//
// Properties come out in schema order (required ones must appear, optional ones may be left
// out; extra members, where allowed, come last). Whitespace between tokens is bounded (one
// space, or a newline and at most 20 spaces or tabs of indentation per gap, llama.cpp's rule) and
// numbers have at most 19 integer and 18 fraction digits, so a weak model cannot loop forever
// inside them.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace flashrt {

struct JsonSchemaOptions {
  bool strict = false;  // unknown keywords and formats are errors instead of ignored
};

// GBNF whose root is a document valid against `schema` (optionally followed by whitespace).
std::string json_schema_to_gbnf(const nlohmann::ordered_json& schema,
                                const JsonSchemaOptions& options = {});
// A GBNF string literal matching `text` exactly (UTF-8 stays as it is).
std::string gbnf_literal(std::string_view text);
// Any JSON object (response_format json_object).
std::string json_object_gbnf();
// Parses schema text and checks it converts; flashrt::Error when it is not JSON or is refused.
nlohmann::ordered_json parse_json_schema(std::string_view text,
                                         const JsonSchemaOptions& options = {});

}  // namespace flashrt
