// Elasticsearch's `_bulk` for result documents: the NDJSON request body in,
// a kBulk MutationBatch out (mutation.h), and the items response back.
//
//   absl::StatusOr<clout::BulkRequest> request =
//       clout::ParseBulkRequest(body, {});
//   if (!request.ok()) return clout::ErrorJson(request.status());
//   absl::StatusOr<clout::MutationResult> result =
//       store.Apply(std::move(request->batch));
//   if (!result.ok()) return clout::ErrorJson(result.status());
//   std::string json = clout::BulkResponseJson(request->items, *result, took);
//
// The body: an action line (`index`, `create`, `delete`, `update`), then,
// except for `delete`, the document line (the loader's rules, loader.h).
// Influencer results become upserts (`index`, or `create` that fails with
// 409 when the result exists) and deletions by _id; documents of other
// result types are accepted as MutationBatch::AddOtherResult items and
// counted. Everything is pure and thread-safe.
#ifndef CLOUT_ENGINE_BULK_H_
#define CLOUT_ENGINE_BULK_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/mutation.h"

namespace clout {

struct BulkOptions {
  // The index of the request's path (`POST /{index}/_bulk`), used for
  // actions that name none. Empty: every action must name its `_index`.
  std::string default_index;
  // If set, asked for every item before it is staged: `action` is
  // "index", "create", "delete" or "update", `index` the index the action
  // names (or the default). A non-OK answer (a 403 security_exception, say)
  // becomes the item's error and the item is not applied.
  std::function<absl::Status(absl::string_view action,
                             absl::string_view index)>
      authorize;
};

// One item of a parsed request, as its response names it.
struct BulkItem {
  // "index", "create", "delete" or "update": the item's key in the
  // response.
  std::string action;
  // The index the item answers as `_index`: the results index an alias
  // writes to (`.ml-anomalies-<job>` and `.ml-anomalies-.write-<job>`
  // answer `.ml-anomalies-shared`), else the index named.
  std::string index;
  // The `_id` given, or the one computed from an influencer document, or
  // a generated one for another result type's document without one.
  std::string id;
};

struct BulkRequest {
  // One item per action, in order.
  MutationBatch batch{MutationMode::kBulk};
  std::vector<BulkItem> items;  // the batch's items, in the same order
  // Documents of other result types, by result_type ("(none)" when
  // absent), as LoadReport::skipped counts them.
  std::map<std::string, uint64_t, std::less<>> other_results;
};

// Parses a `_bulk` body. Item failures (refused by options.authorize, a bad
// document, an index Clout does
// not serve: 404 index_not_found_exception, an `_id` that does not name the
// document's result: 400 illegal_argument_exception, `update` actions: 400)
// become error items. Whole-request errors, in Elasticsearch's words:
//   - 400 parse_exception "request body is required" for an empty body;
//   - 400 illegal_argument_exception "The bulk request must be terminated
//     by a newline [\n]";
//   - 400 illegal_argument_exception "Malformed action/metadata line [N],
//     expected START_OBJECT but found [VALUE_STRING]" and the parser's
//     other action-line messages (unknown action, unknown parameter, a
//     value that is not simple, a second action on the line, malformed
//     JSON);
//   - 400 action_request_validation_exception "Validation Failed: 1: index
//     is missing;" (no `_index` and no default) or "...: id is missing;"
//     (a delete without `_id`).
absl::StatusOr<BulkRequest> ParseBulkRequest(absl::string_view body,
                                             const BulkOptions& options);

// The `_bulk` response for `items` (from ParseBulkRequest) and the
// `result` of applying their batch: {"errors":B,"took":T,"items":[...]},
// compact. Each item is {"<action>":{"_index","_id","_version","result",
// "_shards":{"total":1,"successful":1,"failed":0},"_seq_no",
// "_primary_term":1,"status"}}, or for a failed item {"<action>":{"_index",
// "_id","status","error":{"type","reason"}}}. `items` and `result.items`
// must have the same size.
std::string BulkResponseJson(const std::vector<BulkItem>& items,
                             const MutationResult& result,
                             int64_t took_millis);

// Whether `index` is one of the results indices Clout serves:
// `.ml-anomalies-shared`, `.ml-anomalies-custom-*` and the aliases
// `.ml-anomalies-<job>` and `.ml-anomalies-.write-<job>`. Pure.
bool IsResultsIndex(absl::string_view index);

}  // namespace clout

#endif  // CLOUT_ENGINE_BULK_H_
