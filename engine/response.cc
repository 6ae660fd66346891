#include "engine/response.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/dates.h"
#include "engine/error.h"
#include "engine/java_format.h"
#include "engine/json_out.h"

namespace clout {
namespace {

// Field names of every document in Elasticsearch's results indices
// (ReservedFieldNames.RESERVED_RESULT_FIELD_NAME_ARRAY of Elasticsearch 7).
// An influencer whose field name starts with one of these does not get the
// `<field_name>: <value>` key, which would clash with the mapping.
constexpr absl::string_view kReservedResultFieldNames[] = {
    "_id", "_index", "actual", "actual_point", "all_field_values",
    "anomaly_score", "average_bucket_processing_time_ms", "bucket_allocation_failures_count",
    "bucket_count", "bucket_influencers", "bucket_span", "by_field_name",
    "by_field_value", "category_id", "causes", "correlated_by_field_value",
    "description", "detector_index", "earliest_record_timestamp",
    "empty_bucket_count", "event_count", "examples",
    "exponential_average_bucket_processing_time_ms",
    "exponential_average_calculation_context", "field_name",
    "forecast_create_timestamp", "forecast_end_timestamp",
    "forecast_expiry_timestamp", "forecast_id", "forecast_lower",
    "forecast_memory_bytes", "forecast_messages", "forecast_prediction",
    "forecast_progress", "forecast_start_timestamp", "forecast_status",
    "forecast_upper", "function", "function_description", "geo_results",
    "incremental_metric_value_ms", "influencer_field_name",
    "influencer_field_value", "influencer_field_values", "influencer_score",
    "influencers", "initial_anomaly_score", "initial_influencer_score",
    "initial_record_score", "input_bytes", "input_field_count",
    "input_record_count", "invalid_date_count", "is_interim", "job_id",
    "last_data_time", "latest_empty_bucket_timestamp",
    "latest_record_time_stamp", "latest_record_timestamp",
    "latest_result_time_stamp", "latest_sparse_bucket_timestamp",
    "latest_timestamp", "log_time", "max_matching_length",
    "maximum_bucket_processing_time_ms", "memory_status", "min_version",
    "minimum_bucket_processing_time_ms", "missing_field_count",
    "model_bytes", "model_feature", "model_lower", "model_median",
    "model_upper", "multi_bucket_impact", "num_matches",
    "out_of_order_timestamp_count", "over_field_name", "over_field_value",
    "partition_field_name", "partition_field_value", "peak_model_bytes",
    "preferred_to_categories", "previous_exponential_average_ms",
    "probability", "processed_field_count", "processed_record_count",
    "processing_time_ms", "raw_anomaly_score", "record_score", "regex",
    "result_type", "retain", "scheduled_events", "search_count",
    "snapshot_doc_count", "snapshot_id", "sparse_bucket_count", "terms",
    "timestamp", "total_by_field_count", "total_over_field_count",
    "total_partition_field_count", "total_search_time_ms", "typical",
    "typical_point",
};

void WriteInfluencer(const Influencer& row, bool human, JsonOut& json) {
  json.BeginObject();
  json.Key("job_id");
  json.String(row.job_id);
  json.Key("result_type");
  json.String("influencer");
  json.Key("influencer_field_name");
  json.String(row.influencer_field_name);
  json.Key("influencer_field_value");
  json.String(row.influencer_field_value);
  if (WritesFieldValueKey(row.influencer_field_name)) {
    json.Key(row.influencer_field_name);
    json.String(row.influencer_field_value);
  }
  json.Key("influencer_score");
  json.Double(row.influencer_score);
  json.Key("initial_influencer_score");
  json.Double(row.initial_influencer_score);
  json.Key("probability");
  json.Double(row.probability);
  json.Key("bucket_span");
  json.Long(row.bucket_span);
  json.Key("is_interim");
  json.Bool(row.is_interim);
  if (human) {
    json.Key("timestamp_string");
    json.String(FormatIsoMillis(row.timestamp));
  }
  json.Key("timestamp");
  json.Long(row.timestamp);
  json.EndObject();
}

}  // namespace

bool WritesFieldValueKey(absl::string_view field_name) {
  absl::string_view head = field_name.substr(0, field_name.find('.'));
  return std::find(std::begin(kReservedResultFieldNames),
                   std::end(kReservedResultFieldNames),
                   head) == std::end(kReservedResultFieldNames);
}

void AppendInfluencerJson(const Influencer& influencer, bool human,
                          std::string* out) {
  JsonOut json(out, false);
  WriteInfluencer(influencer, human, json);
}

void AppendInfluencersJson(const InfluencersPage& page,
                           const OutputOptions& options, std::string* out) {
  JsonOut json(out, options.pretty);
  json.BeginObject();
  json.Key("count");
  json.Long(page.count);
  json.Key("influencers");
  json.BeginArray();
  for (const Influencer& row : page.influencers) {
    WriteInfluencer(row, options.human, json);
  }
  json.EndArray();
  json.EndObject();
}

std::string InfluencersJson(const InfluencersPage& page,
                            const OutputOptions& options) {
  std::string out;
  out.reserve(64 + page.influencers.size() * 320);
  AppendInfluencersJson(page, options, &out);
  return out;
}

std::string ErrorJson(const absl::Status& status, bool pretty) {
  EsErrorInfo info = EsErrorOf(status);
  std::string out;
  JsonOut json(&out, pretty);
  json.BeginObject();
  json.Key("error");
  json.BeginObject();
  json.Key("root_cause");
  json.BeginArray();
  json.BeginObject();
  json.Key("type");
  json.String(info.root_cause_type);
  json.Key("reason");
  json.String(info.root_cause_reason);
  json.EndObject();
  json.EndArray();
  json.Key("type");
  json.String(info.type);
  json.Key("reason");
  json.String(info.reason);
  for (const EsErrorInfo::Cause& cause : info.caused_by) {
    json.Key("caused_by");
    json.BeginObject();
    json.Key("type");
    json.String(cause.type);
    json.Key("reason");
    json.String(cause.reason);
  }
  for (size_t i = 0; i < info.caused_by.size(); ++i) json.EndObject();
  json.EndObject();
  json.Key("status");
  json.Long(info.http_status);
  json.EndObject();
  return out;
}

}  // namespace clout
