// The parsed form of a chat template: expression and statement trees, immutable after parsing so
// that one Template renders on many threads at once.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/jinja_value.h"

namespace flashrt::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Op : uint8_t {
    Const,   // value
    Name,    // name
    List,    // args: items
    Tuple,   // args: items
    Dict,    // args: key, value, key, value...
    Attr,    // args[0].name
    Item,    // args[0][args[1]]; args[1] may be a Slice
    Slice,   // args: start, stop, step (each may be null)
    Call,    // args[0](args[1:], kwargs)
    Filter,  // args[0]|name(args[1:], kwargs); args[0] null: the body of a filter block
    Test,    // args[0] is [not] name(args[1:], kwargs)
    Neg,
    Pos,
    Not,
    And,
    Or,
    Binary,   // args[0] name args[1]: + - * / // % ** ~
    Compare,  // args[0] ops[0] args[1] ops[1] args[2]...: == != < <= > >= in notin
    Cond,     // args[0] if args[1] else args[2] (args[2] may be null)
  };
  Op op;
  int line = 0;
  int depth = 1;         // of the tree below, bounded by the parser
  bool negated = false;  // Test
  Value value;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::string> kwnames;  // Call, Filter, Test: keyword names
  std::vector<ExprPtr> kwargs;
  std::vector<std::string> ops;  // Compare
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum class Type : uint8_t {
    Data,      // text
    Print,     // {{ expr }}
    If,        // conds[i] -> bodies[i]; else: bodies[conds.size()] when present
    For,       // for targets in expr [if cond]: bodies[0] [else bodies[1]]
    Set,       // set targets = expr, or set targets[0].attr = expr
    SetBlock,  // set targets[0] [| filter] %} bodies[0]
    Macro,     // macro name(targets with defaults) %} bodies[0]
    Break,
    Continue,
    FilterBlock,  // filter (expr, its innermost subject null) %} bodies[0]
    With,         // with targets = conds... %} bodies[0]
    Scope,        // bodies[0], rendered in place (generation)
  };
  Type type;
  int line = 0;
  std::string text;
  std::string name;  // Macro name
  std::string attr;  // Set: the namespace attribute
  ExprPtr expr;      // Print, Set, For's iterable, SetBlock/FilterBlock's filter
  ExprPtr cond;      // For's filter
  std::vector<std::string> targets;
  bool unpack = false;         // Set/For: the target is a tuple
  std::vector<ExprPtr> conds;  // If: the tests; Macro: the defaults (null when none); With: values
  std::vector<Body> bodies;
  // Per frame this statement opens (For: body, else; the others: their body): the names that
  // start out undefined there (see analyze_frames).
  std::vector<std::vector<std::string>> undefined;
};

struct Program {
  Body body;
  std::vector<std::string> undefined;  // the root frame's
};

std::shared_ptr<Program> parse(std::string_view source);

// jinja2 compiles each frame (the template, a loop body, a macro, a block assignment...) to a
// Python function whose variables are resolved at compile time: a name the frame assigns before
// it ever reads it (and not only in some branches of an if), that no enclosing frame mentions,
// starts out undefined in that frame, even when the context has it; a loop or macro written
// before the assignment sees it undefined. This pass finds those names per frame, as
// jinja2/idtracking.py does; the evaluator binds them to Undefined when it enters the frame.
void analyze_frames(Program* program);

}  // namespace flashrt::jinja
