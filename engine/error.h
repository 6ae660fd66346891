// Errors in Elasticsearch's shape, carried by absl::Status.
//
// Every failure the engine reports is an absl::Status whose payload names the
// HTTP status and the Elasticsearch error type (and, where Elasticsearch
// reports one, a root cause that differs from the outer error). The Status
// message is the Elasticsearch "reason". ErrorJson() (response.h) turns
// such a Status into the API's error envelope:
//
//   {"error":{"root_cause":[{"type":T,"reason":R}],"type":T,"reason":R},"status":S}
//
// with "caused_by":{"type":..,"reason":..} (nested as deep as the chain)
// after the reason for an error made by EsErrorCausedBy.
//
// A Status without the payload (for example one from a system call) is
// reported as HTTP 500, type "exception", unless its code maps to a status
// (see HttpStatusOf).
//
// All functions here are pure and thread-safe.
#ifndef CLOUT_ENGINE_ERROR_H_
#define CLOUT_ENGINE_ERROR_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace clout {

// The pieces of an Elasticsearch error.
struct EsErrorInfo {
  int http_status = 500;
  std::string type;             // e.g. "illegal_argument_exception"
  std::string reason;           // the Status message
  std::string root_cause_type;  // equals `type` when there is no distinct root cause
  std::string root_cause_reason;
  // The exceptions this one wraps, outermost first ("caused_by",
  // "caused_by" of that, ...); empty when it wraps none.
  struct Cause {
    std::string type;
    std::string reason;
  };
  std::vector<Cause> caused_by;
};

// Returns a Status for an error whose root cause is the error itself. The
// absl code follows the HTTP status (400 -> InvalidArgument, 404 -> NotFound,
// 401 -> Unauthenticated, 403 -> PermissionDenied, 413 -> OutOfRange,
// 429 -> ResourceExhausted, else Internal).
absl::Status EsError(int http_status, absl::string_view type,
                     absl::string_view reason);

// Returns a Status for an error wrapping a distinct root cause, as
// Elasticsearch reports search failures ("search_phase_execution_exception",
// reason "all shards failed", root cause e.g. "parse_exception").
absl::Status EsErrorWithRootCause(int http_status, absl::string_view type,
                                  absl::string_view reason,
                                  absl::string_view root_cause_type,
                                  absl::string_view root_cause_reason);

// Returns a Status for an error that wraps `cause` (an error made by these
// functions, or any Status) as Elasticsearch reports a wrapped exception:
// its caused_by is `cause`'s type and reason followed by `cause`'s own
// caused_by chain, as an XContentParseException "[1:9] [x] failed to parse
// field [desc]" wraps the value's illegal_argument_exception. The root
// cause is found as Elasticsearch's guessRootCauses finds it: the error
// itself, or, looking through the chain while it goes from an
// x_content_parse_exception to another one or to an Elasticsearch
// exception (parse_exception, ...), or from an Elasticsearch exception to
// another, the innermost such cause. Plain Java exceptions
// (illegal_argument_exception, number_format_exception, ...) end the
// search.
absl::Status EsErrorCausedBy(int http_status, absl::string_view type,
                             absl::string_view reason,
                             const absl::Status& cause);

// Returns `to` with the caused_by chain of `from` in place of its own (`to`
// keeps its own chain if `from` has none; an OK `to` stays OK): for an
// error re-worded on its way out (a reason given a prefix).
absl::Status WithCausesOf(const absl::Status& from, absl::Status to);

// Shorthand for the search-phase failures of spec section 6: status 400, type
// search_phase_execution_exception, reason "all shards failed".
absl::Status SearchPhaseError(absl::string_view root_cause_type,
                              absl::string_view root_cause_reason);

// Returns the Elasticsearch view of `status`. For a Status made by the
// functions above that is exactly what they were given; for any other non-OK
// Status the type is "exception" and the HTTP status follows its code.
// Requires !status.ok().
EsErrorInfo EsErrorOf(const absl::Status& status);

// The HTTP status of `status` (200 for OK).
int HttpStatusOf(const absl::Status& status);

// The Elasticsearch error type of `status` ("" for OK).
std::string ErrorTypeOf(const absl::Status& status);

}  // namespace clout

#endif  // CLOUT_ENGINE_ERROR_H_
