#include "engine/dates.h"

#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "engine/error.h"
#include "gtest/gtest.h"

namespace clout {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();

// The oracle for expected values: Abseil's civil-time conversion, which
// shares no code with engine/dates.cc.
int64_t Utc(int64_t y, int m, int d, int h = 0, int mi = 0, int s = 0,
            int ms = 0) {
  return absl::ToUnixMillis(absl::FromCivil(
             absl::CivilSecond(y, m, d, h, mi, s), absl::UTCTimeZone())) +
         ms;
}

// FormatIsoMillis' expected text for `millis`, built from Abseil's civil time.
std::string OracleFormat(int64_t millis) {
  const int64_t seconds = millis / 1000 - (millis % 1000 < 0 ? 1 : 0);
  const int64_t ms = millis % 1000 < 0 ? millis % 1000 + 1000 : millis % 1000;
  const absl::CivilSecond cs =
      absl::ToCivilSecond(absl::FromUnixSeconds(seconds), absl::UTCTimeZone());
  std::string year;
  if (cs.year() < 0) {
    year = absl::StrFormat("-%04d", -cs.year());
  } else if (cs.year() > 9999) {
    year = absl::StrFormat("+%d", cs.year());
  } else {
    year = absl::StrFormat("%04d", cs.year());
  }
  return absl::StrFormat("%s-%02d-%02dT%02d:%02d:%02d.%03dZ", year, cs.month(),
                         cs.day(), cs.hour(), cs.minute(), cs.second(), ms);
}

constexpr char kDateFormatSuffix[] =
    "] with format [strict_date_optional_time||epoch_millis]";

// Checks that ParseDateParam rejects `text` with the Elasticsearch error of
// spec section 6.
void ExpectDateParamError(const std::string& text, int64_t now) {
  SCOPED_TRACE(absl::StrCat("text: \"", text, "\", now: ", now));
  absl::StatusOr<int64_t> result = ParseDateParam(text, now);
  ASSERT_FALSE(result.ok()) << "parsed as " << *result;
  EXPECT_EQ(HttpStatusOf(result.status()), 400);
  const EsErrorInfo info = EsErrorOf(result.status());
  EXPECT_EQ(info.http_status, 400);
  EXPECT_EQ(info.type, "search_phase_execution_exception");
  EXPECT_EQ(info.reason, "all shards failed");
  EXPECT_EQ(info.root_cause_type, "parse_exception");
  EXPECT_EQ(info.root_cause_reason, absl::StrCat("failed to parse date field [",
                                                 text, kDateFormatSuffix));
}

// A Tuesday, with every field non-zero so each rounding has work to do.
const int64_t kNow = Utc(2016, 2, 9, 12, 34, 56, 789);

struct Case {
  const char* text;
  int64_t expected;
};

// ---------------------------------------------------------------- ParseIsoDate

TEST(ParseIsoDateTest, AcceptsEveryForm) {
  const Case cases[] = {
      {"2016", Utc(2016, 1, 1)},
      {"2016-06", Utc(2016, 6, 1)},
      {"2016-06-01", Utc(2016, 6, 1)},
      {"2016-06-01T10", Utc(2016, 6, 1, 10)},
      {"2016-06-01T10:20", Utc(2016, 6, 1, 10, 20)},
      {"2016-06-01T10:20:30", Utc(2016, 6, 1, 10, 20, 30)},
      {"2016-06-01T10:20:30.1", Utc(2016, 6, 1, 10, 20, 30, 100)},
      {"2016-06-01T10:20:30.12", Utc(2016, 6, 1, 10, 20, 30, 120)},
      {"2016-06-01T10:20:30.123", Utc(2016, 6, 1, 10, 20, 30, 123)},
      {"2016-06-01T10:20:30.1239", Utc(2016, 6, 1, 10, 20, 30, 123)},
      {"2016-06-01T10:20:30.123456789", Utc(2016, 6, 1, 10, 20, 30, 123)},
      {"2016-06-01T10:20:30.999999999", Utc(2016, 6, 1, 10, 20, 30, 999)},
      {"2016-06-01T10:20:30.000", Utc(2016, 6, 1, 10, 20, 30)},
      {"2016-06-01T00:00:00Z", Utc(2016, 6, 1)},
      {"2016-06-01T10Z", Utc(2016, 6, 1, 10)},
      {"2016-06-01T10:20Z", Utc(2016, 6, 1, 10, 20)},
      {"2016-06-01T10:20:30.5Z", Utc(2016, 6, 1, 10, 20, 30, 500)},
      // A 'T' may end the text; a fraction may follow ',' (or '.' and ','
      // with the same value), as in Elasticsearch's formatter.
      {"2016-06-01T", Utc(2016, 6, 1)},
      {"2016T", Utc(2016, 1, 1)},
      {"2016-06-01T10:20:30,5", Utc(2016, 6, 1, 10, 20, 30, 500)},
      {"2016-06-01T10:20:30,123456789Z", Utc(2016, 6, 1, 10, 20, 30, 123)},
      {"2016-06-01T10:20:30.5,500", Utc(2016, 6, 1, 10, 20, 30, 500)},
      // 'T' may follow a shorter date, as Elasticsearch's optional sections
      // allow; the missing parts still take their minimum.
      {"2016T10:00", Utc(2016, 1, 1, 10)},
      {"2016-06T10", Utc(2016, 6, 1, 10)},
      // Limits of each field.
      {"0000", Utc(0, 1, 1)},
      {"0000-01-01T00:00:00.000Z", -62167219200000},
      {"9999-12-31T23:59:59.999Z", 253402300799999},
      {"1970-01-01T00:00:00Z", 0},
      {"1969-12-31T23:59:59.999Z", -1},
      {"2016-12-31T23:59:59", Utc(2016, 12, 31, 23, 59, 59)},
  };
  for (const Case& c : cases) {
    absl::StatusOr<int64_t> result = ParseIsoDate(c.text);
    ASSERT_TRUE(result.ok()) << c.text << ": " << result.status();
    EXPECT_EQ(*result, c.expected) << c.text;
  }
}

TEST(ParseIsoDateTest, AppliesOffsets) {
  const int64_t midnight = Utc(2016, 6, 1);
  const Case cases[] = {
      // The spec's example: 2016-05-31T22:00:00.123Z.
      {"2016-06-01T00:00:00.123+02:00", Utc(2016, 5, 31, 22, 0, 0, 123)},
      {"2016-06-01T00:00+02:00", midnight - 2 * 3600000},
      {"2016-06-01T00:00+0200", midnight - 2 * 3600000},
      {"2016-06-01T00:00+02", midnight - 2 * 3600000},
      {"2016-06-01T00+02:30", midnight - 150 * 60000},
      {"2016-06-01T00:00-05:00", midnight + 5 * 3600000},
      {"2016-06-01T00:00-0530", midnight + 330 * 60000},
      {"2016-06-01T00:00:00+00:00", midnight},
      {"2016-06-01T00:00:00-00:00", midnight},
      {"2016-06-01T00:00:00+18:00", midnight - 18 * 3600000},
      {"2016-06-01T00:00:00-18:00", midnight + 18 * 3600000},
      {"2016-06-01T00:00:00+17:59", midnight - (17 * 60 + 59) * 60000},
      {"2016-06-01T00:00:00+02:00:30", midnight - 7230000},
      {"2016-06-01T00:00:00-00:00:01", midnight + 1000},
      // Zone ids java.time's appendZoneOrOffsetId reads.
      {"2016-06-01T00:00:00UTC", midnight},
      {"2016-06-01T00:00UT", midnight},
      {"2016-06-01T00GMT", midnight},
      {"2016-06-01T00:00:00GMT0", midnight},
      {"2016-06-01T00:00:00UTC+02:00", midnight - 2 * 3600000},
      {"2016-06-01T00:00:00GMT-05:30", midnight + 330 * 60000},
      {"2016-06-01T00:00:00UT+01:00:30", midnight - 3630000},
      // Offsets may carry a date across a year boundary, even out of 0000.
      {"2017-01-01T01:00+02:00", Utc(2016, 12, 31, 23)},
      {"0000-01-01T00:00+01:00", Utc(-1, 12, 31, 23)},
      {"9999-12-31T23:59-01:00", Utc(10000, 1, 1, 0, 59)},
  };
  for (const Case& c : cases) {
    absl::StatusOr<int64_t> result = ParseIsoDate(c.text);
    ASSERT_TRUE(result.ok()) << c.text << ": " << result.status();
    EXPECT_EQ(*result, c.expected) << c.text;
  }
}

TEST(ParseIsoDateTest, KnowsLeapYears) {
  EXPECT_EQ(*ParseIsoDate("2016-02-29"), Utc(2016, 2, 29));
  EXPECT_EQ(*ParseIsoDate("2000-02-29"), Utc(2000, 2, 29));
  EXPECT_EQ(*ParseIsoDate("0000-02-29"), Utc(0, 2, 29));
  EXPECT_EQ(*ParseIsoDate("2400-02-29"), Utc(2400, 2, 29));
  EXPECT_FALSE(ParseIsoDate("2015-02-29").ok());
  EXPECT_FALSE(ParseIsoDate("1900-02-29").ok());
  EXPECT_FALSE(ParseIsoDate("2100-02-29").ok());
  EXPECT_FALSE(ParseIsoDate("2016-02-30").ok());
}

// Every day of 0000..9999 against Abseil: checks days-from-civil and the
// days-per-month table exhaustively, and that the day after each month's
// last day is rejected.
TEST(ParseIsoDateTest, MatchesAbseilOnEveryDay) {
  char text[32];
  int mismatches = 0;
  for (absl::CivilDay day(0, 1, 1); day <= absl::CivilDay(9999, 12, 31);
       ++day) {
    std::snprintf(text, sizeof(text), "%04d-%02d-%02d",
                  static_cast<int>(day.year()), day.month(), day.day());
    absl::StatusOr<int64_t> result = ParseIsoDate(text);
    const int64_t expected = Utc(day.year(), day.month(), day.day());
    if (!result.ok() || *result != expected) {
      ADD_FAILURE() << text << ": " << result.status();
      if (++mismatches > 10) return;
    }
    const absl::CivilDay next = day + 1;
    if (next.month() != day.month()) {
      std::snprintf(text, sizeof(text), "%04d-%02d-%02d",
                    static_cast<int>(day.year()), day.month(), day.day() + 1);
      EXPECT_FALSE(ParseIsoDate(text).ok()) << text;
    }
  }
}

TEST(ParseIsoDateTest, LongValueIsQuotedWithoutCuttingACharacter) {
  // 99 ASCII bytes then "é" (2 bytes) straddling the 100-byte excerpt.
  const std::string text = std::string(99, '2') + "\xC3\xA9" + std::string(50, '1');
  absl::Status status = ParseIsoDate(text).status();
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  EXPECT_NE(message.find(std::string(99, '2') + "..."), std::string::npos)
      << message;
  EXPECT_EQ(message.find('\xC3'), std::string::npos) << message;
}

TEST(ParseIsoDateTest, NamesTheProblemWithAZoneOrFraction) {
  const std::pair<const char*, const char*> cases[] = {
      {"2016-06-01T10:00:00.5,6", "conflicting fractions"},
      {"2016-06-01T10:00:00,", "expected 1 to 9 fraction digits"},
      {"2016-06-01T10:00UTC+0100", "expected +HH:mm after the zone"},
      {"2016-06-01T10:00+02:00:6", "expected 2-digit offset seconds"},
      {"2016-06-01T10:00+02:00:60", "offset seconds out of range"},
      {"2016-06-01T10:00+18:00:01", "offset out of range (at most 18 hours)"},
      {"2016-06-01T10:00Mars/Olympus", "unknown time zone id"},
      {"2016-06-01T10:00Europe/../Paris", "expected a time zone"},
  };
  for (const auto& [text, problem] : cases) {
    absl::Status status = ParseIsoDate(text).status();
    EXPECT_EQ(status.message(),
              absl::StrCat("invalid ISO 8601 date [", text, "]: ", problem))
        << text;
  }
}

TEST(ParseIsoDateTest, RejectsMalformedOrImpossibleDates) {
  const char* const rejected[] = {
      "",
      "201",
      "20161",
      "+2016",
      "-2016",
      " 2016",
      "2016 ",
      "2016-",
      "2016-6",
      "2016-6-01",
      "2016-06-1",
      "2016-06-",
      "2016/06/01",
      "2016-00-01",
      "2016-13-01",
      "2016-06-00",
      "2016-06-31",
      "2016-04-31",
      "2016-06-01t10:00",
      "2016-06-01 10:00",
      "2016-06-01T1",
      "2016-06-01T100",
      "2016-06-01T10:0",
      "2016-06-01T10:00:0",
      "2016-06-01T24:00",
      "2016-06-01T24",
      "2016-06-01T23:60",
      "2016-06-01T23:59:60",
      "2016-06-01T99:99:99",
      "2016-06-01T10.5",
      "2016-06-01T10:00.5",
      "2016-06-01T10:00:00.",
      "2016-06-01T10:00:00.1234567890",
      "2016-06-01T10:00:00.12a",
      "2016-06-01T10:00:00z",
      "2016-06-01TZ",
      "2016-06-01T10:00:00,",
      "2016-06-01T10:00:00,1234567890",
      "2016-06-01T10:00:00.5,6",
      "2016-06-01T10:00:00,5.5",
      "2016-06-01T10:00:00utc",
      "2016-06-01T10:00:00UTC0",
      "2016-06-01T10:00:00UTC+01",
      "2016-06-01T10:00:00UTC+0100",
      "2016-06-01T10:00:00GMT0+01:00",
      "2016-06-01T10:00:00UTCZ",
      "2016-06-01T10:00:00Mars/Olympus",
      "2016-06-01T10:00+02:00:",
      "2016-06-01T10:00+02:00:6",
      "2016-06-01T10:00+02:00:60",
      "2016-06-01T10:00+0200:00",
      "2016-06-01T10:00+18:00:01",
      "2016-06-01UTC",
      "2016-06-01T10:00:00ZZ",
      "2016-06-01T10:00:00Z ",
      "2016-06-01Z",
      "2016-06-01+02:00",
      "2016-06-01T10:00+2",
      "2016-06-01T10:00+020",
      "2016-06-01T10:00+02:",
      "2016-06-01T10:00+02:0",
      "2016-06-01T10:00+02:000",
      "2016-06-01T10:00+02:60",
      "2016-06-01T10:00+19:00",
      "2016-06-01T10:00+18:01",
      "2016-06-01T10:00-18:30",
      "2016-06-01T10:00+",
      "1464739200000",
      "now",
      "2016-06-01||+1d",
      "２０１６",
  };
  for (const char* text : rejected) {
    absl::StatusOr<int64_t> result = ParseIsoDate(text);
    ASSERT_FALSE(result.ok()) << text << " parsed as " << *result;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(result.status().message().find(absl::StrCat("[", text, "]")),
              absl::string_view::npos)
        << result.status();
  }
}

TEST(ParseIsoDateTest, ShortensHugeInputsInTheMessage) {
  const std::string text = "2016-06-01T" + std::string(100000, '9');
  absl::StatusOr<int64_t> result = ParseIsoDate(text);
  ASSERT_FALSE(result.ok());
  EXPECT_LT(result.status().message().size(), 200u) << result.status();
}

// ------------------------------------------------------------ ParseEpochMillis

TEST(ParseEpochMillisTest, AcceptsIntegersAndFractions) {
  const Case cases[] = {
      {"0", 0},
      {"-0", 0},
      {"1464739200000", 1464739200000},
      {"-1000", -1000},
      {"-1", -1},
      {"007", 7},
      {"1.9", 1},
      {"1.0", 1},
      {"0.999", 0},
      // The fraction is dropped towards negative infinity.
      {"-1.5", -2},
      {"-0.5", -1},
      {"-1.0", -1},
      {"-1.000", -1},
      {"-1.0001", -2},
      {"8640000000000000", kMaxEpochMillis},
      {"8640000000000000.9", kMaxEpochMillis},
      {"-8640000000000000", kMinEpochMillis},
      {"-8639999999999999.5", kMinEpochMillis},
      {"000000000000000000000000000000000000000042", 42},
      {"1.00000000000000000000000000000000000000000", 1},
  };
  for (const Case& c : cases) {
    absl::StatusOr<int64_t> result = ParseEpochMillis(c.text);
    ASSERT_TRUE(result.ok()) << c.text << ": " << result.status();
    EXPECT_EQ(*result, c.expected) << c.text;
  }
}

TEST(ParseEpochMillisTest, RejectsMalformedOrOutOfRange) {
  const char* const rejected[] = {
      "",
      "-",
      "+1",
      "--1",
      "1.",
      ".5",
      "-.5",
      "1.2.3",
      "1e3",
      "0x10",
      " 1",
      "1 ",
      "1,5",
      "NaN",
      "8640000000000001",
      "-8640000000000001",
      "-8640000000000000.1",
      "9223372036854775807",
      "-9223372036854775808",
      "9223372036854775808",
      "9999999999999999999999",
      "-9999999999999999999999",
      "99999999999999999999999999999999999999999999999999999999999999",
      "2016-06-01",
  };
  for (const char* text : rejected) {
    absl::StatusOr<int64_t> result = ParseEpochMillis(text);
    ASSERT_FALSE(result.ok()) << text << " parsed as " << *result;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(ParseEpochMillisTest, RoundTripsRandomValues) {
  std::mt19937_64 rng(20160209);
  std::uniform_int_distribution<int64_t> any(kMinEpochMillis, kMaxEpochMillis);
  for (int i = 0; i < 100000; ++i) {
    const int64_t value = any(rng);
    absl::StatusOr<int64_t> result = ParseEpochMillis(absl::StrCat(value));
    ASSERT_TRUE(result.ok()) << value;
    ASSERT_EQ(*result, value);
  }
}

// -------------------------------------------------------------- ParseDateParam

TEST(ParseDateParamTest, TriesIsoBeforeEpochMillis) {
  // Four digits are a year...
  EXPECT_EQ(*ParseDateParam("2000", kNow), 946684800000);
  EXPECT_EQ(*ParseDateParam("1970", kNow), 0);
  EXPECT_EQ(*ParseDateParam("0000", kNow), Utc(0, 1, 1));
  EXPECT_EQ(*ParseDateParam("9999", kNow), Utc(9999, 1, 1));
  EXPECT_EQ(*ParseDateParam("0042", kNow), Utc(42, 1, 1));
  // ...anything else numeric is epoch milliseconds.
  EXPECT_EQ(*ParseDateParam("200", kNow), 200);
  EXPECT_EQ(*ParseDateParam("20000", kNow), 20000);
  EXPECT_EQ(*ParseDateParam("0", kNow), 0);
  EXPECT_EQ(*ParseDateParam("1464739200000", kNow), 1464739200000);
  EXPECT_EQ(*ParseDateParam("1464739200000.7", kNow), 1464739200000);
  // A leading '-' is never ISO, so negative epochs work, four digits or not.
  EXPECT_EQ(*ParseDateParam("-1000", kNow), -1000);
  EXPECT_EQ(*ParseDateParam("-2000", kNow), -2000);
  EXPECT_EQ(*ParseDateParam("-1.5", kNow), -2);
}

TEST(ParseDateParamTest, AcceptsIsoDates) {
  EXPECT_EQ(*ParseDateParam("2016-06-01", kNow), 1464739200000);
  EXPECT_EQ(*ParseDateParam("2016-06-01T00:00", kNow), 1464739200000);
  EXPECT_EQ(*ParseDateParam("2016-06-01T00:00:00Z", kNow), 1464739200000);
  EXPECT_EQ(*ParseDateParam("2016-06-01T00:00:00.123+02:00", kNow),
            *ParseIsoDate("2016-05-31T22:00:00.123Z"));
}

TEST(ParseDateParamTest, AddsAndSubtractsEachUnit) {
  const Case cases[] = {
      {"now", kNow},
      {"now+0d", kNow},
      {"now-0y", kNow},
      {"now+1y", Utc(2017, 2, 9, 12, 34, 56, 789)},
      {"now-1y", Utc(2015, 2, 9, 12, 34, 56, 789)},
      {"now+1M", Utc(2016, 3, 9, 12, 34, 56, 789)},
      {"now-1M", Utc(2016, 1, 9, 12, 34, 56, 789)},
      {"now-2M", Utc(2015, 12, 9, 12, 34, 56, 789)},
      {"now+11M", Utc(2017, 1, 9, 12, 34, 56, 789)},
      {"now-14M", Utc(2014, 12, 9, 12, 34, 56, 789)},
      {"now+1w", Utc(2016, 2, 16, 12, 34, 56, 789)},
      {"now-1w", Utc(2016, 2, 2, 12, 34, 56, 789)},
      {"now+1d", Utc(2016, 2, 10, 12, 34, 56, 789)},
      {"now-1d", Utc(2016, 2, 8, 12, 34, 56, 789)},
      {"now+1h", Utc(2016, 2, 9, 13, 34, 56, 789)},
      {"now-1h", Utc(2016, 2, 9, 11, 34, 56, 789)},
      {"now+1H", Utc(2016, 2, 9, 13, 34, 56, 789)},
      {"now-1H", Utc(2016, 2, 9, 11, 34, 56, 789)},
      {"now+1m", Utc(2016, 2, 9, 12, 35, 56, 789)},
      {"now-1m", Utc(2016, 2, 9, 12, 33, 56, 789)},
      {"now+1s", Utc(2016, 2, 9, 12, 34, 57, 789)},
      {"now-1s", Utc(2016, 2, 9, 12, 34, 55, 789)},
      // N defaults to 1.
      {"now+y", Utc(2017, 2, 9, 12, 34, 56, 789)},
      {"now-M", Utc(2016, 1, 9, 12, 34, 56, 789)},
      {"now+w", Utc(2016, 2, 16, 12, 34, 56, 789)},
      {"now-d", Utc(2016, 2, 8, 12, 34, 56, 789)},
      {"now+h", Utc(2016, 2, 9, 13, 34, 56, 789)},
      {"now+H", Utc(2016, 2, 9, 13, 34, 56, 789)},
      {"now-m", Utc(2016, 2, 9, 12, 33, 56, 789)},
      {"now+s", Utc(2016, 2, 9, 12, 34, 57, 789)},
      // Larger amounts, crossing days, months and years.
      {"now+36h", Utc(2016, 2, 11, 0, 34, 56, 789)},
      {"now-13h", Utc(2016, 2, 8, 23, 34, 56, 789)},
      {"now+1440m", Utc(2016, 2, 10, 12, 34, 56, 789)},
      {"now-86400s", Utc(2016, 2, 8, 12, 34, 56, 789)},
      {"now+366d", Utc(2017, 2, 9, 12, 34, 56, 789)},
      {"now-52w", Utc(2015, 2, 10, 12, 34, 56, 789)},
      {"now+12M", Utc(2017, 2, 9, 12, 34, 56, 789)},
      {"now+007d", Utc(2016, 2, 16, 12, 34, 56, 789)},
      {"now+1000y", Utc(3016, 2, 9, 12, 34, 56, 789)},
      {"now-2016y", Utc(0, 2, 9, 12, 34, 56, 789)},
      {"now-2017y", Utc(-1, 2, 9, 12, 34, 56, 789)},
      // Several operations apply left to right.
      {"now+1d-1d", kNow},
      {"now+1y-1M+1w-1d+1h-1m+1s", Utc(2017, 1, 15, 13, 33, 57, 789)},
      // Java's date range is wider than ours: only the result must fit.
      {"now+200000y-200000y", kNow},
      {"now+900000000y-900000000y", kNow},
      {"now-2147483647h+2147483647h", kNow},
      {"now+2147483647h", kNow + int64_t{2147483647} * 3600000},  // year 246994
      {"now+2147483647s", kNow + int64_t{2147483647} * 1000},
  };
  for (const Case& c : cases) {
    absl::StatusOr<int64_t> result = ParseDateParam(c.text, kNow);
    ASSERT_TRUE(result.ok()) << c.text << ": " << result.status();
    EXPECT_EQ(*result, c.expected)
        << c.text << " gave " << FormatIsoMillis(*result);
  }
}

TEST(ParseDateParamTest, RoundsDownToEachUnit) {
  const Case cases[] = {
      {"now/y", Utc(2016, 1, 1)},
      {"now/M", Utc(2016, 2, 1)},
      {"now/w", Utc(2016, 2, 8)},  // kNow is a Tuesday; weeks start on Monday
      {"now/d", Utc(2016, 2, 9)},
      {"now/h", Utc(2016, 2, 9, 12)},
      {"now/H", Utc(2016, 2, 9, 12)},
      {"now/m", Utc(2016, 2, 9, 12, 34)},
      {"now/s", Utc(2016, 2, 9, 12, 34, 56)},
      {"now/1d", Utc(2016, 2, 9)},  // an explicit 1 is allowed
      {"now/01d", Utc(2016, 2, 9)},
      {"now-1h/h", Utc(2016, 2, 9, 11)},
      {"now-1d/d", Utc(2016, 2, 8)},
      {"now/d+1h", Utc(2016, 2, 9, 1)},
      {"now/M-1d", Utc(2016, 1, 31)},
      {"now/y-1s", Utc(2015, 12, 31, 23, 59, 59)},
      {"now/d/w/M/y", Utc(2016, 1, 1)},
      {"now-1d/d+2h-30m", Utc(2016, 2, 8, 1, 30)},
  };
  for (const Case& c : cases) {
    absl::StatusOr<int64_t> result = ParseDateParam(c.text, kNow);
    ASSERT_TRUE(result.ok()) << c.text << ": " << result.status();
    EXPECT_EQ(*result, c.expected)
        << c.text << " gave " << FormatIsoMillis(*result);
  }
}

TEST(ParseDateParamTest, RoundsWeeksToMonday) {
  const Case cases[] = {
      {"2016-02-08T10:00||/w", Utc(2016, 2, 8)},  // a Monday stays
      {"2016-02-08||/w", Utc(2016, 2, 8)},
      {"2016-02-14T23:59:59.999||/w", Utc(2016, 2, 8)},  // Sunday
      {"2016-02-15||/w", Utc(2016, 2, 15)},
      {"2016-03-02||/w", Utc(2016, 2, 29)},   // across a month end
      {"2016-01-01||/w", Utc(2015, 12, 28)},  // across a year end
      {"1970-01-01||/w", Utc(1969, 12, 29)},  // day 0 is a Thursday
      {"1969-12-28||/w", Utc(1969, 12, 22)},  // before the epoch
      {"0000-01-01||/w", Utc(-1, 12, 27)},
  };
  for (const Case& c : cases) {
    absl::StatusOr<int64_t> result = ParseDateParam(c.text, kNow);
    ASSERT_TRUE(result.ok()) << c.text << ": " << result.status();
    EXPECT_EQ(*result, c.expected)
        << c.text << " gave " << FormatIsoMillis(*result);
    EXPECT_EQ(absl::GetWeekday(absl::ToCivilDay(absl::FromUnixMillis(*result),
                                                absl::UTCTimeZone())),
              absl::Weekday::monday)
        << c.text;
  }
}

TEST(ParseDateParamTest, RoundsNegativeTimesDown) {
  EXPECT_EQ(*ParseDateParam("-1||/s", kNow), -1000);
  EXPECT_EQ(*ParseDateParam("-1000||/s", kNow), -1000);
  EXPECT_EQ(*ParseDateParam("-1||/m", kNow), -60000);
  EXPECT_EQ(*ParseDateParam("-1||/h", kNow), -3600000);
  EXPECT_EQ(*ParseDateParam("-1||/d", kNow), -86400000);
  EXPECT_EQ(*ParseDateParam("-1||/M", kNow), Utc(1969, 12, 1));
  EXPECT_EQ(*ParseDateParam("-1||/y", kNow), Utc(1969, 1, 1));
  EXPECT_EQ(*ParseDateParam("now/d", -1), -86400000);
  EXPECT_EQ(*ParseDateParam("now/s", -1500), -2000);
}

TEST(ParseDateParamTest, AnchorsOnDates) {
  const Case cases[] = {
      {"2016-06-01||+1h", Utc(2016, 6, 1, 1)},
      {"2016-06-01||", Utc(2016, 6, 1)},
      {"2016-06-01T10:20:30.456Z||/d", Utc(2016, 6, 1)},
      {"2016-06-01T00:30+02:00||/d", Utc(2016, 5, 31)},
      {"2016||+1M", Utc(2016, 2, 1)},  // "2016" is a year here too
      {"1464739200000||+1d", Utc(2016, 6, 2)},
      {"1464739200000.9||+1s", 1464739201000},
      {"-1000||+1s", 0},
      {"20000||/s", 20000},
      {"9999-12-31||+1d", Utc(10000, 1, 1)},  // beyond 9999 is fine
      {"0000-01-01||-1m", Utc(-1, 12, 31, 23, 59)},
  };
  for (const Case& c : cases) {
    absl::StatusOr<int64_t> result = ParseDateParam(c.text, kNow);
    ASSERT_TRUE(result.ok()) << c.text << ": " << result.status();
    EXPECT_EQ(*result, c.expected)
        << c.text << " gave " << FormatIsoMillis(*result);
  }
}

TEST(ParseDateParamTest, ClampsDaysWhenAddingMonthsOrYears) {
  const Case cases[] = {
      {"2016-01-31||+1M", Utc(2016, 2, 29)},  // leap year
      {"2015-01-31||+1M", Utc(2015, 2, 28)},
      {"2016-03-31||-1M", Utc(2016, 2, 29)},
      {"2016-05-31||+1M", Utc(2016, 6, 30)},
      {"2016-01-31||+2M", Utc(2016, 3, 31)},
      {"2016-01-31||+1M+1M", Utc(2016, 3, 29)},  // the clamp sticks
      {"2016-08-31||-6M", Utc(2016, 2, 29)},
      {"2016-12-15||+1M", Utc(2017, 1, 15)},
      {"2016-01-15||-1M", Utc(2015, 12, 15)},
      {"2016-01-31T10:11:12.345||+1M", Utc(2016, 2, 29, 10, 11, 12, 345)},
      {"2016-02-29||+1y", Utc(2017, 2, 28)},
      {"2016-02-29||-1y", Utc(2015, 2, 28)},
      {"2016-02-29||+4y", Utc(2020, 2, 29)},
      {"2016-02-29||-4y", Utc(2012, 2, 29)},
      {"2000-02-29||+100y", Utc(2100, 2, 28)},  // 2100 is not a leap year
      {"2000-02-29||+400y", Utc(2400, 2, 29)},
      {"2016-02-29||+12M", Utc(2017, 2, 28)},
  };
  for (const Case& c : cases) {
    absl::StatusOr<int64_t> result = ParseDateParam(c.text, kNow);
    ASSERT_TRUE(result.ok()) << c.text << ": " << result.status();
    EXPECT_EQ(*result, c.expected)
        << c.text << " gave " << FormatIsoMillis(*result);
  }
}

TEST(ParseDateParamTest, AddsDaysAcrossLeapDays) {
  EXPECT_EQ(*ParseDateParam("2016-02-28||+1d", kNow), Utc(2016, 2, 29));
  EXPECT_EQ(*ParseDateParam("2016-02-28||+2d", kNow), Utc(2016, 3, 1));
  EXPECT_EQ(*ParseDateParam("2015-02-28||+1d", kNow), Utc(2015, 3, 1));
  EXPECT_EQ(*ParseDateParam("2000-02-28||+1d", kNow), Utc(2000, 2, 29));
  EXPECT_EQ(*ParseDateParam("1900-02-28||+1d", kNow), Utc(1900, 3, 1));
  EXPECT_EQ(*ParseDateParam("2016-01-01||+366d", kNow), Utc(2017, 1, 1));
  EXPECT_EQ(*ParseDateParam("2015-01-01||+365d", kNow), Utc(2016, 1, 1));
}

TEST(ParseDateParamTest, StaysWithinTheRepresentableRange) {
  EXPECT_EQ(*ParseDateParam("now", kMaxEpochMillis), kMaxEpochMillis);
  EXPECT_EQ(*ParseDateParam("now", kMinEpochMillis), kMinEpochMillis);
  EXPECT_EQ(*ParseDateParam("now/d", kMinEpochMillis), kMinEpochMillis);
  EXPECT_EQ(*ParseDateParam("8640000000000000||-1s", kNow),
            kMaxEpochMillis - 1000);
  EXPECT_EQ(*ParseDateParam("now+270000y", 0), Utc(271970, 1, 1));
  ExpectDateParamError("now+1s", kMaxEpochMillis);
  ExpectDateParamError("now-1s", kMinEpochMillis);
  ExpectDateParamError("now/y", kMinEpochMillis);  // -271821-01-01
  ExpectDateParamError("now", kMaxEpochMillis + 1);
  ExpectDateParamError("now", kInt64Max);
  ExpectDateParamError("now", kInt64Min);
  ExpectDateParamError("now/d", kInt64Min);
  ExpectDateParamError("now/w", kInt64Min);
  ExpectDateParamError("now+1M", kInt64Max);
  ExpectDateParamError("now-1y", kInt64Min);
  ExpectDateParamError("8640000000000000||+1s", kNow);
  ExpectDateParamError("-8640000000000000||-1s", kNow);
  ExpectDateParamError("9999-12-31||+300000y", kNow);
  ExpectDateParamError("0000-01-01||-300000y", kNow);
}

TEST(ParseDateParamTest, RejectsHugeInputsCleanly) {
  const char* const rejected[] = {
      // Amounts beyond Java's int (Integer.parseInt).
      "now+99999999999y",
      "now-100000000000000d",
      "now+2147483648d",
      "now+2147483648s",  // 68 years would fit, but Java's int does not
      "now-2147483648m",
      "now+99999999999999999999999999999999999999999s",
      // Within int, but beyond Java's years or our range.
      "now+2147483647y",
      "now-2147483647y",
      "now+2147483647M",
      "now-2147483647M",
      "now+2147483647w",
      "now-2147483647w",
      "now+2147483647d",
      "now-2147483647d",
      "now+2147483647h+2147483647H",
      "now+999999999y",
      "now+1000000000y",
      "now-999999999y",
      "now+300000000y",  // overflows int64 milliseconds
      "now+290000000y",  // fits int64 milliseconds, not our range
      "now+280000y",
      "now-280000y",
      // Epoch millis beyond int64 and beyond our range.
      "9999999999999999999999",
      "-9999999999999999999999",
      "9223372036854775808",
      "8640000000000001",
      "9999999999999999999999||+1d",
  };
  for (const char* text : rejected) ExpectDateParamError(text, kNow);

  // Every step must stay within Java's years -999999999..999999999, even if
  // later steps would come back.
  std::string there_and_back = "now";
  for (int i = 0; i < 30; ++i) there_and_back += "+2147483647w";
  for (int i = 0; i < 30; ++i) there_and_back += "-2147483647w";
  ExpectDateParamError(there_and_back, kNow);
  // Fewer steps stay within Java's years: fine.
  std::string within = "now";
  for (int i = 0; i < 20; ++i) within += "+2147483647w";
  for (int i = 0; i < 20; ++i) within += "-2147483647w";
  EXPECT_EQ(*ParseDateParam(within, kNow), kNow);
}

TEST(ParseDateParamTest, RejectsMalformedInput) {
  const char* const rejected[] = {
      "",
      " ",
      "abc",
      "now ",
      " now",
      "Now",
      "NOW",
      "nowx",
      "now+",
      "now-",
      "now/",
      "now+1",
      "now-12",
      "now/1",
      "now+1x",
      "now+1D",
      "now+1Y",
      "now+1W",
      "now+1S",
      "now/2d",
      "now/0d",
      "now/10y",
      "now-1ms",  // 'm' is minutes; 's' then starts no operation
      "now+1.5d",
      "now+-1d",
      "now-+1d",
      "now*1d",
      "now+1d ",
      "now + 1d",
      "now||+1d",
      "now||",
      "-1d",
      "+1d",
      "1d",
      "/d",
      "||+1d",
      "||",
      "2016-06-01|+1d",
      "2016-06-01||1d",
      "2016-06-01||d",
      "2016-06-01||+1d||+1d",
      "2016-13-01||+1d",
      "2016-02-30||+1d",
      "now-1h/2h",
      "2016-06-01TZ",
      "2016-06-01 00:00:00",
      "1.5e3",
      "16-06-01",
      "2016-06-01T10:00+19:00",
  };
  for (const char* text : rejected) ExpectDateParamError(text, kNow);
}

TEST(ParseDateParamTest, QuotesTheWholeTextInTheReason) {
  const std::string text(500, 'x');
  ExpectDateParamError(text, kNow);
}

TEST(ParseDateParamTest, MatchesParseIsoDateAndParseEpochMillis) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> iso_range(Utc(0, 1, 1),
                                                   Utc(10000, 1, 1) - 1);
  std::uniform_int_distribution<int64_t> any(kMinEpochMillis, kMaxEpochMillis);
  for (int i = 0; i < 20000; ++i) {
    const int64_t a = iso_range(rng);
    ASSERT_EQ(*ParseDateParam(FormatIsoMillis(a), kNow), a);
    ASSERT_EQ(*ParseDateParam(FormatIsoMillis(a) + "||", kNow), a);
    const int64_t b = any(rng);
    ASSERT_EQ(*ParseDateParam(absl::StrCat(b), kNow), b);
    ASSERT_EQ(*ParseDateParam(absl::StrCat(b, "||"), kNow), b);
    ASSERT_EQ(*ParseDateParam("now", b), b);
  }
}

// ------------------------------------------------------------- FormatIsoMillis

TEST(FormatIsoMillisTest, FormatsKnownValues) {
  EXPECT_EQ(FormatIsoMillis(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoMillis(1454943600000), "2016-02-08T15:00:00.000Z");
  EXPECT_EQ(FormatIsoMillis(1464732000123), "2016-05-31T22:00:00.123Z");
  EXPECT_EQ(FormatIsoMillis(1), "1970-01-01T00:00:00.001Z");
  EXPECT_EQ(FormatIsoMillis(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatIsoMillis(-1000), "1969-12-31T23:59:59.000Z");
  EXPECT_EQ(FormatIsoMillis(-1001), "1969-12-31T23:59:58.999Z");
  EXPECT_EQ(FormatIsoMillis(-86400000), "1969-12-31T00:00:00.000Z");
  EXPECT_EQ(FormatIsoMillis(-86400001), "1969-12-30T23:59:59.999Z");
  EXPECT_EQ(FormatIsoMillis(951782400000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatIsoMillis(-62167219200000), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoMillis(-62167219200001), "-0001-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatIsoMillis(Utc(42, 3, 4, 5, 6, 7, 8)),
            "0042-03-04T05:06:07.008Z");
  EXPECT_EQ(FormatIsoMillis(253402300799999), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatIsoMillis(253402300800000), "+10000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoMillis(kMaxEpochMillis), "+275760-09-13T00:00:00.000Z");
  EXPECT_EQ(FormatIsoMillis(kMinEpochMillis), "-271821-04-20T00:00:00.000Z");
  // As Java's Instant.ofEpochMilli prints the int64 limits.
  EXPECT_EQ(FormatIsoMillis(kInt64Max), "+292278994-08-17T07:12:55.807Z");
  EXPECT_EQ(FormatIsoMillis(kInt64Min), "-292275055-05-16T16:47:04.192Z");
}

TEST(FormatIsoMillisTest, MatchesAbseilOverTheWholeRange) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> any(kMinEpochMillis, kMaxEpochMillis);
  std::uniform_int_distribution<int64_t> near_epoch(-100LL * 365 * 86400000,
                                                    100LL * 365 * 86400000);
  std::uniform_int_distribution<int64_t> all(kInt64Min, kInt64Max);
  for (int i = 0; i < 100000; ++i) {
    for (int64_t value : {any(rng), near_epoch(rng), all(rng)}) {
      ASSERT_EQ(FormatIsoMillis(value), OracleFormat(value)) << value;
    }
  }
  for (int64_t value :
       {kMinEpochMillis, kMaxEpochMillis, kInt64Min, kInt64Max, int64_t{0},
        int64_t{-1}, Utc(0, 1, 1) - 1, Utc(10000, 1, 1)}) {
    EXPECT_EQ(FormatIsoMillis(value), OracleFormat(value)) << value;
  }
}

TEST(FormatIsoMillisTest, RoundTripsThroughParseIsoDate) {
  std::mt19937_64 rng(1454943600000);
  std::uniform_int_distribution<int64_t> iso_range(Utc(0, 1, 1),
                                                   Utc(10000, 1, 1) - 1);
  for (int i = 0; i < 200000; ++i) {
    const int64_t value = iso_range(rng);
    const std::string text = FormatIsoMillis(value);
    absl::StatusOr<int64_t> parsed = ParseIsoDate(text);
    ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status();
    ASSERT_EQ(*parsed, value) << text;
  }
  // Every millisecond around the epoch and around each end of 0000..9999.
  for (int64_t base : {int64_t{0}, Utc(0, 1, 1), Utc(10000, 1, 1)}) {
    for (int64_t value = base - 2000; value < base + 2000; ++value) {
      const std::string text = FormatIsoMillis(value);
      const bool iso_year = value >= Utc(0, 1, 1) && value < Utc(10000, 1, 1);
      absl::StatusOr<int64_t> parsed = ParseIsoDate(text);
      ASSERT_EQ(parsed.ok(), iso_year) << text;
      if (iso_year) {
        ASSERT_EQ(*parsed, value) << text;
      }
    }
  }
}

}  // namespace
}  // namespace clout

// Region ids, read as java.time reads a local date-time in a zone
// (ZonedDateTime.of): Debian's tzdata, through Abseil.
TEST(RegionZoneTest, LocalTimesInARegion) {
  auto same = [](absl::string_view local, absl::string_view utc) {
    absl::StatusOr<int64_t> a = clout::ParseIsoDate(local);
    absl::StatusOr<int64_t> b = clout::ParseIsoDate(utc);
    ASSERT_TRUE(a.ok()) << local << ": " << a.status();
    ASSERT_TRUE(b.ok()) << utc;
    EXPECT_EQ(*a, *b) << local;
  };
  same("2016-02-08T15:00:00Europe/Paris", "2016-02-08T14:00:00Z");
  same("2016-07-01T12:00:00Europe/Paris", "2016-07-01T10:00:00Z");
  same("2016-02-08T15:00:00.123Europe/Paris", "2016-02-08T14:00:00.123Z");
  same("2016-02-08T15Europe/Paris", "2016-02-08T14:00:00Z");
  same("2016-02-08T10:00:00America/New_York", "2016-02-08T15:00:00Z");
  same("2016-02-08T10:00:00EST", "2016-02-08T15:00:00Z");
  same("2016-02-08T10:00:00Etc/GMT+5", "2016-02-08T15:00:00Z");
  same("2016-02-08T10:00:00Zulu", "2016-02-08T10:00:00Z");
  // A gap (clocks forward at 02:00): later by the gap's length.
  same("2016-03-27T02:30:00Europe/Paris", "2016-03-27T01:30:00Z");
  same("2016-03-13T02:30:00America/New_York", "2016-03-13T07:30:00Z");
  // An overlap (clocks back at 03:00): the earlier offset.
  same("2016-10-30T02:30:00Europe/Paris", "2016-10-30T00:30:00Z");
  same("2016-11-06T01:30:00America/New_York", "2016-11-06T05:30:00Z");
  // The offset forms still read as before.
  same("2016-02-08T15:00:00UTC", "2016-02-08T15:00:00Z");
  same("2016-02-08T15:00:00GMT+01:00", "2016-02-08T14:00:00Z");
}

TEST(RegionZoneTest, UnknownOrMalformedIdsAreRefused) {
  for (absl::string_view text :
       {"2016-02-08T15:00:00Mars/Olympus", "2016-02-08T15:00:00europe/paris",
        "2016-02-08T15:00:00../../etc/passwd", "2016-02-08T15:00:00Europe/../Paris",
        "2016-02-08T15:00:00Europe//Paris", "2016-02-08T15:00:00localtime",
        "2016-02-08T15:00:00Fixed/UTC+01:00:00", "2016-02-08T15:00:00Europe/Paris ",
        "2016-02-08Europe/Paris", "2016-02-08T15:00:00E"}) {
    EXPECT_FALSE(clout::ParseIsoDate(text).ok()) << text;
  }
  absl::StatusOr<int64_t> r =
      clout::ParseDateParam("2016-02-08T15:00:00Mars/Olympus", 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(clout::EsErrorOf(r.status()).root_cause_reason,
            "failed to parse date field [2016-02-08T15:00:00Mars/Olympus] "
            "with format [strict_date_optional_time||epoch_millis]");
  // Date math anchored on a region-zoned date.
  absl::StatusOr<int64_t> math =
      clout::ParseDateParam("2016-02-08T15:00:00Europe/Paris||+1h", 0);
  ASSERT_TRUE(math.ok());
  EXPECT_EQ(*math, *clout::ParseIsoDate("2016-02-08T15:00:00Z"));
}
