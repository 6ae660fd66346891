// A deliberately naive Get Influencers executor, the yardstick for the fast
// one: it materialises every matching row, stable-sorts all of them and
// slices the page. Its only virtue is being obviously right; tests and
// benchmarks compare ExecuteQuery() (executor.h) against it.
//
// Thread-safe: it only reads the immutable snapshot.
#ifndef CLOUT_ENGINE_REFERENCE_EXECUTOR_H_
#define CLOUT_ENGINE_REFERENCE_EXECUTOR_H_

#include "engine/executor.h"

namespace clout {

// Same contract as ExecuteQuery(): returns the page of `query`.
InfluencersPage ReferenceExecuteQuery(const ResolvedQuery& query);

}  // namespace clout

#endif  // CLOUT_ENGINE_REFERENCE_EXECUTOR_H_
