// Randomised differential tests: the fast executor against the naive
// reference executor, over thousands of generated stores and requests.
// Requests go through both request parsers (body and parameter mode), and
// responses are compared byte for byte. A failure prints the seed and the
// smallest failing request found by shrinking.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <utility>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/dates.h"
#include "engine/executor.h"
#include "engine/reference_executor.h"
#include "engine/request.h"
#include "engine/response.h"
#include "engine/store.h"
#include "gtest/gtest.h"
#include "storage/fault_env.h"
#include "storage/snapshot.h"

namespace clout {
namespace {

constexpr int64_t kBase = 1454943600000;  // 2016-02-08T15:00:00Z

// Small value sets so ties, equal thresholds and equal timestamps are common.
constexpr double kScores[] = {0.0, -0.0, 0.5, 1.25, 1.25, 10.0, 33.3333,
                              50.0, 94.1386, 100.0, 2.5e-5};
constexpr const char* kFieldNames[] = {"host", "user", "kpi_indicator",
                                       "client.ip", "timestamp"};
constexpr const char* kFieldValues[] = {"a", "b", "B", "web-1", "web-10",
                                        "", "\xc3\xa9t\xc3\xa9", "z z"};

struct Scenario {
  InfluencerStore* store;
  std::vector<std::string> jobs;
  std::vector<int64_t> timestamps;
};

void BuildStore(std::mt19937_64& random, InfluencerStore& store,
                Scenario* scenario) {
  auto pick = [&](size_t n) { return static_cast<size_t>(random() % n); };
  int jobs = 1 + static_cast<int>(pick(3));
  int batches = 1 + static_cast<int>(pick(3));
  int ts_count = 1 + static_cast<int>(pick(8));
  for (int t = 0; t < ts_count; ++t) {
    scenario->timestamps.push_back(kBase +
                                   static_cast<int64_t>(pick(20)) * 600000 -
                                   5 * 600000);
  }
  for (int j = 0; j < jobs; ++j) scenario->jobs.push_back(absl::StrCat("job", j));
  // A job with no influencers at all (only registered).
  if (pick(4) == 0) {
    store.RegisterJob("empty-job");
    scenario->jobs.push_back("empty-job");
  }
  // Rows loaded in time order (the usual dump) make the TimeIndex's time
  // order the identity; otherwise it is a permutation.
  const bool time_ordered = pick(3) == 0;
  if (time_ordered) batches = 1;
  // Some stores have documents without a score, initial score or
  // probability: missing doubles sort last in both directions.
  const size_t missing_one_in = pick(3) == 0 ? 4 : 0;
  auto maybe_missing = [&](double value) {
    return missing_one_in != 0 && pick(missing_one_in) == 0 ? MissingDouble()
                                                           : value;
  };
  for (int b = 0; b < batches; ++b) {
    MutationBatch batch;
    int rows = static_cast<int>(pick(b == 0 ? 60 : 25));
    std::vector<std::pair<std::string, InfluencerFields>> pending;
    for (int r = 0; r < rows; ++r) {
      InfluencerFields row;
      row.field_name = kFieldNames[pick(std::size(kFieldNames))];
      row.field_value = kFieldValues[pick(std::size(kFieldValues))];
      row.timestamp = scenario->timestamps[pick(scenario->timestamps.size())];
      row.influencer_score = maybe_missing(kScores[pick(std::size(kScores))]);
      row.initial_influencer_score =
          maybe_missing(kScores[pick(std::size(kScores))]);
      row.probability = maybe_missing(kScores[pick(std::size(kScores))] / 100);
      row.bucket_span = std::vector<int64_t>{0, 60, 600}[pick(3)];
      row.is_interim = pick(4) == 0;
      pending.emplace_back(scenario->jobs[pick(jobs)], row);
    }
    if (time_ordered) {
      std::stable_sort(pending.begin(), pending.end(),
                       [](const auto& a, const auto& b) {
                         return a.second.timestamp < b.second.timestamp;
                       });
    }
    // Later batches are random mutation histories: bulk items, deletions
    // by _id (of rows staged or stored), jobs replaced or deleted.
    const bool history = b > 0 && pick(2) == 0;
    MutationBatch mutations(pick(2) == 0 ? MutationMode::kBulk
                                         : MutationMode::kLoad);
    MutationBatch& target = history ? mutations : batch;
    for (const auto& [job, row] : pending) {
      if (history && pick(6) == 0) {
        std::optional<InfluencerResultId> id =
            ParseInfluencerResultId(InfluencerDocumentId(job, row));
        target.DeleteInfluencer(*id);
      }
      if (history && pick(40) == 0) target.ReplaceJob(job);
      if (history && pick(60) == 0 && target.mode() == MutationMode::kBulk) {
        target.DeleteJob(job);
      }
      if (history && pick(8) == 0 && target.mode() == MutationMode::kBulk) {
        target.CreateInfluencer(job, row);
      } else {
        target.AddInfluencer(job, row);
      }
    }
    ASSERT_TRUE(store.Apply(std::move(target)).ok());
  }
}

// A random request, as text of one of the two modes.
struct TextRequest {
  bool body_mode = true;
  std::string job_id;
  std::string body;
  std::vector<RequestParam> params;
};

std::string DateText(std::mt19937_64& random, int64_t millis) {
  switch (random() % 3) {
    case 0: return absl::StrCat(millis);
    case 1: return FormatIsoMillis(millis);
    default: return absl::StrCat(FormatIsoMillis(millis - millis % 3600000),
                                 "||+", (millis % 3600000) / 60000, "m");
  }
}

InfluencersRequest RandomRequest(std::mt19937_64& random,
                                 const Scenario& scenario) {
  auto pick = [&](size_t n) { return static_cast<size_t>(random() % n); };
  InfluencersRequest request;
  request.job_id = scenario.jobs[pick(scenario.jobs.size())];
  auto boundary = [&]() {
    int64_t ts = scenario.timestamps[pick(scenario.timestamps.size())];
    // Cut exactly at, just before or just after existing timestamps.
    return ts + static_cast<int64_t>(pick(3)) - 1;
  };
  if (pick(3) == 0) request.start = DateText(random, boundary());
  if (pick(3) == 0) request.end = DateText(random, boundary());
  if (pick(3) == 0) {
    request.influencer_score = kScores[pick(std::size(kScores))];
  }
  request.exclude_interim = pick(3) == 0;
  static const std::vector<std::string> kSorts = {
      "influencer_score", "initial_influencer_score", "probability",
      "bucket_span", "timestamp", "is_interim", "influencer_field_name",
      "influencer_field_value", "job_id", "result_type", "host", "user",
      "kpi_indicator", "client.ip"};
  if (pick(5) != 0) request.sort = kSorts[pick(kSorts.size())];
  request.desc = pick(2) == 0;
  if (pick(2) == 0) request.from = static_cast<int64_t>(pick(70));
  if (pick(2) == 0) request.size = static_cast<int64_t>(pick(40));
  return request;
}

TextRequest ToText(std::mt19937_64& random, const InfluencersRequest& r) {
  TextRequest text;
  text.job_id = r.job_id;
  text.body_mode = random() % 2 == 0;
  if (text.body_mode) {
    text.body = RequestToJson(r);
  } else {
    if (r.start) text.params.emplace_back("start", *r.start);
    if (r.end) text.params.emplace_back("end", *r.end);
    if (r.exclude_interim) {
      text.params.emplace_back("exclude_interim",
                               random() % 2 ? "true" : "");
    }
    if (r.influencer_score != 0) {
      text.params.emplace_back("influencer_score",
                               absl::StrCat(r.influencer_score));
    }
    text.params.emplace_back("sort", r.sort);
    text.params.emplace_back("desc", r.desc ? "true" : "false");
    text.params.emplace_back("from", absl::StrCat(r.from));
    text.params.emplace_back("size", absl::StrCat(r.size));
  }
  return text;
}

// Both executors' responses for `request`; nullopt if the request is
// rejected (both executors share ResolveQuery, so rejections agree).
struct Outcome {
  std::string fast;
  std::string reference;
};
std::optional<Outcome> RunBoth(const InfluencerStore& store,
                           const InfluencersRequest& request) {
  QueryContext context;
  context.max_result_window = store.options().max_result_window;
  context.now_millis = [] { return kBase; };
  absl::StatusOr<ResolvedQuery> query =
      ResolveQuery(*store.Current(), request, context);
  if (!query.ok()) return std::nullopt;
  std::string reference = InfluencersJson(ReferenceExecuteQuery(*query));
  // Every strategy, each on a fresh copy of the job's index cache state:
  // the orders and TimeIndex are shared, which is also what production does.
  // kAuto first: before the others build every order and TimeIndex, it
  // meets jobs (and segments) without them.
  static constexpr std::pair<IndexUse, const char*> kStrategies[] = {
      {IndexUse::kAuto, "auto:         "},
      {IndexUse::kNever, "scan:         "},
      {IndexUse::kAlways, "indexed:      "},
      {IndexUse::kAlwaysWalk, "walk:         "},
      {IndexUse::kAlwaysScanWindow, "window scan:  "},
      {IndexUse::kAlwaysBlocks, "blocks:       "},
      {IndexUse::kAlwaysShortWalk, "short walk:   "},
  };
  // Report the first strategy that differs.
  for (const auto& [use, name] : kStrategies) {
    std::string fast = InfluencersJson(ExecuteQuery(*query, use));
    if (fast != reference) return Outcome{name + fast, reference};
  }
  return Outcome{reference, reference};
}

bool Fails(const InfluencerStore& store, const InfluencersRequest& request) {
  std::optional<Outcome> outcome = RunBoth(store, request);
  return outcome.has_value() && outcome->fast != outcome->reference;
}

// Simplifies a failing request while it keeps failing.
InfluencersRequest Shrink(const InfluencerStore& store,
                          InfluencersRequest request) {
  bool progress = true;
  while (progress) {
    progress = false;
    std::vector<InfluencersRequest> candidates;
    auto add = [&](auto mutate) {
      InfluencersRequest c = request;
      mutate(c);
      candidates.push_back(c);
    };
    if (request.start) add([](InfluencersRequest& c) { c.start.reset(); });
    if (request.end) add([](InfluencersRequest& c) { c.end.reset(); });
    if (request.influencer_score != 0) {
      add([](InfluencersRequest& c) { c.influencer_score = 0; });
    }
    if (request.exclude_interim) {
      add([](InfluencersRequest& c) { c.exclude_interim = false; });
    }
    if (request.from > 0) {
      add([](InfluencersRequest& c) { c.from = 0; });
      add([](InfluencersRequest& c) { c.from /= 2; });
    }
    if (request.size > 1) {
      add([](InfluencersRequest& c) { c.size = 1; });
      add([](InfluencersRequest& c) { c.size /= 2; });
    }
    for (const InfluencersRequest& c : candidates) {
      if (Fails(store, c)) {
        request = c;
        progress = true;
        break;
      }
    }
  }
  return request;
}

TEST(ExecutorDifferentialTest, FastMatchesReference) {
  constexpr int kStores = 400;
  constexpr int kRequestsPerStore = 25;
  int compared = 0;
  int nonempty = 0;
  int segmented_jobs = 0;
  int snapshots = 0;
  int reopened_compared = 0;
  for (int seed = 0; seed < kStores; ++seed) {
    std::mt19937_64 random(seed);
    StoreOptions options;
    if (random() % 5 == 0) options.max_result_window = 30;
    // Most stores keep their writes as segments with deleted rows, never
    // merged whole; some merge their deltas often.
    if (random() % 4 != 0) options.merge_ratio = 1e9;
    options.max_delta_segments = 1 + random() % 3;
    options.merge_growing_deltas = random() % 2 == 0;
    if (seed % 2 == 0) options.inline_merge_rows = 0;  // background merges
    InfluencerStore store(options);
    Scenario scenario;
    BuildStore(random, store, &scenario);
    const std::shared_ptr<const StoreVersion> current = store.Current();
    for (const auto& [id, job] : current->jobs) {
      segmented_jobs += !job->segments.empty();
    }
    // One store in three is also written as a snapshot and reopened: the
    // reopened store must answer exactly as the original does.
    std::unique_ptr<InfluencerStore> reopened;
    if (seed % 3 == 0) {
      FaultEnv env;
      ASSERT_TRUE(WriteSnapshotBundle(&env, "/snapshot", *store.Current()).ok());
      absl::StatusOr<std::shared_ptr<const StoreVersion>> version =
          ReadSnapshotBundle(&env, "/snapshot");
      ASSERT_TRUE(version.ok()) << version.status();
      reopened = std::make_unique<InfluencerStore>(options);
      ASSERT_TRUE(reopened->Restore(*version).ok());
      ++snapshots;
    }
    for (int i = 0; i < kRequestsPerStore; ++i) {
      InfluencersRequest generated = RandomRequest(random, scenario);
      TextRequest text = ToText(random, generated);
      absl::StatusOr<InfluencersRequest> parsed =
          text.body_mode ? ParseBodyRequest(text.job_id, text.body)
                         : ParseParamRequest(text.job_id, text.params);
      ASSERT_TRUE(parsed.ok()) << "seed " << seed << ": " << parsed.status()
                               << "\n" << text.body;
      std::optional<Outcome> outcome = RunBoth(store, *parsed);
      if (reopened != nullptr) {
        std::optional<Outcome> again = RunBoth(*reopened, *parsed);
        ASSERT_EQ(again.has_value(), outcome.has_value()) << "seed " << seed;
        if (outcome.has_value()) {
          ASSERT_EQ(again->fast, outcome->fast)
              << "seed " << seed << " reopened from a snapshot: "
              << RequestToJson(*parsed);
          ++reopened_compared;
        }
      }
      if (!outcome.has_value()) continue;
      ++compared;
      if (outcome->reference.find("\"job_id\"") != std::string::npos) {
        ++nonempty;
      }
      if (outcome->fast != outcome->reference) {
        InfluencersRequest minimal = Shrink(store, *parsed);
        std::optional<Outcome> small = RunBoth(store, minimal);
        FAIL() << "seed " << seed << " request " << i
               << "\nminimal failing request: " << RequestToJson(minimal)
               << "\nfast:      " << small->fast
               << "\nreference: " << small->reference;
      }
    }
  }
  // The generator must exercise the executors, not only the rejections,
  // on plain jobs and jobs of segments.
  EXPECT_GT(compared, kStores * kRequestsPerStore / 2);
  EXPECT_GT(segmented_jobs, kStores / 4);
  EXPECT_GT(nonempty, compared / 3);
  EXPECT_GT(snapshots, kStores / 4);
  EXPECT_GT(reopened_compared, compared / 4);
}

// Stores large enough for the code paths small stores never reach: radix
// sorted orders, TimeIndex blocks of many rows, top-k buffers cut many
// times. Every sort field in both directions, with and without filters.
// The same requests asked again after each of a series of writes: counts
// a segment keeps of its deleted rows (DeletedRowCache) are carried
// from one version to the next, and must stay exact.
TEST(ExecutorDifferentialTest, RequestsRepeatedBetweenWritesMatchReference) {
  int compared = 0;
  int deleted_segments = 0;
  for (int seed = 0; seed < 150; ++seed) {
    std::mt19937_64 random(1000 + seed);
    StoreOptions options;
    options.merge_ratio = 1e9;  // keep the deleted rows
    options.max_delta_segments = 1 + random() % 4;
    options.merge_growing_deltas = random() % 2 == 0;
    if (seed % 2 == 0) options.inline_merge_rows = 0;  // background merges
    InfluencerStore store(options);
    Scenario scenario;
    BuildStore(random, store, &scenario);
    std::vector<InfluencersRequest> requests;
    for (int i = 0; i < 8; ++i) {
      requests.push_back(RandomRequest(random, scenario));
    }
    for (int round = 0; round < 6; ++round) {
      for (const InfluencersRequest& request : requests) {
        std::optional<Outcome> outcome = RunBoth(store, request);
        if (!outcome.has_value()) continue;
        ++compared;
        ASSERT_EQ(outcome->fast, outcome->reference)
            << "seed " << seed << " round " << round << ": "
            << RequestToJson(request);
      }
      const std::shared_ptr<const StoreVersion> current = store.Current();
      for (const auto& [id, job] : current->jobs) {
        for (const JobResults::Segment& segment : job->segments) {
          deleted_segments += segment.deleted != nullptr;
        }
      }
      BuildStore(random, store, &scenario);  // more writes
    }
  }
  EXPECT_GT(compared, 3000);
  EXPECT_GT(deleted_segments, 300);
}

TEST(ExecutorDifferentialTest, LargeStoresMatchReference) {
  for (int seed = 0; seed < 3; ++seed) {
    std::mt19937_64 random(1000 + seed);
    auto pick = [&](size_t n) { return static_cast<size_t>(random() % n); };
    InfluencerStore store;
    std::vector<std::pair<std::string, InfluencerFields>> rows;
    const int n = 6000 + static_cast<int>(pick(6000));
    std::vector<std::string> values;
    const int distinct = seed == 2 ? 12 : 300;  // few values: few codes per cut
    for (int v = 0; v < distinct; ++v) values.push_back(absl::StrCat("v", v * 7919 % 1000));
    for (int r = 0; r < n; ++r) {
      InfluencerFields row;
      row.field_name = kFieldNames[pick(std::size(kFieldNames))];
      row.field_value = values[pick(values.size())];
      row.timestamp = kBase + static_cast<int64_t>(pick(500)) * 60000;
      // Half from the small set (ties), half arbitrary doubles.
      row.influencer_score = pick(2) ? kScores[pick(std::size(kScores))]
                                     : static_cast<double>(random() % 100000) / 997.0;
      row.initial_influencer_score = -static_cast<double>(pick(50));
      row.probability = static_cast<double>(random()) / 1e30;
      // Seed 1's documents sometimes lack a double (sorted last).
      if (seed == 1 && pick(8) == 0) row.influencer_score = MissingDouble();
      if (seed == 1 && pick(8) == 0) row.probability = MissingDouble();
      row.bucket_span = std::vector<int64_t>{60, 600, 3600}[pick(3)];
      row.is_interim = pick(20) == 0;
      rows.emplace_back("big", row);
    }
    if (seed == 0) {  // stored in time order: the TimeIndex is the identity
      std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
        return a.second.timestamp < b.second.timestamp;
      });
    }
    MutationBatch batch;
    for (const auto& [job, row] : rows) batch.AddInfluencer(job, row);
    ASSERT_TRUE(store.Apply(std::move(batch)).ok());
    static const char* const kSorts[] = {
        "influencer_score", "initial_influencer_score", "probability",
        "bucket_span", "timestamp", "is_interim", "influencer_field_name",
        "influencer_field_value", "job_id", "host", "kpi_indicator"};
    for (const char* sort : kSorts) {
      for (int variant = 0; variant < 16; ++variant) {
        InfluencersRequest request;
        request.job_id = "big";
        request.sort = sort;
        request.desc = variant % 2 == 0;
        if (variant & 2) {
          request.start = absl::StrCat(kBase + 60000 * static_cast<int64_t>(pick(250)));
          request.end = absl::StrCat(kBase + 60000 * static_cast<int64_t>(250 + pick(250)));
        }
        if (variant & 4) request.influencer_score = kScores[pick(std::size(kScores))];
        request.exclude_interim = pick(2) == 0;
        // Deep pages, and small ones whose cut soon leaves few keys below.
        const bool small = variant >= 8;
        request.from = static_cast<int64_t>(pick(small ? 60 : 3000));
        request.size = static_cast<int64_t>(pick(small ? 120 : 400));
        std::optional<Outcome> outcome = RunBoth(store, request);
        ASSERT_TRUE(outcome.has_value());
        ASSERT_EQ(outcome->fast, outcome->reference)
            << "seed " << seed << ": " << RequestToJson(request);
      }
    }
  }
}

