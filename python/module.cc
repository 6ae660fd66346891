// clout._clout: the engine's calls for the Python package (python/src/clout).
//
// This layer only converts: Python values in, the engine's public calls
// with the GIL released, Python values out. Argument checking that Python
// users expect (TypeError for a wrong type) lives in the Python layer; the
// request itself is checked by the engine's own parsers, so that a bad
// value fails with Elasticsearch's error exactly as over HTTP.
//
// An engine error is thrown as ApiFailure and raised in Python through
// clout._errors.from_failure(status, envelope_json, load), which picks the
// exception class (NotFoundError for 404, ...).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "engine/bulk.h"
#include "engine/column_view.h"
#include "engine/error.h"
#include "engine/executor.h"
#include "engine/loader.h"
#include "engine/request.h"
#include "engine/response.h"
#include "engine/store.h"
#include "storage/snapshot.h"

namespace py = pybind11;

namespace clout {
namespace {

// An engine error on its way to Python. `load` marks a load's error, which
// becomes clout.LoadError.
struct ApiFailure : std::exception {
  ApiFailure(absl::Status s, bool is_load) : status(std::move(s)), load(is_load) {}
  const char* what() const noexcept override { return "clout API error"; }
  absl::Status status;
  bool load;
};

template <typename T>
T ValueOrThrow(absl::StatusOr<T> value, bool load = false) {
  if (!value.ok()) throw ApiFailure(value.status(), load);
  return *std::move(value);
}

void OkOrThrow(const absl::Status& status) {
  if (!status.ok()) throw ApiFailure(status, false);
}

py::dict ReportDict(const LoadReport& r) {
  py::dict d;
  d["source"] = r.source;
  d["format"] = std::string(DumpFormatName(r.format));
  d["compression"] = r.compression;
  d["bytes"] = r.bytes;
  d["documents"] = r.documents;
  d["influencers_added"] = r.influencers_added;
  d["replaced"] = r.replaced;
  d["deleted"] = r.deleted;
  d["unchanged"] = r.unchanged;
  d["bulk_deletes"] = r.bulk_deletes;
  d["delete_misses"] = r.delete_misses;
  py::dict skipped;
  for (const auto& [type, n] : r.skipped) skipped[py::str(type)] = n;
  d["skipped"] = skipped;
  d["rejected"] = r.rejected;
  d["errors"] = r.errors;
  d["jobs"] = r.jobs;
  d["threads"] = r.threads;
  d["seconds"] = r.seconds;
  return d;
}

// Only a regular file is sniffed: reading a FIFO's first bytes would take
// them from the load that follows (and a reopened FIFO may never open).
bool StartsAsSnapshot(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  std::ifstream in(path, std::ios::binary);
  char prefix[8];
  return in.read(prefix, sizeof prefix) &&
         IsSnapshotFile(absl::string_view(prefix, sizeof prefix));
}

// One string column of matched rows: codes into `categories`, which are
// the distinct strings used, sorted bytewise (so code point order, as
// pandas sorts them).
struct StringColumn {
  Column<int32_t> codes;
  std::vector<absl::string_view> categories;
};

// Maps each segment's dictionary codes to one code space as rows come.
class StringCoder {
 public:
  explicit StringCoder(const JobColumnView& job)
      : job_(job), remaps_(job.segments().size()) {}

  int32_t Code(size_t segment, uint32_t code) {
    if (segment != current_) {
      current_ = segment;
      remap_ = &remaps_[segment];
      if (remap_->empty()) remap_->assign(job_.segments()[segment].strings.size(), -1);
    }
    int32_t& mapped = (*remap_)[code];
    if (mapped < 0) {
      absl::string_view s = job_.segments()[segment].strings[code];
      auto [it, inserted] =
          ids_.try_emplace(s, static_cast<int32_t>(strings_.size()));
      if (inserted) strings_.push_back(s);
      mapped = it->second;
    }
    return mapped;
  }

  // Sorts the categories and rewrites `codes` to match.
  StringColumn Finish(Column<int32_t> codes) {
    std::vector<int32_t> order(strings_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return strings_[a] < strings_[b];
    });
    std::vector<int32_t> rank(order.size());
    StringColumn out;
    out.categories.reserve(order.size());
    for (size_t r = 0; r < order.size(); ++r) {
      rank[order[r]] = static_cast<int32_t>(r);
      out.categories.push_back(strings_[order[r]]);
    }
    for (int32_t& c : codes) c = rank[c];
    out.codes = std::move(codes);
    return out;
  }

