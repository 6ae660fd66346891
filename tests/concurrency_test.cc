// Concurrency stress: many threads query while loads commit repeatedly.
// Every response must equal the response of one committed state (the store
// after exactly k loads, for some k), states never go backwards for a
// reader, and no load is lost. Run it under ThreadSanitizer too:
//   bazel test --config=tsan //tests:concurrency_test
#include <algorithm>
#include <atomic>
#include <utility>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "engine/loader.h"
#include "engine/request.h"
#include "engine/response.h"
#include "engine/store.h"
#include "gtest/gtest.h"

namespace clout {
namespace {

constexpr int kLoads = 24;
constexpr int kReaders = 4;

// Load k: new results, re-scored old ones (replacements that reorder), an
// interim result turned final, and every few loads a replace of job "r".
std::string Dump(int k) {
  std::string dump;
  for (int i = 0; i < 40; ++i) {
    absl::StrAppend(
        &dump,
        R"({"job_id":"j","result_type":"influencer","influencer_field_name":"host",)"
        R"("influencer_field_value":"h)", k, "-", i, R"(","influencer_score":)",
        (k * 37 + i * 11) % 100, R"(,"bucket_span":600,"is_interim":)",
        i % 7 == 0 ? "true" : "false", R"(,"timestamp":)", 1000 * (i % 10),
        "}\n");
  }
  if (k > 0) {
    // Re-score ten results of the previous load: they move in sort order.
    for (int i = 0; i < 10; ++i) {
      absl::StrAppend(
          &dump,
          R"({"job_id":"j","result_type":"influencer","influencer_field_name":"host",)"
          R"("influencer_field_value":"h)", k - 1, "-", i,
          R"(","influencer_score":)", 99 - i, R"(,"bucket_span":600,"is_interim":false,)"
          R"("timestamp":)", 1000 * (i % 10), "}\n");
    }
  }
  return dump;
}

const std::vector<std::string>& Bodies() {
  static const std::vector<std::string> bodies = {
      R"({"page":{"size":20}})",
      R"({"sort":"timestamp","desc":false,"page":{"from":30,"size":15}})",
      R"({"exclude_interim":true,"influencer_score":50,"page":{"size":10}})",
      R"({"sort":"host","page":{"size":5}})",
  };
  return bodies;
}

std::string Answer(const InfluencerStore& store, const std::string& body) {
  absl::StatusOr<InfluencersRequest> request = ParseBodyRequest("j", body);
  absl::StatusOr<InfluencersPage> page = store.GetInfluencers(*request);
  return page.ok() ? InfluencersJson(*page) : ErrorJson(page.status());
}

TEST(ConcurrencyTest, ReadersSeeOnlyCommittedStatesInOrder) {
  // The answers of every state, computed single-threaded first.
  // For each request: answer -> the first and last state that gives it.
  std::vector<absl::flat_hash_map<std::string, std::pair<int, int>>> state_of(
      Bodies().size());
  {
    InfluencerStore sequential;
    sequential.RegisterJob("j");
    for (int k = 0; k <= kLoads; ++k) {
      if (k > 0) {
        ASSERT_TRUE(LoadString(sequential, Dump(k - 1)).ok());
      }
      for (size_t b = 0; b < Bodies().size(); ++b) {
        auto [it, inserted] = state_of[b].try_emplace(
            Answer(sequential, Bodies()[b]), std::make_pair(k, k));
        it->second.second = k;
      }
    }
  }

  InfluencerStore store;
  store.RegisterJob("j");
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::atomic<long> answers{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < kReaders; ++t) {
    readers.emplace_back([&, t] {
      std::vector<int> last_state(Bodies().size(), 0);
      size_t b = static_cast<size_t>(t) % Bodies().size();
      // Keep reading until the writer is done, then once more.
      for (bool last = false; !last;) {
        last = done.load();
        std::string answer = Answer(store, Bodies()[b]);
        auto it = state_of[b].find(answer);
        if (it == state_of[b].end()) {
          if (failures++ == 0) {
            ADD_FAILURE() << "an answer of no committed state: " << answer;
          }
        } else if (it->second.second < last_state[b]) {
          // Every state giving this answer is older than one already seen.
          if (failures++ == 0) {
            ADD_FAILURE() << "a reader went back from state " << last_state[b]
                          << " to at most " << it->second.second;
          }
        } else {
          last_state[b] = std::max(last_state[b], it->second.first);
        }
        ++answers;
        b = (b + 1) % Bodies().size();
      }
    });
  }
  for (int k = 0; k < kLoads; ++k) {
    absl::StatusOr<LoadReport> report = LoadString(store, Dump(k));
    ASSERT_TRUE(report.ok()) << report.status();
  }
  done = true;
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(answers.load(), kReaders);
  // No load lost: the final answers are those of the last state.
  for (size_t b = 0; b < Bodies().size(); ++b) {
    auto it = state_of[b].find(Answer(store, Bodies()[b]));
    ASSERT_NE(it, state_of[b].end());
    std::string final_answer = Answer(store, Bodies()[b]);
    InfluencerStore sequential;
    for (int k = 0; k < kLoads; ++k) ASSERT_TRUE(LoadString(sequential, Dump(k)).ok());
    EXPECT_EQ(final_answer, Answer(sequential, Bodies()[b]));
  }
  EXPECT_EQ(store.Current()->generation, static_cast<uint64_t>(kLoads + 1));
}

TEST(ConcurrencyTest, ConcurrentLoadsAndDeletesAllLand) {
  InfluencerStore store;
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&store, t] {
      for (int k = 0; k < 10; ++k) {
        std::string dump;
        for (int i = 0; i < 25; ++i) {
          absl::StrAppend(
              &dump,
              R"({"job_id":"job-)", t,
              R"(","result_type":"influencer","influencer_field_name":"f",)"
              R"("influencer_field_value":"v)", k, "-", i,
              R"(","timestamp":)", i, "}\n");
        }
        ASSERT_TRUE(LoadString(store, dump).ok());
      }
      store.RegisterJob(absl::StrCat("extra-", t));
      ASSERT_TRUE(store.DeleteJob(absl::StrCat("extra-", t)).ok());
    });
  }
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done) {
      for (int t = 0; t < 4; ++t) {
        InfluencersRequest request;
        request.job_id = absl::StrCat("job-", t);
        absl::StatusOr<InfluencersPage> page = store.GetInfluencers(request);
        if (page.ok()) {
          EXPECT_EQ(page->count % 25, 0);
        }
      }
    }
  });
  for (std::thread& w : writers) w.join();
  done = true;
  reader.join();
  for (int t = 0; t < 4; ++t) {
    InfluencersRequest request;
    request.job_id = absl::StrCat("job-", t);
    request.size = 0;
    absl::StatusOr<InfluencersPage> page = store.GetInfluencers(request);
    ASSERT_TRUE(page.ok());
    EXPECT_EQ(page->count, 250);
    EXPECT_EQ(store.Current()->PlainJob(absl::StrCat("extra-", t)), nullptr);
  }
}

}  // namespace
}  // namespace clout