// Deep pages of a large job kept as a base plus many delta segments, with
// rows updated (deleted from their segment and written again in a delta),
// deleted, and new: the rows before `from` are passed over in strides
// across the segments, not merged (sorts whose matches are one run of each
// segment's order). Ties are common, across segments too.
TEST(ExecutorDifferentialTest, DeepPagesOverSegmentsMatchReference) {
  int compared = 0;
  int segmented = 0;
  for (int seed = 0; seed < 4; ++seed) {
    std::mt19937_64 random(2000 + seed);
    auto pick = [&](size_t n) { return static_cast<size_t>(random() % n); };
    StoreOptions options;
    options.merge_ratio = 1e9;  // keep the deleted rows
    options.max_delta_segments = 16;
    // Mostly as written: up to 16 deltas to page over.
    options.merge_growing_deltas = seed % 4 == 0;
    if (seed % 2 == 0) options.inline_merge_rows = 0;  // background merges
    InfluencerStore store(options);
    std::vector<InfluencerFields> written;
    // The rows' strings (InfluencerFields holds views): short values, and
    // values that differ only past their first 8 bytes or where one is the
    // other's prefix (the merge's prefix keys tie, the strings decide).
    std::vector<std::string> values;
    for (int v = 0; v < 400; ++v) values.push_back(absl::StrCat("v", v));
    for (int v = 0; v < 40; ++v) values.push_back(absl::StrCat("web-server-", v));
    for (size_t n = 6; n <= 10; ++n) values.push_back(std::string("web-server", n));
    auto random_row = [&] {
      InfluencerFields row;
      row.field_name = kFieldNames[pick(std::size(kFieldNames))];
      switch (pick(3)) {
        case 0: row.field_value = values[pick(400)]; break;
        case 1: row.field_value = values[400 + pick(40)]; break;
        default: row.field_value = values[440 + pick(5)];
      }
      row.timestamp = kBase + static_cast<int64_t>(pick(300)) * 60000;
      row.influencer_score = pick(2) ? kScores[pick(std::size(kScores))]
                                     : static_cast<double>(pick(100000)) / 997.0;
      if (seed == 1 && pick(10) == 0) row.influencer_score = MissingDouble();
      row.initial_influencer_score = -static_cast<double>(pick(40));
      row.probability = static_cast<double>(pick(1000)) / 1e5;
      row.bucket_span = std::vector<int64_t>{60, 600, 3600}[pick(3)];
      row.is_interim = pick(25) == 0;
      return row;
    };
    MutationBatch base;
    for (int r = 0; r < 5000; ++r) {
      written.push_back(random_row());
      base.AddInfluencer("big", written.back());
    }
    ASSERT_TRUE(store.Apply(std::move(base)).ok());
    for (int round = 0; round < 12; ++round) {
      MutationBatch batch(round % 2 == 0 ? MutationMode::kBulk
                                         : MutationMode::kLoad);
      for (int i = 0; i < 300; ++i) {
        InfluencerFields& old = written[pick(written.size())];
        switch (pick(3)) {
          case 0: {  // an update: the same result, a new score
            old.influencer_score = static_cast<double>(pick(100000)) / 997.0;
            if (pick(3) == 0) old.influencer_score = kScores[pick(3)];
            batch.AddInfluencer("big", old);
            break;
          }
          case 1: {  // a deletion (of a row deleted before, sometimes)
            if (batch.mode() != MutationMode::kBulk) break;
            batch.DeleteInfluencer(*ParseInfluencerResultId(
                InfluencerDocumentId("big", old)));
            break;
          }
          default:
            written.push_back(random_row());
            batch.AddInfluencer("big", written.back());
        }
      }
      ASSERT_TRUE(store.Apply(std::move(batch)).ok());
      segmented += store.Current()->jobs.at("big")->segments.size() > 2;
      static const char* const kSorts[] = {
          "influencer_score", "initial_influencer_score", "probability",
          "bucket_span", "timestamp", "is_interim", "influencer_field_value",
          "influencer_field_name", "host", "job_id"};
      for (int q = 0; q < 12; ++q) {
        InfluencersRequest request;
        request.job_id = "big";
        request.sort = kSorts[pick(std::size(kSorts))];
        request.desc = pick(2) == 0;
        // A threshold on an influencer_score sort, a window on a timestamp
        // sort: still one run of each segment's order.
        if (pick(3) == 0) request.influencer_score = kScores[pick(std::size(kScores))];
        if (pick(3) == 0) {
          request.start = absl::StrCat(kBase + 60000 * static_cast<int64_t>(pick(150)));
          request.end = absl::StrCat(kBase + 60000 * static_cast<int64_t>(150 + pick(150)));
        }
        request.exclude_interim = pick(4) == 0;  // not a run: interim rows
        request.from = static_cast<int64_t>(pick(pick(2) ? 600 : 6000));
        request.size = static_cast<int64_t>(pick(pick(2) ? 10 : 300));
        std::optional<Outcome> outcome = RunBoth(store, request);
        ASSERT_TRUE(outcome.has_value());
        ++compared;
        ASSERT_EQ(outcome->fast, outcome->reference)
            << "seed " << seed << " round " << round << ": "
            << RequestToJson(request);
      }
    }
  }
  EXPECT_EQ(compared, 4 * 12 * 12);
  EXPECT_GT(segmented, 20);
}

