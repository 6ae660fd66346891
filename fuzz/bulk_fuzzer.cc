// libFuzzer target: `_bulk` requests (clout::ParseBulkRequest), applied to
// a store seeded with the sample dump, then the items response and queries
// on every job.
//
// Input: the request body as sent.
//
// Invariants checked (a failure aborts, which libFuzzer reports as a crash):
//   - a refused request is a 400 whose error JSON is valid, and changes
//     nothing;
//   - a parsed request has one item per batch operation, applies without
//     error, and answers one item per action: failed items have an error
//     status and no sequence number, the others consecutive sequence
//     numbers from the store's next one;
//   - the items response is valid JSON;
//   - every query answers the same through the fast and reference
//     executors on the store the request left.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "engine/bulk.h"
#include "engine/error.h"
#include "engine/loader.h"
#include "engine/store.h"
#include "fuzz/fuzz_util.h"

namespace {

const char kSample[] =
#include "it_ops_new_kpi.inc"
    ;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view body(reinterpret_cast<const char*>(data), size);
  clout::StoreOptions options;
  options.now_millis = [] { return clout_fuzz::kNowMillis; };
  clout::InfluencerStore store(options);
  CLOUT_FUZZ_CHECK(clout::LoadString(store, kSample).ok(), "sample load");
  const uint64_t generation = store.Current()->generation;
  const int64_t next_seq_no = store.Current()->next_seq_no;

  absl::StatusOr<clout::BulkRequest> request =
      clout::ParseBulkRequest(body, clout::BulkOptions());
  if (!request.ok()) {
    CLOUT_FUZZ_CHECK(clout::HttpStatusOf(request.status()) == 400,
                     "refused with ", request.status().ToString());
    clout_fuzz::CheckErrorJson(request.status(), clout_fuzz::IsValidUtf8(body));
    return 0;
  }
  CLOUT_FUZZ_CHECK(request->items.size() == request->batch.operations(),
                   request->items.size(), " items for ",
                   request->batch.operations(), " operations");
  std::vector<clout::BulkItem> items = request->items;
  absl::StatusOr<clout::MutationResult> result =
      store.Apply(std::move(request->batch));
  CLOUT_FUZZ_CHECK(result.ok(), "apply: ", result.status().ToString());
  CLOUT_FUZZ_CHECK(result->items.size() == items.size(), "item count");
  CLOUT_FUZZ_CHECK(result->generation == generation + 1, "generation");
  int64_t seq_no = next_seq_no;
  for (const clout::ItemResult& item : result->items) {
    if (item.outcome == clout::MutationOutcome::kError) {
      CLOUT_FUZZ_CHECK(item.status >= 400 && item.seq_no == -1 &&
                           !item.error.ok(),
                       "failed item ", item.status);
    } else {
      CLOUT_FUZZ_CHECK(item.seq_no == seq_no++, "sequence numbers");
      CLOUT_FUZZ_CHECK(item.status == 200 || item.status == 201 ||
                           item.status == 404,
                       "status ", item.status);
    }
  }
  clout_fuzz::CheckValidJson(clout::BulkResponseJson(items, *result, 1),
                             "BulkResponseJson");
  const std::shared_ptr<const clout::StoreVersion> current = store.Current();
  for (const auto& [job_id, job] : current->jobs) {
    for (const char* sort : {"influencer_score", "timestamp"}) {
      clout::InfluencersRequest query;
      query.job_id = job_id;
      query.sort = sort;
      query.size = 5;
      clout_fuzz::RunQuery(store, query, clout_fuzz::IsValidUtf8(job_id));
    }
  }
  return 0;
}