 private:
  const JobColumnView& job_;
  size_t current_ = SIZE_MAX;
  std::vector<int32_t>* remap_ = nullptr;
  std::vector<std::vector<int32_t>> remaps_;  // per segment, filled lazily
  absl::flat_hash_map<absl::string_view, int32_t> ids_;
  std::vector<absl::string_view> strings_;
};

// A NumPy array that owns `values` (moved into a capsule: no copy).
// Columns are the engine's Column<T>: large ones sit on transparent huge
// pages, so that filling a fresh million-row column takes a few dozen page
// faults rather than thousands (which made to_pandas vary 27-290 ms).
template <typename T>
py::array_t<T> ToArray(Column<T> values) {
  auto* owned = new Column<T>(std::move(values));
  py::capsule free(owned, [](void* p) { delete static_cast<Column<T>*>(p); });
  return py::array_t<T>(static_cast<py::ssize_t>(owned->size()), owned->data(),
                        free);
}

py::list StringList(const std::vector<absl::string_view>& strings) {
  py::list out;
  for (absl::string_view s : strings) {
    out.append(py::str(s.data(), s.size()));
  }
  return out;
}

// A store shared with Python. Every method may be called from several
// Python threads at once: the engine's store is thread-safe.
class Store {
 public:
  explicit Store(int64_t max_result_window) {
    if (max_result_window < 0) {
      throw py::value_error("max_result_window must be >= 0");
    }
    StoreOptions options;
    options.max_result_window = max_result_window;
    store_ = std::make_shared<InfluencerStore>(std::move(options));
  }

  // `path_bytes`: the file system's bytes of the path (os.fsencode).
  py::dict LoadPath(const py::bytes& path_bytes, bool lenient, int threads,
                    const std::string& name) {
    const std::string path = path_bytes;
    absl::StatusOr<LoadReport> report;
    {
      py::gil_scoped_release release;
      if (StartsAsSnapshot(path)) {
        LoadReport r;
        absl::StatusOr<uint64_t> results =
            LoadSnapshotFile(*store_, path, Env::Default(), &r.jobs);
        if (results.ok()) {
          r.source = name;
          r.format = DumpFormat::kSnapshot;
          r.threads = 1;
          std::ifstream in(path, std::ios::binary | std::ios::ate);
          r.bytes = in ? static_cast<uint64_t>(in.tellg()) : 0;
          r.documents = *results;
          r.influencers_added = *results;
          report = std::move(r);
        } else {
          report = results.status();
        }
      } else {
        LoadOptions options;
        options.lenient = lenient;
        options.threads = threads;
        options.source_name = name;
        report = LoadFile(*store_, path, options);
      }
    }
    return ReportDict(ValueOrThrow(std::move(report), /*load=*/true));
  }

  py::dict LoadBytes(const py::bytes& data, bool lenient, int threads,
                     const std::string& name) {
    // The bytes object is immutable and held by the caller for the call.
    char* buffer = nullptr;
    py::ssize_t length = 0;
    if (PyBytes_AsStringAndSize(data.ptr(), &buffer, &length) != 0) {
      throw py::error_already_set();
    }
    absl::StatusOr<LoadReport> report;
    {
      py::gil_scoped_release release;
      const absl::string_view text(buffer, static_cast<size_t>(length));
      if (text.size() >= 8 && IsSnapshotFile(text.substr(0, 8))) {
        report = EsError(400, "illegal_argument_exception",
                         absl::StrCat(name, ": a snapshot file is loaded from "
                                            "its path, not from bytes"));
      } else {
        LoadOptions options;
        options.lenient = lenient;
        options.threads = threads;
        options.source_name = name;
        report = LoadString(*store_, text, options);
      }
    }
    return ReportDict(ValueOrThrow(std::move(report), /*load=*/true));
  }

  // The request of a get_influencers call: a body (body mode) or
  // parameters, parsed by the engine's own parsers.
  static absl::StatusOr<InfluencersRequest> ParseRequest(
      const std::string& job_id, const std::optional<std::string>& body,
      const std::vector<RequestParam>& params) {
    if (body.has_value()) {
      if (body->empty()) return ParseParamRequest(job_id, {});
      return ParseBodyRequest(job_id, *body);
    }
    return ParseParamRequest(job_id, params);
  }