// Scores that follow time: rows stored in time order whose top score ties
// fill the first half, and a window over the second half. A walk of the
// score order, estimated at a few hundred rows, must pass every top-score
// row before the window: it runs out of its budget and the TimeIndex's
// blocks finish the page.
TEST(ExecutorDifferentialTest, ScoresFollowingTimeFallBackFromTheWalk) {
  InfluencerStore store;
  MutationBatch batch;
  std::vector<std::string> values;  // InfluencerFields holds views
  for (int v = 0; v < 100; ++v) values.push_back(absl::StrCat("h", v));
  for (int r = 0; r < 20000; ++r) {
    InfluencerFields row;
    row.field_name = "host";
    row.field_value = values[r % 100];
    row.timestamp = kBase + static_cast<int64_t>(r) * 60000;
    row.influencer_score = r % 2 == 0 ? 90.0 : 10.0;
    row.is_interim = r % 97 == 0;
    batch.AddInfluencer("follows", row);
  }
  ASSERT_TRUE(store.Apply(std::move(batch)).ok());
  for (int64_t from : {0, 100, 5000}) {
    for (bool exclude_interim : {false, true}) {
      InfluencersRequest request;
      request.job_id = "follows";
      request.start = absl::StrCat(kBase + int64_t{10000} * 60000);
      request.exclude_interim = exclude_interim;
      request.from = from;
      request.size = 100;
      std::optional<Outcome> outcome = RunBoth(store, request);
      ASSERT_TRUE(outcome.has_value());
      ASSERT_EQ(outcome->fast, outcome->reference) << RequestToJson(request);
    }
  }
}

