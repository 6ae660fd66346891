// The small fixed store the request fuzzers run their parsed requests on:
// data/it_ops_new_kpi.ndjson (embedded at build time: fuzz/run.sh generates
// it_ops_new_kpi.inc, a raw string literal of the file, into its build
// directory) plus the "web" job of tests/golden/sorting_and_fields.test,
// whose rows have several influencer field names, interim rows, two bucket
// spans and non-ASCII values.
#ifndef CLOUT_FUZZ_FIXED_STORE_H_
#define CLOUT_FUZZ_FIXED_STORE_H_

#include "absl/status/statusor.h"
#include "engine/loader.h"
#include "engine/store.h"
#include "fuzz/fuzz_util.h"

#if !__has_include("it_ops_new_kpi.inc")
#error "it_ops_new_kpi.inc missing: build with fuzz/run.sh, which generates it"
#endif

namespace clout_fuzz {

inline constexpr char kItOpsDump[] =
#include "it_ops_new_kpi.inc"
    ;

inline constexpr char kWebDump[] =
    R"({"job_id":"web","result_type":"influencer","influencer_field_name":"host","influencer_field_value":"web-10","host":"web-10","influencer_score":50.0,"initial_influencer_score":40.0,"probability":0.002,"bucket_span":3600,"is_interim":false,"timestamp":1464739200000})"
    "\n"
    R"({"job_id":"web","result_type":"influencer","influencer_field_name":"user","influencer_field_value":"\u00e9lodie","user":"élodie","influencer_score":50.0,"initial_influencer_score":55.5,"probability":1.5E-9,"bucket_span":3600,"is_interim":false,"timestamp":1464742800000})"
    "\n"
    R"({"job_id":"web","result_type":"influencer","influencer_field_name":"host","influencer_field_value":"web-9","host":"web-9","influencer_score":12.0,"initial_influencer_score":12.0,"probability":0.25,"bucket_span":3600,"is_interim":true,"timestamp":1464915600000})"
    "\n"
    R"({"job_id":"web","result_type":"influencer","influencer_field_name":"client.ip","influencer_field_value":"10.0.0.1","client.ip":"10.0.0.1","influencer_score":99.5,"initial_influencer_score":70.0,"probability":1.0E-7,"bucket_span":900,"timestamp":1464829200000})"
    "\n"
    R"({"job_id":"web","result_type":"influencer","influencer_field_name":"timestamp.zone","influencer_field_value":"UTC","influencer_score":0.5,"initial_influencer_score":0.5,"probability":0.9,"bucket_span":900,"is_interim":false,"timestamp":1464829200000})"
    "\n"
    R"({"job_id":"web","result_type":"influencer","influencer_field_name":"host","influencer_field_value":"Web-2","host":"Web-2","influencer_score":50.0,"initial_influencer_score":50.0,"probability":0.002,"bucket_span":3600,"is_interim":false,"timestamp":1464739200000})"
    "\n"
    R"({"job_id":"buckets-only","result_type":"bucket","timestamp":1464739200000,"anomaly_score":3.0,"bucket_span":900})"
    "\n";

inline constexpr char kItOpsJob[] = "it_ops_new_kpi";

// Built once, never freed (a leak LeakSanitizer ignores: still reachable).
inline const clout::InfluencerStore& FixedStore() {
  static const clout::InfluencerStore* store = [] {
    clout::StoreOptions options;
    options.now_millis = [] { return kNowMillis; };
    auto* s = new clout::InfluencerStore(options);
    for (const char* dump : {kItOpsDump, kWebDump}) {
      absl::StatusOr<clout::LoadReport> report = clout::LoadString(*s, dump);
      CLOUT_FUZZ_CHECK(report.ok(),
                       "fixed store: ", report.status().ToString());
    }
    CLOUT_FUZZ_CHECK(s->Current()->FindJob(kItOpsJob) != nullptr &&
                         s->Current()->FindJob(kItOpsJob)->size() > 0,
                     "fixed store has no ", kItOpsJob, " rows");
    return s;
  }();
  return *store;
}

// Runs `request` on the fixed store as asked, and again for each of the
// other jobs (the parsers always name one job; the others exercise other
// data with the same options).
inline void RunOnFixedStore(const clout::InfluencersRequest& request,
                            bool utf8_input) {
  const clout::InfluencerStore& store = FixedStore();
  RunQuery(store, request, utf8_input);
  for (const char* job : {kItOpsJob, "web", "buckets-only"}) {
    if (request.job_id == job) continue;
    clout::InfluencersRequest other = request;
    other.job_id = job;
    RunQuery(store, other, utf8_input);
  }
}

}  // namespace clout_fuzz

#endif  // CLOUT_FUZZ_FIXED_STORE_H_