  QueryContext Context(std::optional<int64_t> now) const {
    QueryContext context;
    context.max_result_window = store_->options().max_result_window;
    if (now.has_value()) {
      const int64_t at = *now;
      context.now_millis = [at] { return at; };
    } else {
      std::shared_ptr<InfluencerStore> store = store_;
      context.now_millis = [store] { return store->NowMillis(); };
    }
    return context;
  }

  std::string QueryJson(const std::string& job_id,
                        const std::optional<std::string>& body,
                        const std::vector<RequestParam>& params,
                        std::optional<int64_t> now, bool pretty, bool human) {
    absl::StatusOr<std::string> json;
    {
      py::gil_scoped_release release;
      json = [&]() -> absl::StatusOr<std::string> {
        absl::StatusOr<InfluencersRequest> request =
            ParseRequest(job_id, body, params);
        if (!request.ok()) return request.status();
        std::shared_ptr<const StoreVersion> version = store_->Current();
        absl::StatusOr<ResolvedQuery> query =
            ResolveQuery(*version, *request, Context(now));
        if (!query.ok()) return query.status();
        OutputOptions output;
        output.pretty = pretty;
        output.human = human;
        return InfluencersJson(ExecuteQuery(*query), output);
      }();
    }
    return ValueOrThrow(std::move(json));
  }

  // The response as Python objects, built directly from the page (the
  // same values json.loads would give for QueryJson's text: Java's shortest
  // double text reads back to the same double).
  py::dict QueryDict(const std::string& job_id,
                     const std::optional<std::string>& body,
                     const std::vector<RequestParam>& params,
                     std::optional<int64_t> now) {
    absl::StatusOr<InfluencersPage> page;
    {
      py::gil_scoped_release release;
      page = [&]() -> absl::StatusOr<InfluencersPage> {
        absl::StatusOr<InfluencersRequest> request =
            ParseRequest(job_id, body, params);
        if (!request.ok()) return request.status();
        std::shared_ptr<const StoreVersion> version = store_->Current();
        absl::StatusOr<ResolvedQuery> query =
            ResolveQuery(*version, *request, Context(now));
        if (!query.ok()) return query.status();
        return ExecuteQuery(*query);
      }();
    }
    if (!page.ok()) throw ApiFailure(page.status(), false);
    // Interned keys, made once.
    static const auto* keys = new std::vector<py::str>{
        py::str("count"),           py::str("influencers"),
        py::str("job_id"),          py::str("result_type"),
        py::str("influencer_field_name"), py::str("influencer_field_value"),
        py::str("influencer_score"), py::str("initial_influencer_score"),
        py::str("probability"),     py::str("bucket_span"),
        py::str("is_interim"),      py::str("timestamp"),
        py::str("influencer")};
    const std::vector<py::str>& k = *keys;
    auto str = [](absl::string_view v) { return py::str(v.data(), v.size()); };
    py::list influencers(page->influencers.size());
    size_t i = 0;
    for (const Influencer& in : page->influencers) {
      py::dict d;
      d[k[2]] = str(in.job_id);
      d[k[3]] = k[12];
      py::str name = str(in.influencer_field_name);
      py::str value = str(in.influencer_field_value);
      d[k[4]] = name;
      d[k[5]] = value;
      if (WritesFieldValueKey(in.influencer_field_name)) d[name] = value;
      d[k[6]] = py::float_(in.influencer_score);
      d[k[7]] = py::float_(in.initial_influencer_score);
      d[k[8]] = py::float_(in.probability);
      d[k[9]] = py::int_(in.bucket_span);
      d[k[10]] = py::bool_(in.is_interim);
      d[k[11]] = py::int_(in.timestamp);
      influencers[i++] = std::move(d);
    }
    py::dict out;
    out[k[0]] = py::int_(page->count);
    out[k[1]] = std::move(influencers);
    return out;
  }