// Eight segments, each with ten rows that come first in page order, then
// twenty that come after: pages around from = 80 start where every segment
// crosses from the first kind to the second at once, ties to the earlier
// segment. (run_selection_test checks the strides' bound on its own.)
TEST(ExecutorDifferentialTest, StridesPassNoRowPastFrom) {
  for (bool desc : {false, true}) {
    StoreOptions options;
    options.merge_ratio = 1e9;
    options.max_delta_segments = 16;
    options.merge_growing_deltas = false;  // eight deltas as written
    InfluencerStore store(options);
    std::vector<std::string> values;  // InfluencerFields holds views
    for (int v = 0; v < 8 * 30; ++v) values.push_back(absl::StrCat("h", v));
    int id = 0;
    for (int segment = 0; segment < 8; ++segment) {
      MutationBatch batch;
      for (int r = 0; r < 30; ++r) {
        const bool first = r < 10;
        InfluencerFields row;
        row.field_name = "host";
        row.field_value = values[id++];
        row.timestamp = kBase + (first != desc ? 0 : 60000);
        row.influencer_score = first != desc ? 1.0 : 2.0;
        batch.AddInfluencer("strides", row);
      }
      ASSERT_TRUE(store.Apply(std::move(batch)).ok());
    }
    ASSERT_EQ(store.Current()->jobs.at("strides")->segments.size(), 8u);
    for (const char* sort : {"influencer_score", "timestamp"}) {
      for (int from = 65; from <= 96; ++from) {
        InfluencersRequest request;
        request.job_id = "strides";
        request.sort = sort;
        request.desc = desc;
        request.from = from;
        request.size = 3;
        std::optional<Outcome> outcome = RunBoth(store, request);
        ASSERT_TRUE(outcome.has_value());
        ASSERT_EQ(outcome->fast, outcome->reference) << RequestToJson(request);
      }
    }
  }
}

