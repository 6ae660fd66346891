#include "engine/reference_executor.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace clout {
namespace {

// A sort value: missing, a number (doubles and longs both fit a long double
// exactly) or a string.
struct SortValue {
  bool missing = false;
  bool is_string = false;
  long double number = 0;
  bool negative_zero = false;
  std::string text;
};

SortValue ValueOf(const Influencer& row, const ResolvedQuery& query) {
  SortValue v;
  auto number = [&](double d) {
    if (IsMissing(d)) {  // sorts last, either way
      v.missing = true;
      return;
    }
    v.number = d;
    v.negative_zero = (d == 0 && std::signbit(d));
  };
  switch (query.sort) {
    case SortField::kInfluencerScore: number(row.influencer_score); break;
    case SortField::kInitialInfluencerScore:
      number(row.initial_influencer_score);
      break;
    case SortField::kProbability: number(row.probability); break;
    case SortField::kBucketSpan: v.number = row.bucket_span; break;
    case SortField::kTimestamp: v.number = row.timestamp; break;
    case SortField::kIsInterim: v.number = row.is_interim ? 1 : 0; break;
    case SortField::kInfluencerFieldName:
      v.is_string = true;
      v.text = std::string(row.influencer_field_name);
      break;
    case SortField::kInfluencerFieldValue:
      v.is_string = true;
      v.text = std::string(row.influencer_field_value);
      break;
    case SortField::kJobId:
      v.is_string = true;
      v.text = std::string(row.job_id);
      break;
    case SortField::kResultType:
      v.is_string = true;
      v.text = "influencer";
      break;
    case SortField::kInfluencerField:
      v.is_string = true;
      if (row.influencer_field_name == query.sort_field_name) {
        v.text = std::string(row.influencer_field_value);
      } else {
        v.missing = true;
      }
      break;
  }
  return v;
}

// -1, 0 or 1 as a is before, level with, or after b in ascending order.
int CompareAscending(const SortValue& a, const SortValue& b) {
  if (a.is_string) {
    // Byte-wise, as UTF-8 bytes compare unsigned.
    const std::string& x = a.text;
    const std::string& y = b.text;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      unsigned char cx = static_cast<unsigned char>(x[i]);
      unsigned char cy = static_cast<unsigned char>(y[i]);
      if (cx != cy) return cx < cy ? -1 : 1;
    }
    if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
    return 0;
  }
  if (a.number < b.number) return -1;
  if (a.number > b.number) return 1;
  if (a.negative_zero != b.negative_zero) return a.negative_zero ? -1 : 1;
  return 0;
}

}  // namespace

InfluencersPage ReferenceExecuteQuery(const ResolvedQuery& query) {
  // A job of segments is read as the one segment it stands for.
  const std::shared_ptr<const JobResults> plain = MaterializeJob(query.job);
  const JobResults& job = *plain;
  struct Match {
    Influencer row;
    SortValue value;
    size_t ingest_position;
  };
  std::vector<Match> matches;
  for (size_t i = 0; i < job.size(); ++i) {
    Influencer row;
    row.job_id = job.job_id;
    row.influencer_field_name = job.field_name(i);
    row.influencer_field_value = job.field_value(i);
    row.influencer_score = job.columns.influencer_score[i];
    row.initial_influencer_score = job.columns.initial_influencer_score[i];
    row.probability = job.columns.probability[i];
    row.bucket_span = job.bucket_span(i);
    row.is_interim = job.columns.is_interim[i] != 0;
    row.timestamp = job.columns.timestamp[i];

    if (query.start.has_value() && row.timestamp < *query.start) continue;
    if (query.end.has_value() && !(row.timestamp < *query.end)) continue;
    if (query.min_score.has_value() &&
        !(row.influencer_score >= *query.min_score)) {
      continue;
    }
    if (query.exclude_interim && row.is_interim) continue;
    SortValue value = ValueOf(row, query);
    // Shown as Elasticsearch shows a missing double: 0.0.
    row.influencer_score = ShownDouble(row.influencer_score);
    row.initial_influencer_score = ShownDouble(row.initial_influencer_score);
    row.probability = ShownDouble(row.probability);
    matches.push_back({row, std::move(value), i});
  }

  std::stable_sort(matches.begin(), matches.end(),
                   [&](const Match& a, const Match& b) {
                     if (a.value.missing || b.value.missing) {
                       return !a.value.missing && b.value.missing;
                     }
                     int cmp = CompareAscending(a.value, b.value);
                     return query.desc ? cmp > 0 : cmp < 0;
                   });

  InfluencersPage page;
  page.count = static_cast<int64_t>(matches.size());
  for (int64_t i = query.from;
       i < query.from + query.size && i < page.count; ++i) {
    page.influencers.push_back(matches[static_cast<size_t>(i)].row);
  }
  if (!page.influencers.empty()) page.job = plain;
  return page;
}

}  // namespace clout
