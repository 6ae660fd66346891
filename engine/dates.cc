#include "engine/dates.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "engine/error.h"

namespace clout {
namespace {

constexpr int64_t kMillisPerSecond = 1000;
constexpr int64_t kMillisPerMinute = 60 * kMillisPerSecond;
constexpr int64_t kMillisPerHour = 60 * kMillisPerMinute;
constexpr int64_t kMillisPerDay = 24 * kMillisPerHour;

// Division and remainder rounding towards negative infinity; `b` > 0.
constexpr int64_t FloorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b < 0) ? q - 1 : q;
}
constexpr int64_t FloorMod(int64_t a, int64_t b) {
  const int64_t r = a % b;
  return r < 0 ? r + b : r;
}

constexpr bool IsLeapYear(int64_t y) {
  return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

constexpr int DaysInMonth(int64_t y, int m) {
  constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return (m == 2 && IsLeapYear(y)) ? 29 : kDays[m - 1];
}

// Howard Hinnant's days_from_civil: days since 1970-01-01 of the proleptic
// Gregorian date y-m-d. Callers stay within Java's years (kMinYear..kMaxYear),
// far from overflow.
constexpr int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;  // [0, 399]
  const int64_t doy =
      (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;        // [0, 365]
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;  // [0, 146096]
  return era * 146097 + doe - 719468;
}

struct CivilDate {
  int64_t year;
  int month;  // 1..12
  int day;    // 1..31
};

// Howard Hinnant's civil_from_days, the inverse of DaysFromCivil. Free of
// overflow for every day an int64 of milliseconds can name.
constexpr CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;  // [0, 146096]
  const int64_t yoe =
      (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;    // [0, 399]
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  // [0, 365]
  const int64_t mp = (5 * doy + 2) / 153;                       // [0, 11]
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {yoe + era * 400 + (month <= 2), month, day};
}

// Date math works, as Java's ZonedDateTime does for Elasticsearch, on
// calendar dates of the years -999999999..999999999; only the final result
// must fit [kMinEpochMillis, kMaxEpochMillis]. So "now+200000y-200000y" is
// fine while "now+200000y" is not.
constexpr int64_t kMinYear = -999'999'999;
constexpr int64_t kMaxYear = 999'999'999;
constexpr int64_t kMinDay = DaysFromCivil(kMinYear, 1, 1);
constexpr int64_t kMaxDay = DaysFromCivil(kMaxYear, 12, 31);

static_assert(DaysFromCivil(1970, 1, 1) == 0);
static_assert(DaysFromCivil(2000, 3, 1) == 11017);
static_assert(CivilFromDays(-1).year == 1969 && CivilFromDays(-1).day == 31);
static_assert(kMaxEpochMillis == 100'000'000 * kMillisPerDay);

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly `n` digits at s[*pos] into *out, advancing *pos. Returns false
// (leaving *pos and *out alone) if fewer than `n` digits are there.
bool ReadFixedDigits(absl::string_view s, size_t* pos, int n, int* out) {
  if (s.size() - *pos < static_cast<size_t>(n)) return false;
  int value = 0;
  for (int i = 0; i < n; ++i) {
    const char c = s[*pos + i];
    if (!IsDigit(c)) return false;
    value = value * 10 + (c - '0');
  }
  *pos += n;
  *out = value;
  return true;
}

// Whether the zone part `rest` of a date names a region (Europe/Paris,
// EST) rather than Z, an offset, or UTC/UT/GMT with or without an offset.
bool IsRegionIdStart(absl::string_view rest) {
  if (rest.empty() || !absl::ascii_isalpha(static_cast<unsigned char>(rest[0]))) {
    return false;
  }
  if (rest == "Z") return false;
  // As java.time's ZoneIdPrinterParser: text starting UT or GMT is UTC, UT,
  // GMT or GMT0 with an optional offset, never a region ("UTC0" fails).
  return !absl::StartsWith(rest, "UT") && !absl::StartsWith(rest, "GMT");
}

// A zone id as java.time's region ids are written: [A-Za-z][A-Za-z0-9~/._+-]+
// without "." or ".." path segments (the id names a file under tzdata's
// directory: no other file may be reached through it).
bool IsRegionIdSyntax(absl::string_view id) {
  if (id.size() < 2 || id.size() > 64) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '~' &&
        c != '/' && c != '_' && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  for (absl::string_view segment : absl::StrSplit(id, '/')) {
    if (segment.empty() || segment == "." || segment == "..") return false;
  }
  return true;
}

// Loads a zone of the system's tzdata (Debian's tzdata package) by id;
// Abseil caches loaded zones. False for an unknown id.
bool LoadZone(absl::string_view id, absl::TimeZone* zone) {
  // Abseil also takes "localtime" and "Fixed/UTC+hh:mm:ss" forms that
  // java.time does not.
  if (id == "localtime" || absl::StartsWith(id, "Fixed/")) return false;
  return absl::LoadTimeZone(std::string(id), zone);
}

// The ISO 8601 parser behind ParseIsoDate. Returns nullptr and sets *millis on
// success, else a short description of the problem. Allocation-free but
// for region ids.
const char* ParseIsoInternal(absl::string_view s, int64_t* millis) {
  size_t p = 0;
  int year = 0, month = 1, day = 1;
  int hour = 0, minute = 0, second = 0, milli = 0;
  int64_t offset_millis = 0;  // local time minus UTC

  if (!ReadFixedDigits(s, &p, 4, &year)) return "expected a 4-digit year";
  if (p < s.size() && s[p] == '-') {
    ++p;
    if (!ReadFixedDigits(s, &p, 2, &month)) return "expected a 2-digit month";
    if (p < s.size() && s[p] == '-') {
      ++p;
      if (!ReadFixedDigits(s, &p, 2, &day)) return "expected a 2-digit day";
    }
  }
  if (month < 1 || month > 12) return "month out of range";
  if (day < 1 || day > DaysInMonth(year, month)) return "day out of range";

  // A 'T' may end the text: the time is optional after it, as in
  // Elasticsearch's formatter.
  if (p < s.size() && s[p] == 'T' && p + 1 < s.size()) {
    ++p;
    if (!ReadFixedDigits(s, &p, 2, &hour)) return "expected a 2-digit hour";
    if (hour > 23) return "hour out of range";
    if (p < s.size() && s[p] == ':') {
      ++p;
      if (!ReadFixedDigits(s, &p, 2, &minute)) {
        return "expected 2-digit minutes";
      }
      if (minute > 59) return "minutes out of range";
      if (p < s.size() && s[p] == ':') {
        ++p;
        if (!ReadFixedDigits(s, &p, 2, &second)) {
          return "expected 2-digit seconds";
        }
        if (second > 59) return "seconds out of range";
        // A fraction after '.', then one after ',' (either or both: both
        // must then be the same nanoseconds, as java.time requires of a
        // field parsed twice).
        int64_t nanos = -1;
        for (const char mark : {'.', ','}) {
          if (p >= s.size() || s[p] != mark) continue;
          ++p;
          int digits = 0;
          int64_t value = 0;
          while (p < s.size() && IsDigit(s[p]) && digits < 10) {
            value = value * 10 + (s[p] - '0');
            ++digits;
            ++p;
          }
          if (digits == 0 || digits > 9) {
            return "expected 1 to 9 fraction digits";
          }
          for (int i = digits; i < 9; ++i) value *= 10;
          if (nanos >= 0 && nanos != value) return "conflicting fractions";
          nanos = value;
        }
        if (nanos > 0) milli = static_cast<int>(nanos / 1'000'000);
      }
    }
    // A region id (Europe/Paris): read as java.time reads a local time
    // there (ZonedDateTime.of): in a gap (clocks moved forward) the time
    // moves later by the gap's length, in an overlap (clocks moved back)
    // the earlier offset holds. Both are Abseil's TimeInfo::pre.
    if (p < s.size() && IsRegionIdStart(s.substr(p))) {
      const absl::string_view id = s.substr(p);
      if (!IsRegionIdSyntax(id)) return "expected a time zone";
      absl::TimeZone zone;
      if (!LoadZone(id, &zone)) return "unknown time zone id";
      const absl::Time at =
          zone.At(absl::CivilSecond(year, month, day, hour, minute, second))
              .pre;
      *millis = absl::ToUnixMillis(at) + milli;
      return nullptr;
    }
    // The zone: 'Z', an offset, or UTC, UT or GMT alone or with an offset
    // (+HH:mm[:ss]), or GMT0.
    int offset_seconds = 0;
    bool zone_prefix = false;
    bool gmt0 = false;  // a zone of its own: no offset may follow
    for (absl::string_view prefix : {"UTC", "GMT", "UT"}) {
      if (s.substr(p, prefix.size()) == prefix) {
        p += prefix.size();
        zone_prefix = true;
        gmt0 = prefix == "GMT" && p < s.size() && s[p] == '0';
        p += gmt0;
        break;
      }
    }
    if (!zone_prefix && p < s.size() && s[p] == 'Z') {
      ++p;
    } else if (!gmt0 && p < s.size() && (s[p] == '+' || s[p] == '-')) {
      const int sign = s[p] == '-' ? -1 : 1;
      ++p;
      int offset_hours = 0, offset_mins = 0, offset_secs = 0;
      if (!ReadFixedDigits(s, &p, 2, &offset_hours)) {
        return "expected a 2-digit offset hour";
      }
      // +HH, +HHmm, +HH:mm or +HH:mm:ss; after UTC, UT or GMT only
      // +HH:mm and +HH:mm:ss.
      const bool colon = p < s.size() && s[p] == ':';
      if (colon) ++p;
      if (zone_prefix && !colon) return "expected +HH:mm after the zone";
      if ((colon || p < s.size()) && !ReadFixedDigits(s, &p, 2, &offset_mins)) {
        return "expected 2-digit offset minutes";
      }
      if (offset_mins > 59) return "offset minutes out of range";
      if (colon && p < s.size() && s[p] == ':') {
        ++p;
        if (!ReadFixedDigits(s, &p, 2, &offset_secs)) {
          return "expected 2-digit offset seconds";
        }
        if (offset_secs > 59) return "offset seconds out of range";
      }
      offset_seconds =
          sign * (offset_hours * 3600 + offset_mins * 60 + offset_secs);
      if (offset_seconds > 18 * 3600 || offset_seconds < -18 * 3600) {
        return "offset out of range (at most 18 hours)";
      }
    }
    offset_millis = int64_t{offset_seconds} * kMillisPerSecond;
  } else if (p < s.size() && s[p] == 'T') {
    ++p;  // a 'T' ending the text
  }
  if (p != s.size()) return "unexpected text after the date";

  // Years 0000..9999 keep every term far from overflow.
  *millis = DaysFromCivil(year, month, day) * kMillisPerDay +
            hour * kMillisPerHour + minute * kMillisPerMinute +
            second * kMillisPerSecond + milli - offset_millis;
  return nullptr;
}

// The epoch-milliseconds parser behind ParseEpochMillis; contract as
// ParseIsoInternal.
const char* ParseEpochInternal(absl::string_view s, int64_t* millis) {
  size_t p = 0;
  const bool negative = !s.empty() && s[0] == '-';
  if (negative) ++p;
  if (p == s.size() || !IsDigit(s[p])) return "expected digits";
  int64_t value = 0;
  bool too_big = false;
  for (; p < s.size() && IsDigit(s[p]); ++p) {
    // value <= kMaxEpochMillis here, so value * 10 + 9 cannot overflow.
    value = value * 10 + (s[p] - '0');
    if (value > kMaxEpochMillis) {
      too_big = true;
      value = kMaxEpochMillis;
    }
  }
  bool has_fraction = false;
  if (p < s.size() && s[p] == '.') {
    ++p;
    if (p == s.size() || !IsDigit(s[p])) return "expected digits after '.'";
    for (; p < s.size() && IsDigit(s[p]); ++p) has_fraction |= s[p] != '0';
  }
  if (p != s.size()) return "unexpected character";
  if (too_big) return "out of range";
  // Dropping the fraction towards negative infinity: -1.5 is -2.
  int64_t result = negative ? -value - (has_fraction ? 1 : 0) : value;
  if (result < kMinEpochMillis) return "out of range";
  *millis = result;
  return nullptr;
}

// A point in time as date math sees it: a calendar day and the time of day.
struct DayTime {
  int64_t day;     // days since 1970-01-01, in [kMinDay, kMaxDay]
  int64_t millis;  // milliseconds since midnight, in [0, kMillisPerDay)
};

DayTime SplitMillis(int64_t epoch_millis) {
  return {FloorDiv(epoch_millis, kMillisPerDay),
          FloorMod(epoch_millis, kMillisPerDay)};
}

// Adds `months` (|months| < 2^31 * 12) clamping the day to the new month's
// end. Returns false if the year leaves kMinYear..kMaxYear.
bool AddMonths(DayTime* t, int64_t months) {
  const CivilDate c = CivilFromDays(t->day);
  const int64_t index = c.year * 12 + (c.month - 1) + months;
  const int64_t year = FloorDiv(index, 12);
  if (year < kMinYear || year > kMaxYear) return false;
  const int month = static_cast<int>(FloorMod(index, 12)) + 1;
  t->day =
      DaysFromCivil(year, month, std::min(c.day, DaysInMonth(year, month)));
  return true;
}

// Applies the operations after a date-math anchor ("+1d/w-2h"), as
// Elasticsearch's JavaDateMathParser.parseMath does with roundUp false.
// Returns false on any syntax error or if a step leaves Java's date range.
bool ApplyDateMath(absl::string_view math, DayTime* t) {
  size_t i = 0;
  while (i < math.size()) {
    const char op = math[i++];
    if (op != '/' && op != '+' && op != '-') return false;
    const bool round = op == '/';
    if (i >= math.size()) return false;
    int64_t num = 1;
    if (IsDigit(math[i])) {
      // Java's Integer.parseInt: at most 2^31 - 1.
      num = 0;
      for (; i < math.size() && IsDigit(math[i]); ++i) {
        num = num * 10 + (math[i] - '0');
        if (num > std::numeric_limits<int32_t>::max()) return false;
      }
      if (i >= math.size()) return false;
    }
    if (round && num != 1) return false;  // "/2d" is not a unit
    const int64_t amount = op == '-' ? -num : num;
    int64_t unit_millis = 0;
    switch (math[i++]) {
      case 'y':
        if (round) {
          *t = {DaysFromCivil(CivilFromDays(t->day).year, 1, 1), 0};
        } else if (!AddMonths(t, amount * 12)) {
          return false;
        }
        break;
      case 'M':
        if (round) {
          const CivilDate c = CivilFromDays(t->day);
          *t = {DaysFromCivil(c.year, c.month, 1), 0};
        } else if (!AddMonths(t, amount)) {
          return false;
        }
        break;
      case 'w':
        if (round) {
          // Day 0 (1970-01-01) was a Thursday, so Mondays are day 4 mod 7.
          *t = {t->day - FloorMod(t->day + 3, 7), 0};
        } else {
          t->day += amount * 7;
        }
        break;
      case 'd':
        if (round) {
          t->millis = 0;
        } else {
          t->day += amount;
        }
        break;
      case 'h':
      case 'H':
        unit_millis = kMillisPerHour;
        break;
      case 'm':
        unit_millis = kMillisPerMinute;
        break;
      case 's':
        unit_millis = kMillisPerSecond;
        break;
      default:
        return false;
    }
    if (unit_millis != 0) {
      if (round) {
        t->millis -= t->millis % unit_millis;
      } else {
        // |amount * unit_millis| < 2^31 * 3.6e6 < 2^63: no overflow.
        const int64_t total = t->millis + amount * unit_millis;
        t->day += FloorDiv(total, kMillisPerDay);
        t->millis = FloorMod(total, kMillisPerDay);
      }
    }
    // Each step moves at most ~1.5e10 days, so `day` cannot overflow before
    // this check.
    if (t->day < kMinDay || t->day > kMaxDay) return false;
  }
  return true;
}

// Date math: "now<math>" or "<date>||<math>". Returns false if `text` is not
// date math or its result is out of range.
bool ParseDateMath(absl::string_view text, int64_t now_millis,
                   int64_t* millis) {
  DayTime t;
  absl::string_view math;
  if (absl::StartsWith(text, "now")) {
    t = SplitMillis(now_millis);
    math = text.substr(3);
  } else {
    const size_t bars = text.find("||");
    if (bars == absl::string_view::npos) return false;
    const absl::string_view anchor = text.substr(0, bars);
    int64_t anchor_millis = 0;
    if (ParseIsoInternal(anchor, &anchor_millis) != nullptr &&
        ParseEpochInternal(anchor, &anchor_millis) != nullptr) {
      return false;
    }
    t = SplitMillis(anchor_millis);
    math = text.substr(bars + 2);
  }
  if (!ApplyDateMath(math, &t)) return false;
  int64_t result = 0;
  if (__builtin_mul_overflow(t.day, kMillisPerDay, &result) ||
      __builtin_add_overflow(result, t.millis, &result)) {
    return false;
  }
  if (result < kMinEpochMillis || result > kMaxEpochMillis) return false;
  *millis = result;
  return true;
}

// Quotes at most the first 100 bytes of a rejected value: a malformed
// document should not produce a megabyte-long message.
std::string Excerpt(absl::string_view text) {
  constexpr size_t kMax = 100;
  if (text.size() <= kMax) return std::string(text);
  // Not inside a UTF-8 sequence: back off over its continuation bytes.
  size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(text.substr(0, cut), "...");
}

// Writes `value` (>= 0) with at least `width` digits, zero-padded, ending just
// before `end`; returns the first written character.
char* WriteDigitsBackwards(uint64_t value, int width, char* end) {
  do {
    *--end = static_cast<char>('0' + value % 10);
    value /= 10;
    --width;
  } while (value != 0 || width > 0);
  return end;
}

}  // namespace