// A descending time order finds each row's group of equal timestamps by
// searching outward from it (PageOrderView::GroupAt): every page start of
// layouts that put group edges at the order's ends, a single row, one
// group spanning the whole order, and groups of every small size, in one
// segment and split over several.
TEST(ExecutorDifferentialTest, DescendingTimePagesFindEveryGroupEdge) {
  const std::vector<std::vector<int>> layouts = {
      {1}, {2}, {37}, {1, 1, 1}, {1, 36}, {36, 1},
      {5, 1, 7, 1, 1, 16}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {17, 1, 17}};
  for (const std::vector<int>& groups : layouts) {
    for (int batches : {1, 3}) {
      StoreOptions options;
      options.merge_ratio = 1e9;
      options.merge_growing_deltas = false;  // the batches as written
      InfluencerStore store(options);
      std::deque<std::string> values;  // InfluencerFields holds views
      std::vector<InfluencerFields> rows;
      for (size_t g = 0; g < groups.size(); ++g) {
        for (int r = 0; r < groups[g]; ++r) {
          values.push_back(absl::StrCat("h", values.size()));
          InfluencerFields row;
          row.field_name = "host";
          row.field_value = values.back();
          row.timestamp = kBase + static_cast<int64_t>(g) * 60000;
          row.influencer_score = static_cast<double>(values.size() % 3);
          rows.push_back(row);
        }
      }
      // Rows in a shuffled but fixed order, so that time order is not
      // ingest order; split into `batches` segments.
      std::mt19937_64 random(groups.size() * 31 + batches);
      std::shuffle(rows.begin(), rows.end(), random);
      const size_t n = rows.size();
      for (int b = 0; b < batches; ++b) {
        MutationBatch batch;
        for (size_t i = n * b / batches; i < n * (b + 1) / batches; ++i) {
          batch.AddInfluencer("groups", rows[i]);
        }
        ASSERT_TRUE(store.Apply(std::move(batch)).ok());
      }
      for (size_t from = 0; from <= n; ++from) {
        for (int size : {1, 2, 5}) {
          InfluencersRequest request;
          request.job_id = "groups";
          request.sort = "timestamp";
          request.desc = true;
          request.from = static_cast<int64_t>(from);
          request.size = size;
          std::optional<Outcome> outcome = RunBoth(store, request);
          ASSERT_TRUE(outcome.has_value());
          ASSERT_EQ(outcome->fast, outcome->reference)
              << RequestToJson(request) << " over " << batches
              << " segment(s), " << groups.size() << " groups";
        }
      }
    }
  }
}

