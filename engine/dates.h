// Dates: the timestamps of stored documents and the `start`/`end` of a
// Get Influencers request (spec section 1, "Dates").
//
// All functions are pure and thread-safe. Times are milliseconds since the
// Unix epoch, UTC; every result is within [kMinEpochMillis, kMaxEpochMillis].
#ifndef CLOUT_ENGINE_DATES_H_
#define CLOUT_ENGINE_DATES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clout {

// The representable range. ISO 8601 text is accepted for the years 0000..9999
// only. Epoch milliseconds are accepted, and every result lies, within
// [kMinEpochMillis, kMaxEpochMillis] = +/- 8.64e15 ms (+/- 100,000,000 days
// around 1970: -271821-04-20 .. +275760-09-13), so date math may leave
// 0000..9999 but never this range.
inline constexpr int64_t kMaxEpochMillis = 8'640'000'000'000'000;
inline constexpr int64_t kMinEpochMillis = -8'640'000'000'000'000;

// Parses ISO 8601 in Elasticsearch's `strict_date_optional_time` forms:
//   yyyy, yyyy-MM, yyyy-MM-dd, then optionally 'T' (alone, or with
//   HH, HH:mm, HH:mm:ss, HH:mm:ss.f or HH:mm:ss,f: 1 to 9 fraction digits,
//   truncated to milliseconds), then after a time optionally a zone: 'Z',
//   +HH, +HHmm, +HH:mm, +HH:mm:ss (or '-'), UTC, UT or GMT alone or
//   followed by +HH:mm[:ss], GMT0, or a region id of the system's tzdata
//   (Europe/Paris, America/New_York, EST; case-sensitive, as java.time
//   reads them). A local time in a region is read as java.time reads it:
//   in a DST gap it moves later by the gap's length, in an overlap the
//   earlier offset holds. An unknown id is an error.
// Missing parts take their minimum (month 1, day 1, 00:00:00.000).
// Returns the epoch milliseconds, or InvalidArgument (a plain message, not an
// Elasticsearch error) if `text` is not such a date or names an impossible
// date (2016-02-30, hour 24, ...).
absl::StatusOr<int64_t> ParseIsoDate(absl::string_view text);

// Parses an epoch-milliseconds string: an optional '-', then digits, then
// optionally '.' and digits (the fraction is dropped, towards negative
// infinity as Elasticsearch does). Returns InvalidArgument if `text` is not
// such a number or is out of [kMinEpochMillis, kMaxEpochMillis].
absl::StatusOr<int64_t> ParseEpochMillis(absl::string_view text);

// Parses a request's `start` or `end` value, as a range query on the
// `timestamp` field (format strict_date_optional_time||epoch_millis) does:
//   - ISO 8601 as ParseIsoDate (tried first, so "2000" is the year 2000);
//   - epoch milliseconds as ParseEpochMillis;
//   - date math: an anchor ("now", or a date followed by "||") then any
//     number of "+N<unit>", "-N<unit>" (N defaults to 1) and "/<unit>"
//     (round down to the start of the unit), units y M w d h H m s.
//     Weeks start on Monday; adding months or years clamps the day to the
//     end of a shorter month (Jan 31 + 1M = Feb 28/29).
// `now_millis` is the value of "now". Rounding is always down (both `start`,
// which is inclusive, and `end`, which is exclusive, round down).
// On failure returns the Elasticsearch error of spec section 6: 400,
// search_phase_execution_exception "all shards failed", root cause
// parse_exception "failed to parse date field [<text>] with format
// [strict_date_optional_time||epoch_millis]".
absl::StatusOr<int64_t> ParseDateParam(absl::string_view text,
                                       int64_t now_millis);

// Formats epoch milliseconds as ISO 8601 UTC with milliseconds, as
// Elasticsearch's `timestamp_string`: "2016-02-08T15:00:00.000Z". Years
// outside 0000..9999 are written with a sign and at least 4 digits
// ("+10000-01-01T00:00:00.000Z", "-0001-...").
std::string FormatIsoMillis(int64_t epoch_millis);

}  // namespace clout

#endif  // CLOUT_ENGINE_DATES_H_