  // The filtered rows of `job_id` in ingest order, as columns.
  py::dict Columns(const std::string& job_id,
                   std::vector<RequestParam> params,
                   std::optional<int64_t> now,
                   const std::vector<std::string>& wanted) {
    // The columns asked for (the strings' coding costs a hash lookup a row).
    auto want = [&](absl::string_view name) {
      return std::find(wanted.begin(), wanted.end(), name) != wanted.end();
    };
    const bool want_names = want("influencer_field_name");
    const bool want_values = want("influencer_field_value");
    // No page: the result window does not apply.
    params.emplace_back("size", "0");
    Column<int64_t> timestamp;
    Column<double> score, initial, probability;
    Column<int64_t> span;
    Column<uint8_t> interim;
    Column<int32_t> name_codes, value_codes;
    StringColumn names, values;
    std::shared_ptr<const StoreVersion> version;
    std::optional<JobColumnView> view;
    absl::Status status;
    {
      py::gil_scoped_release release;
      status = [&]() -> absl::Status {
        absl::StatusOr<InfluencersRequest> request =
            ParseParamRequest(job_id, params);
        if (!request.ok()) return request.status();
        version = store_->Current();
        absl::StatusOr<ResolvedQuery> query =
            ResolveQuery(*version, *request, Context(now));
        if (!query.ok()) return query.status();
        // The view holds the job's segments till the strings are copied.
        view = JobColumnView::Of(*version, job_id);
        // Cannot fail: ResolveQuery found the job in this same version.
        // Kept as an error rather than a crash should that ever change.
        if (!view.has_value()) return absl::InternalError("job vanished");
        StringCoder name_coder(*view), value_coder(*view);
        // Without a filter every row matches: size the columns once.
        const size_t most = params.size() == 1 ? view->size() : 0;
        timestamp.reserve(most);
        score.reserve(most);
        initial.reserve(most);
        probability.reserve(most);
        span.reserve(most);
        interim.reserve(most);
        if (want_names) name_codes.reserve(most);
        if (want_values) value_codes.reserve(most);
        ForEachMatchInIngestOrder(*query, [&](size_t segment, uint32_t row) {
          const SegmentColumnView& c = view->segments()[segment];
          timestamp.push_back(c.timestamp[row]);
          // As get_influencers shows them: a missing double is 0.0.
          score.push_back(ShownDouble(c.influencer_score[row]));
          initial.push_back(ShownDouble(c.initial_influencer_score[row]));
          probability.push_back(ShownDouble(c.probability[row]));
          span.push_back(c.bucket_spans[c.bucket_span_code[row]]);
          interim.push_back(c.is_interim[row]);
          if (want_names) {
            name_codes.push_back(name_coder.Code(segment, c.field_name_code[row]));
          }
          if (want_values) {
            value_codes.push_back(
                value_coder.Code(segment, c.field_value_code[row]));
          }
        });
        names = name_coder.Finish(std::move(name_codes));
        values = value_coder.Finish(std::move(value_codes));
        return absl::OkStatus();
      }();
    }
    OkOrThrow(status);
    py::dict out;
    out["timestamp"] = ToArray(std::move(timestamp));
    out["influencer_score"] = ToArray(std::move(score));
    out["initial_influencer_score"] = ToArray(std::move(initial));
    out["probability"] = ToArray(std::move(probability));
    out["bucket_span"] = ToArray(std::move(span));
    out["is_interim"] = ToArray(std::move(interim));
    // The categories are copied into Python strings here: the version
    // (and its dictionaries) is released when this call returns.
    out["influencer_field_name"] = py::make_tuple(
        ToArray(std::move(names.codes)), StringList(names.categories));
    out["influencer_field_value"] = py::make_tuple(
        ToArray(std::move(values.codes)), StringList(values.categories));
    return out;
  }

