// libFuzzer target: the date functions of engine/dates.h (ParseIsoDate,
// ParseEpochMillis, ParseDateParam, FormatIsoMillis).
//
// Input: the text to parse, as is. Its first 8 bytes (when there are 8) are
// also read as a little-endian int64: a time to format, to use as "now", and
// to anchor date math on.
//
// Invariants checked:
//   - every successful result lies in [kMinEpochMillis, kMaxEpochMillis];
//   - ParseDateParam tries ISO 8601, then epoch millis, then date math: it
//     agrees with ParseIsoDate and ParseEpochMillis, and "<text>||" (date
//     math with no operations) means the same as <text>;
//   - ParseEpochMillis agrees with an independent 128-bit reference;
//   - FormatIsoMillis(x) of years 0000..9999 is 24 characters and re-parses
//     (ParseIsoDate) to x; every x is at most 30 characters and x's decimal
//     form re-parses (ParseEpochMillis) to x;
//   - rounding: "x.0||/d", "/h", "/m", "/s" round down within one unit,
//     "/w" to a Monday, "/M" and "/y" never up; "x.0||+1d-1d" is x; "now"
//     is the now given.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "engine/dates.h"
#include "fuzz/fuzz_util.h"

namespace {

using clout::FormatIsoMillis;
using clout::kMaxEpochMillis;
using clout::kMinEpochMillis;
using clout::ParseDateParam;
using clout::ParseEpochMillis;
using clout::ParseIsoDate;

constexpr int64_t kDay = 86400000;

bool InRange(int64_t v) { return v >= kMinEpochMillis && v <= kMaxEpochMillis; }

int64_t FloorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b < 0) ? q - 1 : q;
}

// What ParseEpochMillis must return: -?digits(.digits)?, the fraction
// dropped towards negative infinity, within the range.
std::optional<int64_t> ReferenceEpoch(absl::string_view s) {
  size_t i = 0;
  const bool negative = !s.empty() && s[0] == '-';
  if (negative) ++i;
  __int128 value = 0;
  size_t digits = 0;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++digits) {
    value = value * 10 + (s[i] - '0');
    if (value > (static_cast<__int128>(1) << 100))
      value = static_cast<__int128>(1) << 100;
  }
  if (digits == 0) return std::nullopt;
  bool fraction = false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t fraction_digits = 0;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++fraction_digits) {
      fraction |= s[i] != '0';
    }
    if (fraction_digits == 0) return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  if (negative) value = -value - (fraction ? 1 : 0);
  if (value < kMinEpochMillis || value > kMaxEpochMillis) return std::nullopt;
  return static_cast<int64_t>(value);
}

void CheckResult(const absl::StatusOr<int64_t>& r, absl::string_view what,
                 absl::string_view text) {
  if (!r.ok()) return;
  CLOUT_FUZZ_CHECK(InRange(*r), what, "(", text, ") = ", *r, " out of range");
}