// A string sort over many rows whose values repeat in a cycle: as a scan's
// cut closes in on the page, the number of values left below it passes
// through every small count (the code-comparison path of the scan).
// Segments whose rows cannot reach the page are counted, not paged
// (ExecuteSegments): best keys tied across segments in both index orders,
// a newer delta above every older row, the top rows of a delta deleted
// (so its page asks again), constant and boolean sorts, deep pages and
// windows that keep the queries off the run path.
TEST(ExecutorDifferentialTest, SegmentsThatCannotReachThePageAreCountedOnly) {
  StoreOptions options;
  options.merge_ratio = 1e9;
  options.max_delta_segments = 64;
  options.merge_growing_deltas = false;
  InfluencerStore store(options);
  std::deque<std::string> values;
  auto row = [&](int i, double score, int64_t at) {
    values.push_back(absl::StrCat("h", i));
    InfluencerFields fields;
    fields.field_name = "host";
    fields.field_value = values.back();
    fields.timestamp = kBase + at * 3600000;
    fields.influencer_score = score;
    fields.initial_influencer_score = score / 2;
    fields.probability = 0.001 * (i % 13);
    fields.bucket_span = 3600;
    fields.is_interim = i % 5 == 0;
    return fields;
  };
  std::vector<InfluencerFields> tops;  // the newest delta's rows
  for (int b = 0; b < 6; ++b) {
    MutationBatch batch(MutationMode::kBulk);
    for (int i = 0; i < (b == 0 ? 300 : 40); ++i) {
      // Base: scores 0-9; deltas 1-2 tie the base's best (9); deltas 3-5
      // score 10 (tied with each other, above the rest) and 9, so that
      // the page's last row may be a 9 of a delta after segments whose 9s
      // come first; delta 2 also moves base rows (updates).
      const int id = b == 2 && i < 20 ? i : 1000 * b + i;
      const double score = b == 0    ? i % 10
                           : b <= 2 ? 9 - (i % 3)
                                    : (i % 4 == 0 ? 9 : 10);
      const InfluencerFields fields = row(id, score, i % 48);
      if (b == 5) tops.push_back(fields);
      batch.AddInfluencer("segmented", fields);
    }
    ASSERT_TRUE(store.Apply(std::move(batch)).ok());
  }
  // The top rows of delta 4 (ingested first among the score-10 rows that
  // page first) deleted: its page comes back short and asks again.
  MutationBatch deletes(MutationMode::kBulk);
  for (int i = 0; i < 30; ++i) {
    deletes.DeleteInfluencer(*ParseInfluencerResultId(
        InfluencerDocumentId("segmented",
                             row(4000 + i, i % 4 == 0 ? 9 : 10, i % 48))));
  }
  ASSERT_TRUE(store.Apply(std::move(deletes)).ok());
  ASSERT_GE(store.Current()->jobs.at("segmented")->segments.size(), 6u);
  int compared = 0;
  for (const char* sort :
       {"influencer_score", "initial_influencer_score", "probability",
        "timestamp", "bucket_span", "is_interim", "result_type"}) {
    for (bool desc : {true, false}) {
      for (int from : {0, 3, 45}) {
        for (int size : {1, 7, 30, 60}) {
          for (bool window : {false, true}) {
            for (bool exclude_interim : {false, true}) {
              // A threshold: skipped segments are counted with it too.
              for (double min_score : {0.0, 9.0, 9.5}) {
                InfluencersRequest request;
                request.job_id = "segmented";
                request.sort = sort;
                request.desc = desc;
                request.from = from;
                request.size = size;
                request.exclude_interim = exclude_interim;
                request.influencer_score = min_score;
                if (window) {
                  request.start = absl::StrCat(kBase + 5 * 3600000);
                  request.end = absl::StrCat(kBase + 40 * 3600000);
                }
                std::optional<Outcome> outcome = RunBoth(store, request);
                if (!outcome.has_value()) continue;
                ++compared;
                ASSERT_EQ(outcome->fast, outcome->reference)
                    << RequestToJson(request);
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(compared, 1200);
}

TEST(ExecutorDifferentialTest, StringSortCutsThroughRepeatedValues) {
  InfluencerStore store;
  std::vector<std::string> values;
  for (int v = 0; v < 100; ++v) values.push_back(absl::StrFormat("v%03d", v));
  MutationBatch batch;
  for (int r = 0; r < 10000; ++r) {
    InfluencerFields row;
    row.field_name = "host";
    row.field_value = values[(r * 37) % 100];
    row.timestamp = kBase + r;
    row.influencer_score = r % 7;
    batch.AddInfluencer("cycle", row);
  }
  ASSERT_TRUE(store.Apply(std::move(batch)).ok());
  for (bool desc : {false, true}) {
    for (int size = 1; size <= 1000; size += 37) {
      InfluencersRequest request;
      request.job_id = "cycle";
      request.sort = "influencer_field_value";
      request.desc = desc;
      request.size = size;
      request.from = size % 5;
      std::optional<Outcome> outcome = RunBoth(store, request);
      ASSERT_TRUE(outcome.has_value());
      ASSERT_EQ(outcome->fast, outcome->reference) << RequestToJson(request);
    }
  }
}

// The first cut of an ascending value sort's scan leaves exactly eight
// codes below it (a0..a7, first seen in that order, so a7 has the highest
// code of them; the cut is the first "m"), and a7 recurs long after: each
// later a7 row must still be offered to the page, where it displaces the
// row of "m". Rows of every other code are above the cut. (With descending
// sorts, the mirror image.)
TEST(ExecutorDifferentialTest, EightCodesBelowTheCutAllReachThePage) {
  for (bool desc : {false, true}) {
    SCOPED_TRACE(desc ? "desc" : "asc");
    InfluencerStore store;
    MutationBatch batch;
    std::vector<std::string> values;
    for (int r = 0; r < 6000; ++r) {
      std::string v;
      if (r < 499) {
        v = absl::StrCat(desc ? "z" : "a", r % 8);
      } else if (r < 1008) {  // the scan first cuts after 2 * 500 + 8 rows
        v = "m";
      } else if (r % 97 == 0) {
        v = absl::StrCat(desc ? "z" : "a", 7);
      } else {
        v = absl::StrCat(desc ? "a" : "z", "x", r % 50);
      }
      values.push_back(v);
    }
    for (int r = 0; r < 6000; ++r) {
      InfluencerFields row;
      row.field_name = "host";
      row.field_value = values[r];
      row.timestamp = kBase + r;
      batch.AddInfluencer("few", row);
    }
    ASSERT_TRUE(store.Apply(std::move(batch)).ok());
    InfluencersRequest request;
    request.job_id = "few";
    request.sort = "influencer_field_value";
    request.desc = desc;
    request.size = 500;
    std::optional<Outcome> outcome = RunBoth(store, request);
    ASSERT_TRUE(outcome.has_value());
    ASSERT_EQ(outcome->fast, outcome->reference);
    // The page holds the later rows of the eighth code, and not "m".
    EXPECT_EQ(outcome->reference.find("\"m\""), std::string::npos);
  }
}

// A job whose first rows are in time order and whose last ones (as a merge
// after updates leaves them) fall anywhere in time: a window's scan reads
// the ordered rows' stretch in row order and the others through the time
// order (ScanWindowPage). Few of the others per block of 64 positions take
// the row-by-row path, many the bit-mask path: both, with every filter.
TEST(ExecutorDifferentialTest, PartlyTimeOrderedJobsScanBothParts) {
  std::mt19937_64 random(20261207);
  struct Shape {
    int ordered;
    int tail;
    // Most tail rows in the first 100 minutes, 1 in 50 anywhere: past
    // minute 100 a window's blocks of the whole time order hold few tail
    // rows (the row-by-row path), where evenly spread ones fill them.
    bool bunched;
  };
  // Tails the index keeps its own order of (up to 7/8 of the rows), and
  // ones it keeps the whole time order for; the last three jobs have more
  // than 2^16 rows (the index's entries take 3 bytes, else 2).
  for (auto [ordered, tail, bunched] : {Shape{6000, 400, false},
                                        Shape{6000, 6000, false},
                                        Shape{6000, 60000, false},
                                        Shape{6000, 60000, true},
                                        Shape{30000, 40000, false}}) {
    InfluencerStore store;
    MutationBatch batch;
    std::vector<std::string> values;  // InfluencerFields holds views
    for (int v = 0; v < ordered + tail; ++v) {
      values.push_back(absl::StrCat("h", v));
    }
    for (int r = 0; r < ordered + tail; ++r) {
      InfluencerFields row;
      // Some rows of another field: a "host" sort finds no value there.
      row.field_name = random() % 5 == 0 ? "user" : "host";
      row.field_value = values[random() % values.size()];
      const int64_t minute =
          r < ordered                          ? r
          : !bunched || random() % 50 == 0     ? static_cast<int64_t>(random() % ordered)
                                               : static_cast<int64_t>(random() % 100);
      row.timestamp = kBase + minute * 60000;
      row.influencer_score = static_cast<double>(random() % 100);
      row.probability = static_cast<double>(random() % 50) / 100;
      row.is_interim = random() % 3 == 0;
      batch.AddInfluencer("partly", row);
    }
    ASSERT_TRUE(store.Apply(std::move(batch)).ok());
    for (const char* sort :
         {"probability", "influencer_score", "timestamp",
          "influencer_field_value", "influencer_field_name", "host"}) {
      for (double threshold : {0.0, 30.0, 70.0}) {
        for (bool exclude_interim : {false, true}) {
          for (int64_t from : {0, 7, 150}) {
            const int64_t first = static_cast<int64_t>(random() % (ordered / 2));
            InfluencersRequest request;
            request.job_id = "partly";
            request.sort = sort;
            request.desc = random() % 2 == 0;
            // Both bounds, or only one.
            const int bounds = static_cast<int>(random() % 4);
            if (bounds != 1) request.start = absl::StrCat(kBase + first * 60000);
            if (bounds != 2) {
              request.end = absl::StrCat(
                  kBase +
                  (first + 500 +
                   static_cast<int64_t>(random() % (ordered / 2 - 500))) *
                      60000);
            }
            request.influencer_score = threshold;
            request.exclude_interim = exclude_interim;
            request.from = from;
            // Some counts alone (size 0), some short pages, most full.
            const int size_kind = static_cast<int>(random() % 6);
            request.size = size_kind == 0   ? 0
                           : size_kind <= 2 ? 1 + static_cast<int64_t>(random() % 3)
                                            : 100;
            std::optional<Outcome> outcome = RunBoth(store, request);
            ASSERT_TRUE(outcome.has_value());
            ASSERT_EQ(outcome->fast, outcome->reference)
                << RequestToJson(request);
          }
        }
      }
    }
  }
}

// The top of the score order rewritten again and again in batches of the
// same size, as a live writer rescoring its best results does: each write
// deletes rows at the start of the score order, in the base and in the
// deltas. Deep pages count those deleted rows by their keys (DeletedIn),
// kept per level of each deleted list and carried from write to write;
// equal-sized levels of different writes must never share keys. Every
// numeric sort, both directions, the time order with and without a window.
TEST(ExecutorDifferentialTest, RewrittenTopRowsPageDeepAcrossWrites) {
  int compared = 0;
  for (int seed = 0; seed < 2; ++seed) {
    std::mt19937_64 random(3000 + seed);
    auto pick = [&](size_t n) { return static_cast<size_t>(random() % n); };
    StoreOptions options;
    options.merge_ratio = 1e9;  // keep the deleted rows
    options.max_delta_segments = 64;
    options.merge_growing_deltas = seed == 1;
    InfluencerStore store(options);
    std::vector<std::string> values;
    for (int v = 0; v < 6000; ++v) values.push_back(absl::StrCat("h", v));
    std::vector<InfluencerFields> written;
    MutationBatch base;
    for (int r = 0; r < 6000; ++r) {
      InfluencerFields row;
      row.field_name = "host";
      row.field_value = values[r];
      row.timestamp = kBase + static_cast<int64_t>(pick(300)) * 60000;
      row.influencer_score = static_cast<double>(pick(100));
      row.probability = static_cast<double>(pick(1000)) / 1e5;
      row.bucket_span = 600;
      written.push_back(row);
      base.AddInfluencer("big", row);
    }
    ASSERT_TRUE(store.Apply(std::move(base)).ok());
    static const char* const kSorts[] = {"influencer_score", "timestamp",
                                         "probability",
                                         "initial_influencer_score"};
    for (int round = 0; round < 12; ++round) {
      // 60 rewrites of results among the first 900, to the top scores.
      MutationBatch batch;
      std::vector<size_t> chosen;
      while (chosen.size() < 60) {
        const size_t r = pick(900);
        if (std::find(chosen.begin(), chosen.end(), r) == chosen.end()) {
          chosen.push_back(r);
        }
      }
      for (size_t r : chosen) {
        written[r].influencer_score = 100.0 + static_cast<double>(pick(3));
        batch.AddInfluencer("big", written[r]);
      }
      ASSERT_TRUE(store.Apply(std::move(batch)).ok());
      for (int q = 0; q < 6; ++q) {
        InfluencersRequest request;
        request.job_id = "big";
        request.sort = kSorts[pick(std::size(kSorts))];
        request.desc = pick(3) != 0;
        if (request.sort == std::string("timestamp") && pick(2) == 0) {
          request.start = absl::StrCat(kBase + 60000 * static_cast<int64_t>(pick(100)));
        }
        request.from = 300 + static_cast<int64_t>(pick(3000));
        request.size = 1 + static_cast<int64_t>(pick(60));
        // Twice: the first query builds the orders kAuto needs.
        for (int again = 0; again < 2; ++again) {
          std::optional<Outcome> outcome = RunBoth(store, request);
          ASSERT_TRUE(outcome.has_value());
          ++compared;
          ASSERT_EQ(outcome->fast, outcome->reference)
              << "seed " << seed << " round " << round << ": "
              << RequestToJson(request);
        }
      }
    }
  }
  EXPECT_EQ(compared, 2 * 12 * 6 * 2);
}


// The segments' orders a query records in the job's cache
// (SortOrderCache::SegmentOrders) are used only for the segments they
// were recorded for: a job with other segments that shares the cache
// (a copy) looks its own up.
TEST(ExecutorDifferentialTest, SegmentOrdersServeOnlyTheirSegments) {
  int compared = 0;
  for (int seed = 0; seed < 40; ++seed) {
    std::mt19937_64 random(7000 + seed);
    StoreOptions options;
    options.merge_ratio = 1e9;
    options.max_delta_segments = 16;
    InfluencerStore store(options);
    Scenario scenario;
    BuildStore(random, store, &scenario);
    const std::shared_ptr<const StoreVersion> before = store.Current();
    BuildStore(random, store, &scenario);  // more segments, more deletes
    const std::shared_ptr<const StoreVersion> after = store.Current();
    for (int i = 0; i < 12; ++i) {
      InfluencersRequest request = RandomRequest(random, scenario);
      auto old_job = before->FindJob(request.job_id);
      auto new_job = after->FindJob(request.job_id);
      if (old_job == nullptr || new_job == nullptr ||
          old_job->segments.empty() || new_job->segments.empty()) {
        continue;
      }
      QueryContext context;
      context.max_result_window = store.options().max_result_window;
      context.now_millis = [] { return kBase; };
      // The old version's job records its segments' orders ...
      absl::StatusOr<ResolvedQuery> old_query =
          ResolveQuery(*before, request, context);
      if (!old_query.ok()) continue;
      ExecuteQuery(*old_query, IndexUse::kAlways);
      ExecuteQuery(*old_query, IndexUse::kAuto);
      // ... and a copy of the new one shares that cache.
      auto copy = std::make_shared<JobResults>(*new_job);
      copy->sort_orders = old_job->sort_orders;
      StoreVersion version = *after;
      version.jobs[request.job_id] = copy;
      absl::StatusOr<ResolvedQuery> query =
          ResolveQuery(version, request, context);
      ASSERT_TRUE(query.ok());
      ExecuteQuery(*query, IndexUse::kAlways);  // its own orders built
      const std::string reference =
          InfluencersJson(ReferenceExecuteQuery(*query));
      ASSERT_EQ(InfluencersJson(ExecuteQuery(*query, IndexUse::kAuto)),
                reference)
          << "seed " << seed << ": " << RequestToJson(request);
      ++compared;
    }
  }
  EXPECT_GT(compared, 50);

  // Two jobs of as many segments (a base, then deltas of updates), of
  // different rows: the second, sharing the first's cache, must not use
  // the first's recorded orders, for the score, probability and time
  // orders alike.
  auto build = [](uint64_t seed) {
    std::mt19937_64 random(seed);
    StoreOptions options;
    options.merge_ratio = 1e9;
    options.max_delta_segments = 64;
    options.merge_growing_deltas = false;
    auto store = std::make_unique<InfluencerStore>(options);
    std::vector<InfluencerFields> rows;
    for (int batch = 0; batch < 4; ++batch) {
      MutationBatch mutations(batch == 0 ? MutationMode::kLoad
                                         : MutationMode::kBulk);
      for (int r = 0; r < (batch == 0 ? 300 : 40); ++r) {
        InfluencerFields row;
        if (batch > 0 && r % 2 == 0) {
          row = rows[random() % rows.size()];  // an update
        } else {
          row.field_name = "host";
          row.field_value = kFieldValues[random() % std::size(kFieldValues)];
          row.timestamp = kBase + static_cast<int64_t>(random() % 300) * 60000;
          row.bucket_span = 60;
          rows.push_back(row);
        }
        row.influencer_score = kScores[random() % std::size(kScores)];
        row.initial_influencer_score = row.influencer_score;
        row.probability = kScores[random() % std::size(kScores)] / 100;
        mutations.AddInfluencer("job", row);
      }
      EXPECT_TRUE(store->Apply(std::move(mutations)).ok());
    }
    return store;
  };
  std::unique_ptr<InfluencerStore> first = build(1);
  std::unique_ptr<InfluencerStore> second = build(2);
  const JobResults* first_job = first->Current()->FindJob("job");
  const JobResults* second_job = second->Current()->FindJob("job");
  ASSERT_EQ(first_job->segments.size(), 4u);
  ASSERT_EQ(second_job->segments.size(), 4u);
  auto copy = std::make_shared<JobResults>(*second_job);
  copy->sort_orders = first_job->sort_orders;
  StoreVersion version = *second->Current();
  version.jobs["job"] = copy;
  QueryContext context;
  context.now_millis = [] { return kBase; };
  for (const char* sort : {"influencer_score", "probability", "timestamp"}) {
    for (bool desc : {true, false}) {
      InfluencersRequest request;
      request.job_id = "job";
      request.sort = sort;
      request.desc = desc;
      request.from = 5;
      request.size = 30;
      absl::StatusOr<ResolvedQuery> on_first =
          ResolveQuery(*first->Current(), request, context);
      ASSERT_TRUE(on_first.ok());
      const size_t recorded = [&] {
        std::lock_guard<std::mutex> lock(first_job->sort_orders->mu);
        return first_job->sort_orders->segment_orders.size();
      }();
      ExecuteQuery(*on_first, IndexUse::kAlways);
      ExecuteQuery(*on_first, IndexUse::kAuto);
      {
        std::lock_guard<std::mutex> lock(first_job->sort_orders->mu);
        ASSERT_EQ(first_job->sort_orders->segment_orders.size(),
                  // (both time directions share the time order's entry)
                  recorded + (std::string(sort) == "timestamp" && !desc ? 0 : 1))
            << sort << (desc ? " desc" : " asc") << ": recorded";
      }
      absl::StatusOr<ResolvedQuery> query =
          ResolveQuery(version, request, context);
      ASSERT_TRUE(query.ok());
      ExecuteQuery(*query, IndexUse::kAlways);
      EXPECT_EQ(InfluencersJson(ExecuteQuery(*query, IndexUse::kAuto)),
                InfluencersJson(ReferenceExecuteQuery(*query)))
          << sort << (desc ? " desc" : " asc");
      // The copy's query recorded its own segments; the first job's
      // queries find theirs again (the recorded segments are checked).
      EXPECT_EQ(InfluencersJson(ExecuteQuery(*on_first, IndexUse::kAuto)),
                InfluencersJson(ReferenceExecuteQuery(*on_first)))
          << sort << (desc ? " desc" : " asc");
    }
  }
  // The records count in the job's index memory: at least a segment's and
  // an order's pointer per segment each, beyond the segments' own.
  size_t segments_own = 0;
  for (const JobResults::Segment& segment : first_job->segments) {
    segments_own += IndexMemoryOf(*segment.rows).other_orders;
  }
  const size_t records = [&] {
    std::lock_guard<std::mutex> lock(first_job->sort_orders->mu);
    return first_job->sort_orders->segment_orders.size();
  }();
  ASSERT_EQ(records, 5u);
  EXPECT_GE(IndexMemoryOf(*first_job).other_orders,
            segments_own + records * 4 * 2 * sizeof(std::shared_ptr<const void>));
}

}  // namespace
}  // namespace clout