  std::vector<std::string> Jobs() const {
    std::shared_ptr<const StoreVersion> version = store_->Current();
    std::vector<std::string> ids;
    for (const auto& [id, job] : version->jobs) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  py::dict Stats() const {
    std::shared_ptr<const StoreVersion> version = store_->Current();
    py::dict jobs;
    uint64_t total = 0;
    std::vector<std::string> ids = Jobs();
    for (const std::string& id : ids) {
      auto it = version->jobs.find(id);
      if (it == version->jobs.end()) continue;
      std::optional<JobColumnView> job = JobColumnView::Of(*version, id);
      py::dict d;
      d["influencers"] = job->size();
      total += job->size();
      if (auto range = job->TimestampRange()) {
        d["min_timestamp"] = range->first;
        d["max_timestamp"] = range->second;
      } else {
        d["min_timestamp"] = py::none();
        d["max_timestamp"] = py::none();
      }
      d["segments"] = job->segments().size();
      jobs[py::str(id)] = d;
    }
    py::dict out;
    out["jobs"] = jobs;
    out["influencers"] = total;
    out["generation"] = version->generation;
    out["influencer_field_names"] = [&] {
      std::vector<std::string> names(version->influencer_field_names.begin(),
                                     version->influencer_field_names.end());
      std::sort(names.begin(), names.end());
      return names;
    }();
    return out;
  }

  void DeleteJob(const std::string& job_id) {
    absl::Status status;
    {
      py::gil_scoped_release release;
      status = store_->DeleteJob(job_id);
    }
    OkOrThrow(status);
  }

  std::string ApplyBulk(const py::bytes& body, const std::string& index) {
    char* buffer = nullptr;
    py::ssize_t length = 0;
    if (PyBytes_AsStringAndSize(body.ptr(), &buffer, &length) != 0) {
      throw py::error_already_set();
    }
    absl::StatusOr<std::string> json;
    {
      py::gil_scoped_release release;
      json = [&]() -> absl::StatusOr<std::string> {
        const auto started = std::chrono::steady_clock::now();
        BulkOptions options;
        options.default_index = index;
        absl::StatusOr<BulkRequest> bulk = ParseBulkRequest(
            absl::string_view(buffer, static_cast<size_t>(length)), options);
        if (!bulk.ok()) return bulk.status();
        std::vector<BulkItem> items = std::move(bulk->items);
        absl::StatusOr<MutationResult> result =
            store_->Apply(std::move(bulk->batch));
        if (!result.ok()) return result.status();
        const int64_t took =
            std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - started)
                .count();
        return BulkResponseJson(items, *result, took);
      }();
    }
    return ValueOrThrow(std::move(json));
  }

  uint64_t Generation() const { return store_->Current()->generation; }

  // For bench/python_bench.py: the mean seconds of one parameter-mode
  // query and its response text, done `iterations` times in C++ (the
  // baseline a Python call is compared with).
  double TimeQueryJson(const std::string& job_id,
                       const std::vector<RequestParam>& params,
                       int64_t iterations) {
    py::gil_scoped_release release;
    const auto start = std::chrono::steady_clock::now();
    size_t bytes = 0;
    for (int64_t i = 0; i < iterations; ++i) {
      absl::StatusOr<InfluencersRequest> request =
          ParseParamRequest(job_id, params);
      if (!request.ok()) return -1;
      absl::StatusOr<InfluencersPage> page = store_->GetInfluencers(*request);
      if (!page.ok()) return -1;
      bytes += InfluencersJson(*page).size();
    }
    const double seconds = std::chrono::duration<double>(
                               std::chrono::steady_clock::now() - start)
                               .count();
    return bytes > 0 ? seconds / static_cast<double>(iterations) : -1;
  }

 private:
  std::shared_ptr<InfluencerStore> store_;
};

}  // namespace
}  // namespace clout

PYBIND11_MODULE(_clout, m) {
  using clout::Store;
  m.doc() = "Clout's engine, for the clout package (use `import clout`).";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const clout::ApiFailure& failure) {
      py::object errors = py::module_::import("clout._errors");
      py::object error = errors.attr("from_failure")(
          clout::HttpStatusOf(failure.status), clout::ErrorJson(failure.status),
          failure.load);
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())),
                      error.ptr());
    }
  });
  py::class_<Store>(m, "Store")
      .def(py::init<int64_t>(), py::arg("max_result_window"))
      .def("load_path", &Store::LoadPath)
      .def("load_bytes", &Store::LoadBytes)
      .def("query_json", &Store::QueryJson)
      .def("query_dict", &Store::QueryDict)
      .def("columns", &Store::Columns)
      .def("jobs", &Store::Jobs)
      .def("stats", &Store::Stats)
      .def("delete_job", &Store::DeleteJob)
      .def("apply_bulk", &Store::ApplyBulk)
      .def("generation", &Store::Generation)
      .def("_time_query_json", &Store::TimeQueryJson);
}
