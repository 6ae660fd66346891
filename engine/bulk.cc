#include "engine/bulk.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/error.h"
#include "engine/java_format.h"

namespace clout {

std::string BulkResponseJson(const std::vector<BulkItem>& items,
                             const MutationResult& result,
                             int64_t took_millis) {
  std::string out;
  out.reserve(64 + items.size() * 200);
  absl::StrAppend(&out, "{\"errors\":", result.errors() ? "true" : "false",
                  ",\"took\":", took_millis, ",\"items\":[");
  for (size_t i = 0; i < items.size() && i < result.items.size(); ++i) {
    const BulkItem& item = items[i];
    const ItemResult& outcome = result.items[i];
    if (i > 0) out.push_back(',');
    out.push_back('{');
    AppendJsonString(item.action, &out);
    out.append(":{\"_index\":");
    AppendJsonString(item.index, &out);
    out.append(",\"_id\":");
    AppendJsonString(item.id, &out);
    if (outcome.outcome == MutationOutcome::kError) {
      const EsErrorInfo error = EsErrorOf(outcome.error);
      absl::StrAppend(&out, ",\"status\":", outcome.status,
                      ",\"error\":{\"type\":");
      AppendJsonString(error.type, &out);
      out.append(",\"reason\":");
      AppendJsonString(error.reason, &out);
      out.append("}}}");
      continue;
    }
    absl::StrAppend(&out, ",\"_version\":", outcome.version, ",\"result\":\"",
                    MutationOutcomeName(outcome.outcome),
                    "\",\"_shards\":{\"total\":1,\"successful\":1,\"failed\":0}"
                    ",\"_seq_no\":",
                    outcome.seq_no, ",\"_primary_term\":1,\"status\":",
                    outcome.status, "}}");
  }
  out.append("]}");
  return out;
}

}  // namespace clout
