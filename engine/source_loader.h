// The loader's inside: one source's bytes to a MutationBatch. It detects
// the dump's format (loader.h lists them), then reads line by line (NDJSON
// and its variants), as a stream of concatenated documents, as a JSON array
// or as one whole document, within LoadOptions' memory budget. Internal to
// the engine; users see loader.h.
#ifndef CLOUT_ENGINE_SOURCE_LOADER_H_
#define CLOUT_ENGINE_SOURCE_LOADER_H_

#include "absl/status/status.h"
#include "engine/byte_source.h"
#include "engine/loader.h"
#include "engine/mutation.h"

namespace clout {
namespace loader_internal {

// What RunSource found out about its source.
struct SourceOutcome {
  DumpFormat format = DumpFormat::kUnknown;  // kUnknown: no document
  bool read_lines = false;  // read line by line (NDJSON and its variants)
};

// Reads all of `source` into `batch`, counting into `report`, under
// `options` (strictness, memory budget); with `final_budget_check`, the
// memory budget is checked once more at the end (it is checked every 1024
// documents while reading). Returns OK or the load's error (the batch and
// report then hold what was read before it). *outcome is set either way.
// For one thread at a time per source and batch.
absl::Status RunSource(ByteSource* source, const LoadOptions& options,
                       MutationBatch* batch, LoadReport* report,
                       bool final_budget_check, SourceOutcome* outcome);

}  // namespace loader_internal
}  // namespace clout

#endif  // CLOUT_ENGINE_SOURCE_LOADER_H_
