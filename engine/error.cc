#include "engine/error.h"

#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace clout {
namespace {

// The payload holds "<http>\n<type>\n<root type>\n<root reason>"; the outer
// reason is the Status message.
constexpr absl::string_view kPayloadUrl = "clout.dev/es_error";

absl::StatusCode CodeForHttp(int http_status) {
  switch (http_status) {
    case 400: return absl::StatusCode::kInvalidArgument;
    case 401: return absl::StatusCode::kUnauthenticated;
    case 403: return absl::StatusCode::kPermissionDenied;
    case 404: return absl::StatusCode::kNotFound;
    case 413: return absl::StatusCode::kOutOfRange;
    case 429: return absl::StatusCode::kResourceExhausted;
    default: return absl::StatusCode::kInternal;
  }
}

int HttpForCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kResourceExhausted: return 429;
    default: return 500;
  }
}

// The caused_by chain: "<length>:<type><length>:<reason>" per cause,
// outermost first.
constexpr absl::string_view kCausesUrl = "clout.dev/es_caused_by";

void AppendCause(absl::string_view type, absl::string_view reason,
                 std::string* out) {
  absl::StrAppend(out, type.size(), ":", type, reason.size(), ":", reason);
}

std::vector<EsErrorInfo::Cause> DecodeCauses(absl::string_view text) {
  std::vector<EsErrorInfo::Cause> causes;
  auto take = [&text](std::string* out) {
    size_t colon = text.find(':');
    size_t length = 0;
    if (colon == absl::string_view::npos ||
        !absl::SimpleAtoi(text.substr(0, colon), &length) ||
        length > text.size() - colon - 1) {
      return false;
    }
    *out = std::string(text.substr(colon + 1, length));
    text.remove_prefix(colon + 1 + length);
    return true;
  };
  while (!text.empty()) {
    EsErrorInfo::Cause cause;
    if (!take(&cause.type) || !take(&cause.reason)) break;
    causes.push_back(std::move(cause));
  }
  return causes;
}

// Whether Elasticsearch's guessRootCauses looks through an exception of
// type `outer` to its cause of type `inner`: an XContentParseException
// into a nested XContentParseException or ElasticsearchException, an
// ElasticsearchException into an ElasticsearchException. Other causes
// (illegal_argument_exception, number_format_exception, ...) are plain
// Java exceptions, which end the search.
bool IsElasticsearchException(absl::string_view type) {
  // The ElasticsearchException subclasses whose names Clout reports.
  static constexpr absl::string_view kTypes[] = {
      "action_request_validation_exception", "circuit_breaking_exception",
      "cluster_block_exception", "index_not_found_exception",
      "mapper_parsing_exception", "parse_exception", "parsing_exception",
      "query_shard_exception", "resource_not_found_exception",
      "search_phase_execution_exception", "security_exception",
      "status_exception",
      "translog_corrupted_exception", "translog_exception",
      "version_conflict_engine_exception"};
  for (absl::string_view t : kTypes) {
    if (t == type) return true;
  }
  return false;
}
bool LooksThrough(absl::string_view outer, absl::string_view inner) {
  constexpr absl::string_view kXContent = "x_content_parse_exception";
  if (outer == kXContent) {
    return inner == kXContent || IsElasticsearchException(inner);
  }
  return IsElasticsearchException(outer) && IsElasticsearchException(inner);
}

}  // namespace

absl::Status EsErrorCausedBy(int http_status, absl::string_view type,
                             absl::string_view reason,
                             const absl::Status& cause) {
  const EsErrorInfo inner = EsErrorOf(cause);
  std::vector<EsErrorInfo::Cause> causes;
  causes.push_back({inner.type, inner.reason});
  causes.insert(causes.end(), inner.caused_by.begin(), inner.caused_by.end());
  std::string chain;
  absl::string_view root_type = type;
  absl::string_view root_reason = reason;
  bool searching = true;
  for (const EsErrorInfo::Cause& c : causes) {
    AppendCause(c.type, c.reason, &chain);
    if (searching && LooksThrough(root_type, c.type)) {
      root_type = c.type;
      root_reason = c.reason;
    } else {
      searching = false;
    }
  }
  absl::Status status = EsErrorWithRootCause(http_status, type, reason,
                                             root_type, root_reason);
  status.SetPayload(kCausesUrl, absl::Cord(chain));
  return status;
}

absl::Status WithCausesOf(const absl::Status& from, absl::Status to) {
  absl::optional<absl::Cord> causes = from.GetPayload(kCausesUrl);
  if (causes.has_value() && !to.ok()) to.SetPayload(kCausesUrl, *causes);
  return to;
}

absl::Status EsErrorWithRootCause(int http_status, absl::string_view type,
                                  absl::string_view reason,
                                  absl::string_view root_cause_type,
                                  absl::string_view root_cause_reason) {
  absl::Status status(CodeForHttp(http_status), reason);
  status.SetPayload(kPayloadUrl,
                    absl::Cord(absl::StrCat(http_status, "\n", type, "\n",
                                            root_cause_type, "\n",
                                            root_cause_reason)));
  return status;
}

absl::Status EsError(int http_status, absl::string_view type,
                     absl::string_view reason) {
  return EsErrorWithRootCause(http_status, type, reason, type, reason);
}

absl::Status SearchPhaseError(absl::string_view root_cause_type,
                              absl::string_view root_cause_reason) {
  return EsErrorWithRootCause(400, "search_phase_execution_exception",
                              "all shards failed", root_cause_type,
                              root_cause_reason);
}

EsErrorInfo EsErrorOf(const absl::Status& status) {
  EsErrorInfo info;
  info.reason = std::string(status.message());
  absl::optional<absl::Cord> payload = status.GetPayload(kPayloadUrl);
  if (payload.has_value()) {
    // Split into at most 4 parts: the root reason may itself hold newlines.
    std::string text(*payload);
    std::vector<absl::string_view> parts =
        absl::StrSplit(text, absl::MaxSplits('\n', 3));
    if (parts.size() == 4 && absl::SimpleAtoi(parts[0], &info.http_status)) {
      info.type = std::string(parts[1]);
      info.root_cause_type = std::string(parts[2]);
      info.root_cause_reason = std::string(parts[3]);
      absl::optional<absl::Cord> causes = status.GetPayload(kCausesUrl);
      if (causes.has_value()) info.caused_by = DecodeCauses(std::string(*causes));
      return info;
    }
  }
  info.http_status = HttpForCode(status.code());
  info.type = "exception";
  info.root_cause_type = info.type;
  info.root_cause_reason = info.reason;
  return info;
}

int HttpStatusOf(const absl::Status& status) {
  if (status.ok()) return 200;
  return EsErrorOf(status).http_status;
}

std::string ErrorTypeOf(const absl::Status& status) {
  if (status.ok()) return "";
  return EsErrorOf(status).type;
}

}  // namespace clout
