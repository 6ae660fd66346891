#include "engine/bulk.h"

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/document_reader.h"
#include "engine/error.h"
#include "engine/java_format.h"
#include "simdjson.h"

namespace clout {

std::string BulkResponseJson(const std::vector<BulkItem>& items,
                             const MutationResult& result,
                             int64_t took_millis) {
  std::string out;
  out.reserve(64 + items.size() * 200);
  absl::StrAppend(&out, "{\"errors\":", result.errors() ? "true" : "false",
                  ",\"took\":", took_millis, ",\"items\":[");
  for (size_t i = 0; i < items.size() && i < result.items.size(); ++i) {
    const BulkItem& item = items[i];
    const ItemResult& outcome = result.items[i];
    if (i > 0) out.push_back(',');
    out.push_back('{');
    AppendJsonString(item.action, &out);
    out.append(":{\"_index\":");
    AppendJsonString(item.index, &out);
    out.append(",\"_id\":");
    AppendJsonString(item.id, &out);
    if (outcome.outcome == MutationOutcome::kError) {
      const EsErrorInfo error = EsErrorOf(outcome.error);
      absl::StrAppend(&out, ",\"status\":", outcome.status,
                      ",\"error\":{\"type\":");
      AppendJsonString(error.type, &out);
      out.append(",\"reason\":");
      AppendJsonString(error.reason, &out);
      out.append("}}}");
      continue;
    }
    absl::StrAppend(&out, ",\"_version\":", outcome.version, ",\"result\":\"",
                    MutationOutcomeName(outcome.outcome),
                    "\",\"_shards\":{\"total\":1,\"successful\":1,\"failed\":0}"
                    ",\"_seq_no\":",
                    outcome.seq_no, ",\"_primary_term\":1,\"status\":",
                    outcome.status, "}}");
  }
  out.append("]}");
  return out;
}

// _bulk requests.

namespace {

namespace od = simdjson::ondemand;
using loader_internal::AtEnd;
using loader_internal::DocError;
using loader_internal::DocumentReader;
using loader_internal::FieldKey;
using loader_internal::kPadding;
using loader_internal::ToAbsl;
using simdjson::error_code;

absl::Status MalformedAction(size_t line, absl::string_view detail) {
  return EsError(400, "illegal_argument_exception",
                 absl::StrCat("Malformed action/metadata line [", line, "], ",
                              detail));
}

// The action metadata parameters Elasticsearch's bulk parser knows; Clout
// reads `_index`, `_id` and `op_type` and accepts the rest unused.
bool KnownActionParameter(std::string_view key) {
  static constexpr std::string_view kKnown[] = {
      "_index",          "_id",           "routing",
      "op_type",         "version",       "version_type",
      "if_seq_no",       "if_primary_term", "retry_on_conflict",
      "pipeline",        "_source",       "require_alias",
      "require_data_stream", "dynamic_templates", "list_executed_pipelines"};
  for (std::string_view known : kKnown) {
    if (key == known) return true;
  }
  return false;
}

// One parsed action line.
struct BulkAction {
  std::string name;  // index, create, delete, update
  std::string index;
  std::string id;
  bool has_id = false;
  bool create = false;  // create, or index with op_type create
};

absl::Status ParseActionLine(od::parser& parser, const char* data,
                             size_t length, size_t capacity, size_t line,
                             BulkAction* action) {
  auto syntax = [&](error_code e) {
    return MalformedAction(line, absl::StrCat("malformed JSON: ",
                                              simdjson::error_message(e)));
  };
  od::document doc;
  if (auto e = parser.iterate(data, length, capacity).get(doc)) return syntax(e);
  od::json_type type;
  if (auto e = doc.type().get(type)) return syntax(e);
  if (type != od::json_type::object) {
    return MalformedAction(
        line, absl::StrCat("expected START_OBJECT but found [", TokenName(type), "]"));
  }
  od::object object;
  if (auto e = doc.get_object().get(object)) return syntax(e);
  size_t fields = 0;
  for (auto field_result : object) {
    od::field field;
    if (auto e = std::move(field_result).get(field)) return syntax(e);
    if (++fields > 1) {
      return MalformedAction(line, "expected END_OBJECT but found [FIELD_NAME]");
    }
    std::string_view key;
    if (auto e = FieldKey(field, &key)) return syntax(e);
    if (key != "index" && key != "create" && key != "delete" && key != "update") {
      return MalformedAction(
          line, absl::StrCat("expected field [create], [delete], [index] or "
                             "[update] but found [", ToAbsl(key), "]"));
    }
    action->name = std::string(key);
    action->create = key == "create";
    od::value meta_value = field.value();
    od::json_type meta_type;
    if (auto e = meta_value.type().get(meta_type)) return syntax(e);
    if (meta_type != od::json_type::object) {
      return MalformedAction(
          line, absl::StrCat("expected START_OBJECT or END_OBJECT but found [",
                             TokenName(meta_type), "]"));
    }
    od::object meta;
    if (auto e = meta_value.get_object().get(meta)) return syntax(e);
    for (auto meta_result : meta) {
      od::field param;
      if (auto e = std::move(meta_result).get(param)) return syntax(e);
      std::string_view name;
      if (auto e = FieldKey(param, &name)) return syntax(e);
      std::string param_name(name);  // the key's bytes may be reused
      od::value value = param.value();
      od::json_type value_type;
      if (auto e = value.type().get(value_type)) return syntax(e);
      if (!KnownActionParameter(param_name)) {
        return EsError(400, "illegal_argument_exception",
                       absl::StrCat("Action/metadata line [", line,
                                    "] contains an unknown parameter [",
                                    param_name, "]"));
      }
      const bool object_allowed =
          param_name == "_source" || param_name == "dynamic_templates";
      if ((value_type == od::json_type::array ||
           value_type == od::json_type::object) && !object_allowed) {
        return MalformedAction(
            line, absl::StrCat("expected a simple value for field [", param_name,
                               "] but found [", TokenName(value_type), "]"));
      }
      if (value_type == od::json_type::null) continue;
      std::string text;
      if (value_type == od::json_type::string) {
        std::string_view sv;
        if (auto e = value.get_string().get(sv)) return syntax(e);
        text = std::string(sv);
      } else if (value_type == od::json_type::array ||
                 value_type == od::json_type::object) {
        continue;  // _source or dynamic_templates: not used
      } else {
        text = std::string(absl::StripTrailingAsciiWhitespace(
            ToAbsl(value.raw_json_token())));
      }
      if (param_name == "_index") {
        action->index = std::move(text);
      } else if (param_name == "_id") {
        action->id = std::move(text);
        action->has_id = true;
      } else if (param_name == "op_type") {
        action->create = action->create || text == "create";
      }
    }
  }
  if (fields == 0) {
    return MalformedAction(line, "expected FIELD_NAME but found [END_OBJECT]");
  }
  if (!AtEnd(doc)) {
    return MalformedAction(line,
                           "malformed JSON: content after the end of the line's object");
  }
  return absl::OkStatus();
}

// An id for a document written without one, unique within the process,
// in the shape of Elasticsearch's generated ids (20 URL-safe base64
// characters).
std::string GeneratedId() {
  static std::atomic<uint64_t> counter{0};
  const uint64_t n = counter.fetch_add(1) ^
                     (static_cast<uint64_t>(absl::ToUnixMicros(absl::Now())) << 20);
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string id(20, 'A');
  uint64_t bits = n;
  uint64_t mix = n * 0x9E3779B97F4A7C15ULL;
  for (size_t i = 0; i < id.size(); ++i) {
    id[i] = kAlphabet[(i < 10 ? bits : mix) & 63];
    if (i < 10) bits >>= 6; else mix >>= 6;
  }
  return id;
}

// The index an item answers as `_index` (see BulkItem::index).
std::string ConcreteIndex(absl::string_view index) {
  constexpr absl::string_view kPrefix = ".ml-anomalies-";
  if (index == ".ml-anomalies-shared" ||
      absl::StartsWith(index, ".ml-anomalies-custom-")) {
    return std::string(index);
  }
  if (absl::StartsWith(index, kPrefix)) return ".ml-anomalies-shared";
  return std::string(index);
}

}  // namespace

bool IsResultsIndex(absl::string_view index) {
  constexpr absl::string_view kPrefix = ".ml-anomalies-";
  return absl::StartsWith(index, kPrefix) && index.size() > kPrefix.size();
}

absl::StatusOr<BulkRequest> ParseBulkRequest(absl::string_view body,
                                             const BulkOptions& options) {
  if (body.empty()) {
    return EsError(400, "parse_exception", "request body is required");
  }
  if (body.back() != '\n') {
    return EsError(400, "illegal_argument_exception",
                   "The bulk request must be terminated by a newline [\\n]");
  }
  simdjson::padded_string padded(body.data(), body.size());
  const char* data = padded.data();
  od::parser parser;
  BulkRequest request;
  LoadReport report;
  report.source = "<bulk>";
  DocumentReader reader(&request.batch, &report);
  size_t line = 0;
  size_t pos = 0;
  // The next line's [begin, end), or false at the end of the body.
  auto next_line = [&](size_t* begin, size_t* end) {
    if (pos >= body.size()) return false;
    const size_t newline = body.find('\n', pos);  // the body ends with one
    *begin = pos;
    *end = newline;
    pos = newline + 1;
    ++line;
    return true;
  };
  auto blank = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      if (!absl::ascii_isspace(static_cast<unsigned char>(body[i]))) return false;
    }
    return true;
  };
  auto validation = [](absl::string_view what) {
    return EsError(400, "action_request_validation_exception",
                   absl::StrCat("Validation Failed: 1: ", what, ";"));
  };
  size_t begin = 0;
  size_t end = 0;
  while (next_line(&begin, &end)) {
    if (blank(begin, end)) continue;
    const size_t action_line = line;
    BulkAction action;
    if (absl::Status s = ParseActionLine(parser, data + begin, end - begin,
                                         padded.size() - begin + kPadding,
                                         action_line, &action);
        !s.ok()) {
      return s;
    }
    if (action.index.empty()) action.index = options.default_index;
    if (action.index.empty()) return validation("index is missing");
    BulkItem item{action.name, ConcreteIndex(action.index), action.id};
    const bool served = IsResultsIndex(action.index);
    auto not_served = [&] {
      return EsError(404, "index_not_found_exception",
                     absl::StrCat("no such index [", action.index, "]"));
    };
    absl::Status denied = options.authorize
                              ? options.authorize(action.name, action.index)
                              : absl::OkStatus();
    if (action.name == "delete") {
      if (!action.has_id) return validation("id is missing");
      if (!denied.ok()) {
        request.batch.AddError(std::move(denied));
      } else if (!served) {
        request.batch.AddError(not_served());
      } else if (std::optional<InfluencerResultId> id =
                     ParseInfluencerResultId(action.id)) {
        request.batch.DeleteInfluencer(*id);
      } else {
        request.batch.DeleteOtherResult(action.id);
      }
      request.items.push_back(std::move(item));
      continue;
    }
    size_t doc_begin = 0;
    size_t doc_end = 0;
    if (!next_line(&doc_begin, &doc_end)) {
      return MalformedAction(action_line,
                             absl::StrCat("the [", action.name,
                                          "] action has no document line"));
    }
    if (!denied.ok()) {
      request.batch.AddError(std::move(denied));
      request.items.push_back(std::move(item));
      continue;
    }
    if (action.name == "update") {
      request.batch.AddError(EsError(
          400, "illegal_argument_exception",
          "update actions are not supported for results: send the whole "
          "document with an index action"));
      request.items.push_back(std::move(item));
      continue;
    }
    if (!served) {
      request.batch.AddError(not_served());
      request.items.push_back(std::move(item));
      continue;
    }
    DocError error;
    od::document doc;
    bool ok = false;
    if (auto e = parser.iterate(data + doc_begin, doc_end - doc_begin,
                                padded.size() - doc_begin + kPadding)
                     .get(doc)) {
      DocumentReader::Syntax(e, &error);
    } else {
      od::json_type type;
      od::object object;
      if (auto e = doc.type().get(type)) {
        DocumentReader::Syntax(e, &error);
      } else if (type != od::json_type::object) {
        error.message = absl::StrCat("document is ", JsonTypeName(type),
                                     ", not a JSON object");
      } else if (auto e = doc.get_object().get(object)) {
        DocumentReader::Syntax(e, &error);
      } else {
        ok = reader.Read(object, &error);
        if (ok && !AtEnd(doc)) {
          error.message = "malformed JSON: more than one JSON value on the line";
          ok = false;
        }
      }
    }
    if (!ok) {
      request.batch.AddError(EsError(
          400, "mapper_parsing_exception",
          absl::StrCat("failed to parse document at line [", line, "]: ",
                       error.message)));
      request.items.push_back(std::move(item));
      continue;
    }
    if (reader.pending_is_row()) {
      std::string computed =
          InfluencerDocumentId(reader.pending_job(), reader.pending_row());
      if (action.has_id && action.id != computed) {
        request.batch.AddError(EsError(
            400, "illegal_argument_exception",
            absl::StrCat("[_id] [", action.id, "] does not name the influencer "
                         "result of its document, whose _id is [", computed,
                         "]")));
        request.items.push_back(std::move(item));
        continue;
      }
      item.id = std::move(computed);
      reader.set_create(action.create);
      reader.Accept();
      reader.set_create(false);
    } else {
      const std::string job(reader.pending_job());
      const bool has_job = reader.pending_has_job();
      reader.Accept();  // counts the result type and registers the job
      if (!action.has_id) item.id = GeneratedId();
      request.batch.AddOtherResult(has_job ? job : std::string(), item.id);
    }
    request.items.push_back(std::move(item));
  }
  request.other_results = std::move(report.skipped);
  return request;
}

}  // namespace clout