absl::StatusOr<int64_t> ParseIsoDate(absl::string_view text) {
  int64_t millis = 0;
  if (const char* problem = ParseIsoInternal(text, &millis)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid ISO 8601 date [", Excerpt(text), "]: ", problem));
  }
  return millis;
}

absl::StatusOr<int64_t> ParseEpochMillis(absl::string_view text) {
  int64_t millis = 0;
  if (const char* problem = ParseEpochInternal(text, &millis)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid epoch milliseconds [", Excerpt(text), "]: ", problem));
  }
  return millis;
}

absl::StatusOr<int64_t> ParseDateParam(absl::string_view text,
                                       int64_t now_millis) {
  int64_t millis = 0;
  if (ParseIsoInternal(text, &millis) == nullptr ||
      ParseEpochInternal(text, &millis) == nullptr ||
      ParseDateMath(text, now_millis, &millis)) {
    return millis;
  }
  return SearchPhaseError(
      "parse_exception",
      absl::StrCat("failed to parse date field [", text,
                   "] with format [strict_date_optional_time||epoch_millis]"));
}

std::string FormatIsoMillis(int64_t epoch_millis) {
  const int64_t day = FloorDiv(epoch_millis, kMillisPerDay);
  int64_t ms = FloorMod(epoch_millis, kMillisPerDay);
  const CivilDate c = CivilFromDays(day);

  // "+292278994-08-17T07:12:55.807Z" is the longest: 30 characters.
  char buf[32];
  char* const end = buf + sizeof(buf);
  char* p = end;
  *--p = 'Z';
  p = WriteDigitsBackwards(static_cast<uint64_t>(ms % 1000), 3, p);
  *--p = '.';
  ms /= 1000;
  p = WriteDigitsBackwards(static_cast<uint64_t>(ms % 60), 2, p);
  *--p = ':';
  ms /= 60;
  p = WriteDigitsBackwards(static_cast<uint64_t>(ms % 60), 2, p);
  *--p = ':';
  p = WriteDigitsBackwards(static_cast<uint64_t>(ms / 60), 2, p);
  *--p = 'T';
  p = WriteDigitsBackwards(static_cast<uint64_t>(c.day), 2, p);
  *--p = '-';
  p = WriteDigitsBackwards(static_cast<uint64_t>(c.month), 2, p);
  *--p = '-';
  // |year| < 3e8 for any int64 input, so negating it is safe.
  p = WriteDigitsBackwards(static_cast<uint64_t>(c.year < 0 ? -c.year : c.year),
                           4, p);
  if (c.year < 0) {
    *--p = '-';
  } else if (c.year > 9999) {
    *--p = '+';
  }
  return std::string(p, end);
}

}  // namespace clout