// Checks formatting, re-parsing and date math anchored on `v`.
void CheckValue(int64_t v) {
  const std::string iso = FormatIsoMillis(v);
  CLOUT_FUZZ_CHECK(iso.size() >= 24 && iso.size() <= 30, "FormatIsoMillis(", v,
                   ") = ", iso);
  CLOUT_FUZZ_CHECK(iso.back() == 'Z', "FormatIsoMillis(", v, ") = ", iso);
  if (!InRange(v)) return;
  if (iso[0] >= '0' && iso[0] <= '9') {
    CLOUT_FUZZ_CHECK(iso.size() == 24, "FormatIsoMillis(", v, ") = ", iso);
    absl::StatusOr<int64_t> back = ParseIsoDate(iso);
    CLOUT_FUZZ_CHECK(
        back.ok() && *back == v, "ParseIsoDate(FormatIsoMillis(", v,
        ") = ", iso,
        ") = ", back.ok() ? absl::StrCat(*back) : back.status().ToString());
  }
  const std::string decimal = absl::StrCat(v);
  absl::StatusOr<int64_t> epoch = ParseEpochMillis(decimal);
  CLOUT_FUZZ_CHECK(epoch.ok() && *epoch == v, "ParseEpochMillis(", decimal,
                   ")");

  absl::StatusOr<int64_t> now = ParseDateParam("now", v);
  CLOUT_FUZZ_CHECK(now.ok() && *now == v, "\"now\" with now=", v);
  // A date-math anchor of v: ".0" keeps 1000..9999 from reading as a year
  // (ISO 8601 is tried first) and drops nothing.
  const std::string anchor = absl::StrCat(decimal, ".0||");
  absl::StatusOr<int64_t> same = ParseDateParam(anchor + "+1d-1d", 0);
  CLOUT_FUZZ_CHECK(same.ok() && *same == v, anchor, "+1d-1d");

  struct Unit {
    const char* math;
    int64_t millis;  // 0: calendar unit, only "not after v" is checked
  };
  static constexpr Unit kUnits[] = {
      {"/d", kDay}, {"/h", 3600000}, {"/H", 3600000}, {"/m", 60000},
      {"/s", 1000}, {"/w", 0},       {"/M", 0},       {"/y", 0}};
  for (const Unit& unit : kUnits) {
    const std::string text = absl::StrCat(anchor, unit.math);
    absl::StatusOr<int64_t> r = ParseDateParam(text, 0);
    CheckResult(r, "ParseDateParam", text);
    if (unit.millis != 0) {
      // kMinEpochMillis is a whole number of days: these never leave the
      // range.
      CLOUT_FUZZ_CHECK(r.ok(), text, ": ", r.status().ToString());
      CLOUT_FUZZ_CHECK(*r <= v && v - *r < unit.millis &&
                           *r - FloorDiv(*r, unit.millis) * unit.millis == 0,
                       text, " = ", *r);
    } else if (r.ok()) {
      CLOUT_FUZZ_CHECK(*r <= v, text, " = ", *r);
      CLOUT_FUZZ_CHECK(*r - FloorDiv(*r, kDay) * kDay == 0, text, " = ", *r);
      if (unit.math[1] == 'w') {
        // 1970-01-05 (day 4) was a Monday.
        const int64_t day = FloorDiv(*r, kDay);
        CLOUT_FUZZ_CHECK(((day - 4) % 7 + 7) % 7 == 0, text, " = ", *r,
                         " is not a Monday");
        CLOUT_FUZZ_CHECK(v - *r < 7 * kDay, text, " = ", *r);
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  int64_t raw = 0;
  if (size >= 8) std::memcpy(&raw, data, 8);
  // "now" within the range (as a clock gives), or raw.
  const int64_t now =
      InRange(raw)
          ? raw
          : static_cast<int64_t>(static_cast<uint64_t>(raw) %
                                 static_cast<uint64_t>(kMaxEpochMillis));

  const absl::StatusOr<int64_t> iso = ParseIsoDate(text);
  const absl::StatusOr<int64_t> epoch = ParseEpochMillis(text);
  const absl::StatusOr<int64_t> param = ParseDateParam(text, now);
  CheckResult(iso, "ParseIsoDate", text);
  CheckResult(epoch, "ParseEpochMillis", text);
  CheckResult(param, "ParseDateParam", text);

  const std::optional<int64_t> reference = ReferenceEpoch(text);
  CLOUT_FUZZ_CHECK(epoch.ok() == reference.has_value(), "ParseEpochMillis(",
                   text, ") ok=", epoch.ok(),
                   " reference ok=", reference.has_value());
  if (epoch.ok()) {
    CLOUT_FUZZ_CHECK(*epoch == *reference, "ParseEpochMillis(", text,
                     ") = ", *epoch, " reference ", *reference);
  }

  if (iso.ok()) {
    CLOUT_FUZZ_CHECK(param.ok() && *param == *iso, "ParseDateParam(", text,
                     ") disagrees with ParseIsoDate");
    CheckValue(*iso);
  } else if (epoch.ok()) {
    CLOUT_FUZZ_CHECK(param.ok() && *param == *epoch, "ParseDateParam(", text,
                     ") disagrees with ParseEpochMillis");
  } else if (param.ok()) {
    CLOUT_FUZZ_CHECK(absl::StartsWith(text, "now") ||
                         text.find("||") != absl::string_view::npos,
                     "ParseDateParam(", text, ") accepted non-date-math");
  }
  if (iso.ok() || epoch.ok()) {
    const std::string anchored = absl::StrCat(text, "||");
    absl::StatusOr<int64_t> math = ParseDateParam(anchored, now);
    CLOUT_FUZZ_CHECK(math.ok() && *math == *param, "ParseDateParam(", anchored,
                     ") differs from ParseDateParam(", text, ")");
  }
  if (param.ok()) CheckValue(*param);
  if (size >= 8) CheckValue(raw);
  // Errors are plain messages; the request error quotes the text as is.
  if (!param.ok())
    clout_fuzz::CheckErrorJson(param.status(), clout_fuzz::IsValidUtf8(text));
  return 0;
}
