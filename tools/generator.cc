#include "tools/generator.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/dates.h"
#include "engine/java_format.h"
#include "engine/response.h"

namespace clout {
namespace {

// SplitMix64: small, fast and identical everywhere.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

struct Field {
  const char* name;
  int cardinality;
};
constexpr Field kFields[] = {
    {"kpi_indicator", 8}, {"host", 64}, {"client.ip", 512}, {"user", 4096}};
constexpr int64_t kSpans[] = {300, 600, 900, 3600};

// Only exactly rounded operations (no libm), so output is the same
// everywhere.
double Pow5(double u) { return u * u * u * u * u; }

// d.ddddd x 10^-e with e in 1..8, parsed from its decimal text.
double SmallProbability(Random& random) {
  uint64_t mantissa = 100000 + random.Below(900000);
  int exponent = 1 + static_cast<int>(random.Below(8));
  std::string digits = absl::StrCat(mantissa);  // six digits
  std::string text =
      absl::StrCat(digits.substr(0, 1), ".", digits.substr(1), "e-", exponent);
  double value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

double Round(double value, double scale) {
  return std::round(value * scale) / scale;
}

std::string FieldValue(const Field& field, uint64_t i) {
  absl::string_view name = field.name;
  if (name == "kpi_indicator") {
    static constexpr const char* kKpis[] = {
        "online_purchases", "login_failures", "page_views",
        "cart_abandonment", "checkout_latency", "search_queries",
        "api_errors",       "refunds"};
    return kKpis[i % 8];
  }
  if (name == "host") return absl::StrCat("web-", i, ".example.net");
  if (name == "client.ip") {
    return absl::StrCat("10.", (i >> 8) & 255, ".", i & 255, ".", (i * 7) % 250);
  }
  return absl::StrCat("user_", i * 2654435761u % 100000);
}

class Writer {
 public:
  explicit Writer(absl::FunctionRef<void(absl::string_view)> sink)
      : sink_(sink) {}
  ~Writer() { Flush(); }
  std::string& out() { return out_; }
  void EndLine() {
    out_.push_back('\n');
    if (out_.size() >= (1 << 20)) Flush();
  }
  void Flush() {
    if (!out_.empty()) sink_(out_);
    out_.clear();
  }

 private:
  absl::FunctionRef<void(absl::string_view)> sink_;
  std::string out_;
};

}  // namespace

void GenerateDump(const GeneratorOptions& options,
                  absl::FunctionRef<void(absl::string_view)> sink) {
  // A job beyond the records would get none: leave it out (and allocate
  // nothing for it, whatever options.jobs says).
  const int jobs = static_cast<int>(std::max<uint64_t>(
      1, std::min<uint64_t>(static_cast<uint64_t>(std::max(options.jobs, 1)),
                            options.records)));
  Random random(options.seed);
  Writer writer(sink);
  std::string& out = writer.out();

  std::vector<uint64_t> remaining(jobs, options.records / jobs);
  for (uint64_t j = 0; j < options.records % jobs; ++j) ++remaining[j];
  // Influencers per bucket vary 1..6: the last bucket of a job is the one
  // where its remaining count runs out.
  std::vector<int64_t> bucket(jobs, 0);
  bool any = true;
  while (any) {
    any = false;
    for (int j = 0; j < jobs; ++j) {
      if (remaining[j] == 0) continue;
      any = true;
      const std::string job_id = absl::StrCat("job-", j);
      const int64_t span = kSpans[j % 4];
      const int64_t timestamp =
          options.start_millis + bucket[j] * span * 1000;
      ++bucket[j];
      uint64_t in_bucket = std::min<uint64_t>(remaining[j], 1 + random.Below(6));
      remaining[j] -= in_bucket;
      const bool last_bucket = remaining[j] == 0;

      if (options.mixed && random.Below(4) == 0) {
        absl::StrAppend(&out, "{\"job_id\":\"", job_id,
                        "\",\"result_type\":\"bucket\",\"timestamp\":",
                        timestamp, ",\"anomaly_score\":");
        AppendJavaDouble(Round(100 * Pow5(random.Uniform()), 1e4), &out);
        absl::StrAppend(&out, ",\"bucket_span\":", span,
                        ",\"event_count\":", random.Below(5000),
                        ",\"is_interim\":", last_bucket ? "true" : "false",
                        "}");
        writer.EndLine();
      }
      // Distinct field/value pairs within the bucket.
      uint64_t first_value = random.Next();
      for (uint64_t k = 0; k < in_bucket; ++k) {
        const Field& field = kFields[(k + bucket[j]) % 4];
        std::string value =
            FieldValue(field, (first_value + k * 7919) % field.cardinality);
        // Mostly low scores, rarely high: u^5 keeps ~87% below 50.
        double u = random.Uniform();
        double score = Round(100 * Pow5(u), 1e4);
        double initial = Round(
            std::clamp(score * (0.9 + 0.2 * random.Uniform()), 0.0, 100.0),
            1e4);
        double probability = SmallProbability(random);
        bool interim = last_bucket && random.Below(2) == 0;

        out.append("{\"job_id\":");
        AppendJsonString(job_id, &out);
        out.append(",\"result_type\":\"influencer\",\"influencer_field_name\":");
        AppendJsonString(field.name, &out);
        out.append(",\"influencer_field_value\":");
        AppendJsonString(value, &out);
        if (WritesFieldValueKey(field.name)) {
          out.push_back(',');
          AppendJsonString(field.name, &out);
          out.push_back(':');
          AppendJsonString(value, &out);
        }
        out.append(",\"influencer_score\":");
        AppendJavaDouble(score, &out);
        out.append(",\"initial_influencer_score\":");
        AppendJavaDouble(initial, &out);
        out.append(",\"probability\":");
        AppendJavaDouble(probability, &out);
        absl::StrAppend(&out, ",\"bucket_span\":", span, ",\"is_interim\":",
                        interim ? "true" : "false", ",\"timestamp\":");
        if (options.mixed && random.Below(20) == 0) {
          AppendJsonString(FormatIsoMillis(timestamp), &out);
        } else {
          absl::StrAppend(&out, timestamp);
        }
        out.push_back('}');
        writer.EndLine();
      }
      if (options.mixed && random.Below(3) == 0) {
        absl::StrAppend(&out, "{\"job_id\":\"", job_id,
                        "\",\"result_type\":\"record\",\"probability\":");
        AppendJavaDouble(SmallProbability(random), &out);
        absl::StrAppend(&out, ",\"record_score\":");
        AppendJavaDouble(Round(100 * random.Uniform(), 1e4), &out);
        absl::StrAppend(&out, ",\"bucket_span\":", span, ",\"timestamp\":",
                        timestamp, ",\"function\":\"mean\",\"is_interim\":",
                        last_bucket ? "true" : "false", "}");
        writer.EndLine();
      }
    }
  }
}

std::string GenerateDumpString(const GeneratorOptions& options) {
  std::string dump;
  GenerateDump(options, [&](absl::string_view piece) {
    dump.append(piece.data(), piece.size());
  });
  return dump;
}

}  // namespace clout
