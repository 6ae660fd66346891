#include "server/json_filter.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/error.h"
#include "engine/json_out.h"
#include "simdjson.h"

namespace clout {
namespace {

namespace od = simdjson::ondemand;

// A position inside one expression: names[pos] is the next to match.
struct Cursor {
  const FilterPath::Expr* expr;
  size_t pos;
};

// Moves `cursor` over a field called `name`: the cursors that continue below
// it go to *next; returns true when the expression matches the field whole.
bool Step(const Cursor& cursor, absl::string_view name,
          std::vector<Cursor>* next) {
  const std::vector<std::string>& names = cursor.expr->names;
  if (cursor.pos >= names.size()) return false;
  const std::string& want = names[cursor.pos];
  if (want == "**") {
    // Either `**` swallows this level and stays, or it stands for no level.
    next->push_back(cursor);
    if (cursor.pos + 1 == names.size()) return true;
    return Step(Cursor{cursor.expr, cursor.pos + 1}, name, next);
  }
  if (!GlobMatch(want, name, /*question_mark=*/false)) return false;
  if (cursor.pos + 1 == names.size()) return true;
  next->push_back(Cursor{cursor.expr, cursor.pos + 1});
  return false;
}

bool StepAll(const std::vector<Cursor>& cursors, absl::string_view name,
             std::vector<Cursor>* next) {
  bool whole = false;
  for (const Cursor& cursor : cursors) whole |= Step(cursor, name, next);
  return whole;
}

// What survives of a value: a scalar's JSON text, or a container's kept
// members (objects) or elements (arrays).
struct Member;
struct Node {
  enum Kind { kScalar, kObject, kArray } kind = kScalar;
  std::string raw;
  std::vector<Member> members;
  std::vector<Node> elements;
};
struct Member {
  std::string key;
  Node value;
};

struct Walk {
  absl::Status error;

  // Returns what is kept of `value`, given that everything is kept
  // (`all`) or only what `includes` reach, minus what `excludes` reach.
  std::optional<Node> Value(od::value value, bool all,
                            const std::vector<Cursor>& includes,
                            const std::vector<Cursor>& excludes) {
    od::json_type type;
    if (Fail(value.type().get(type))) return std::nullopt;
    Node node;
    if (type == od::json_type::object) {
      node.kind = Node::kObject;
      od::object object;
      if (Fail(value.get_object().get(object))) return std::nullopt;
      bool was_empty = true;
      for (auto field : object) {
        was_empty = false;
        std::string_view std_key;
        if (Fail(field.unescaped_key().get(std_key))) return std::nullopt;
        const absl::string_view key(std_key.data(), std_key.size());
        std::vector<Cursor> next_excludes;
        if (StepAll(excludes, key, &next_excludes)) continue;
        std::vector<Cursor> next_includes;
        const bool child_all = all || StepAll(includes, key, &next_includes);
        if (!child_all && next_includes.empty()) continue;
        od::value child;
        if (Fail(field.value().get(child))) return std::nullopt;
        std::optional<Node> kept =
            Value(child, child_all, next_includes, next_excludes);
        if (!error.ok()) return std::nullopt;
        if (kept.has_value()) {
          node.members.push_back(Member{std::string(key), *std::move(kept)});
        }
      }
      if (node.members.empty() && !(was_empty && all)) return std::nullopt;
      return node;
    }
    if (type == od::json_type::array) {
      node.kind = Node::kArray;
      od::array array;
      if (Fail(value.get_array().get(array))) return std::nullopt;
      bool was_empty = true;
      for (auto element : array) {
        was_empty = false;
        od::value child;
        if (Fail(element.get(child))) return std::nullopt;
        std::optional<Node> kept = Value(child, all, includes, excludes);
        if (!error.ok()) return std::nullopt;
        if (kept.has_value()) node.elements.push_back(*std::move(kept));
      }
      if (node.elements.empty() && !(was_empty && all)) return std::nullopt;
      return node;
    }
    // A scalar below a partial match is not what the expression named.
    std::string_view std_raw = value.raw_json_token();
    absl::string_view raw(std_raw.data(), std_raw.size());
    if (!all) return std::nullopt;
    node.raw = std::string(absl::StripTrailingAsciiWhitespace(raw));
    return node;
  }

  bool Fail(simdjson::error_code code) {
    if (code == simdjson::SUCCESS) return false;
    if (error.ok()) {
      error = EsError(500, "exception",
                      absl::StrCat("response is not valid JSON: ",
                                   simdjson::error_message(code)));
    }
    return true;
  }
};

void Print(const Node& node, JsonOut& out) {
  switch (node.kind) {
    case Node::kScalar:
      out.Raw(node.raw);
      return;
    case Node::kObject:
      out.BeginObject();
      for (const Member& member : node.members) {
        out.Key(member.key);
        Print(member.value, out);
      }
      out.EndObject();
      return;
    case Node::kArray:
      out.BeginArray();
      for (const Node& element : node.elements) Print(element, out);
      out.EndArray();
      return;
  }
}

}  // namespace

bool GlobMatch(absl::string_view pattern, absl::string_view text,
               bool question_mark) {
  size_t p = 0, t = 0, star = absl::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() &&
               (pattern[p] == text[t] || (question_mark && pattern[p] == '?'))) {
      ++p;
      ++t;
    } else if (star != absl::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

FilterPath FilterPath::Parse(absl::string_view text) {
  FilterPath filter;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    const bool exclude = absl::ConsumePrefix(&part, "-");
    if (part.empty()) continue;
    Expr expr;
    for (absl::string_view name : absl::StrSplit(part, '.')) {
      expr.names.emplace_back(name);
    }
    (exclude ? filter.excludes_ : filter.includes_).push_back(std::move(expr));
  }
  return filter;
}

absl::StatusOr<std::string> ReshapeJson(absl::string_view json,
                                        const FilterPath& filter,
                                        bool pretty) {
  if (filter.empty() && !pretty) return std::string(json);
  simdjson::padded_string padded(json.data(), json.size());
  od::parser parser;
  od::document doc;
  Walk walk;
  if (walk.Fail(parser.iterate(padded).get(doc))) return walk.error;
  std::vector<Cursor> includes, excludes;
  for (const auto& expr : filter.includes()) includes.push_back({&expr, 0});
  for (const auto& expr : filter.excludes()) excludes.push_back({&expr, 0});
  od::value root;
  if (walk.Fail(doc.get_value().get(root))) return walk.error;
  std::optional<Node> kept =
      walk.Value(root, filter.includes().empty(), includes, excludes);
  if (!walk.error.ok()) return walk.error;
  std::string out;
  out.reserve(json.size() + json.size() / 2);
  JsonOut writer(&out, pretty);
  if (kept.has_value()) {
    Print(*kept, writer);
  } else {
    writer.BeginObject();
    writer.EndObject();
  }
  if (pretty) out.push_back('\n');
  return out;
}

}  // namespace clout
