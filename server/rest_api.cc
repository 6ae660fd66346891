#include "server/rest_api.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/bulk.h"
#include "engine/error.h"
#include "engine/java_format.h"
#include "engine/json_out.h"
#include "engine/request.h"
#include "engine/response.h"
#include "server/gzip.h"
#include "server/json_filter.h"

namespace clout {
namespace {

// The response parameters every endpoint takes (Elasticsearch's
// RestRequest/AbstractRestChannel ones), always candidates for "did you
// mean".
const std::vector<std::string>& GlobalParams() {
  static const std::vector<std::string> kGlobal = {
      "pretty", "human", "error_trace", "filter_path", "format"};
  return kGlobal;
}

bool IsGlobalParam(absl::string_view name) {
  const auto& global = GlobalParams();
  return std::find(global.begin(), global.end(), name) != global.end();
}

// A media type as Elasticsearch's ParsedMediaType reads one.
struct MediaType {
  std::string essence;  // "application/json", lower case
  int compatible_with = 0;  // 0: not a versioned vendor type
  bool vendor = false;      // application/vnd.elasticsearch+...
  std::string version_text;  // compatible-with as given
};

enum class MediaError { kNone, kUnsupported, kBadVersion };

// Parses `text`. kUnsupported for anything but the JSON and NDJSON types
// (with a UTF-8 charset, and compatible-with on the vendor types only);
// kBadVersion for a vendor type whose compatible-with is not 7 or 8.
MediaError ParseMediaType(absl::string_view text, MediaType* out) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ';');
  out->essence = absl::AsciiStrToLower(absl::StripAsciiWhitespace(parts[0]));
  if (out->essence == "application/json" ||
      out->essence == "application/x-ndjson") {
    out->vendor = false;
  } else if (out->essence == "application/vnd.elasticsearch+json" ||
             out->essence == "application/vnd.elasticsearch+x-ndjson") {
    out->vendor = true;
  } else {
    return MediaError::kUnsupported;
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    absl::string_view part = absl::StripAsciiWhitespace(parts[i]);
    if (part.empty()) continue;
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    const std::string key =
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(kv.first));
    absl::string_view value = absl::StripAsciiWhitespace(kv.second);
    if (key == "charset") {
      if (!absl::EqualsIgnoreCase(value, "utf-8")) {
        return MediaError::kUnsupported;
      }
    } else if (key == "compatible-with" && out->vendor) {
      int version = 0;
      out->version_text = std::string(value);
      if (!absl::SimpleAtoi(value, &version) || (version != 7 && version != 8)) {
        return MediaError::kBadVersion;
      }
      out->compatible_with = version;
    } else {
      return MediaError::kUnsupported;
    }
  }
  if (out->vendor && out->compatible_with == 0) return MediaError::kUnsupported;
  return MediaError::kNone;
}

bool IsNdjson(const MediaType& type) {
  return absl::EndsWith(type.essence, "x-ndjson");
}

// `{"error":R,"status":S}`: the simple error body Elasticsearch's REST
// layer writes for failures before a handler runs.
std::string SimpleErrorJson(absl::string_view reason, int status) {
  std::string out = "{\"error\":";
  AppendJsonString(reason, &out);
  absl::StrAppend(&out, ",\"status\":", status, "}");
  return out;
}

std::string RandomUuid() {
  // 16 random bytes in URL-safe base64 without padding, as Elasticsearch's
  // UUIDs.randomBase64UUID writes a cluster_uuid.
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device random;
  std::string out;
  for (int i = 0; i < 22; ++i) out.push_back(kAlphabet[random() % 64]);
  return out;
}

// A route: the endpoint and what its path holds.
struct Route {
  Endpoint endpoint = Endpoint::kNone;
  std::vector<absl::string_view> methods;  // allowed, as Allow lists them
  std::string job_id;  // Get Influencers
  std::string index;   // /{index}/_bulk
  bool deprecated_path = false;  // the _xpack/ml path
};

Route Match(const std::vector<std::string>& s) {
  Route route;
  auto is = [&](std::initializer_list<absl::string_view> want) {
    if (s.size() != want.size()) return false;
    size_t i = 0;
    for (absl::string_view w : want) {
      if (!w.empty() && s[i] != w) return false;
      ++i;
    }
    return true;
  };
  if (s.empty()) {
    route.endpoint = Endpoint::kInfo;
    route.methods = {"GET", "HEAD"};
  } else if (is({"_ml", "anomaly_detectors", "", "results", "influencers"})) {
    route.endpoint = Endpoint::kGetInfluencers;
    route.methods = {"GET", "POST"};
    route.job_id = s[2];
  } else if (is({"_xpack", "ml", "anomaly_detectors", "", "results",
                 "influencers"})) {
    route.endpoint = Endpoint::kGetInfluencers;
    route.methods = {"GET", "POST"};
    route.job_id = s[3];
    route.deprecated_path = true;
  } else if (is({"_bulk"})) {
    route.endpoint = Endpoint::kBulk;
    route.methods = {"POST", "PUT"};
  } else if (is({"", "_bulk"})) {
    route.endpoint = Endpoint::kBulk;
    route.methods = {"POST", "PUT"};
    route.index = s[0];
  } else if (is({"_security", "_authenticate"})) {
    route.endpoint = Endpoint::kSecurity;
    route.methods = {"GET"};
  } else if (is({"_security", "api_key"})) {
    route.endpoint = Endpoint::kSecurity;
    route.methods = {"GET", "POST", "PUT", "DELETE"};
  } else if (is({"_clout", "metrics"})) {
    route.endpoint = Endpoint::kMetrics;
    route.methods = {"GET"};
  } else if (is({"_clout", "snapshot"})) {
    route.endpoint = Endpoint::kSnapshot;
    route.methods = {"POST", "PUT"};
  }
  return route;
}

// The query-string parameters, with the last value of a repeated name
// winning (Elasticsearch's map), and which of them a handler consumed.
class Params {
 public:
  explicit Params(std::vector<RequestParam> list) : list_(std::move(list)) {}

  const std::string* Get(absl::string_view name) {
    consumed_.emplace_back(name);
    const std::string* value = nullptr;
    for (const RequestParam& p : list_) {
      if (p.first == name) value = &p.second;
    }
    return value;
  }
  bool Has(absl::string_view name) const {
    for (const RequestParam& p : list_) {
      if (p.first == name) return true;
    }
    return false;
  }
  // The parameters no one asked for.
  std::vector<std::string> Unconsumed() const {
    std::vector<std::string> out;
    for (const RequestParam& p : list_) {
      if (std::find(consumed_.begin(), consumed_.end(), p.first) ==
          consumed_.end()) {
        out.push_back(p.first);
      }
    }
    return out;
  }
  const std::vector<RequestParam>& list() const { return list_; }

 private:
  std::vector<RequestParam> list_;
  std::vector<std::string> consumed_;
};

// 400 for parameters left unconsumed, suggesting from `consumed` and the
// global ones; OK when there are none.
absl::Status CheckUnconsumed(const Params& params, absl::string_view path,
                             std::vector<std::string> candidates) {
  std::vector<std::string> unknown = params.Unconsumed();
  if (unknown.empty()) return absl::OkStatus();
  for (const std::string& g : GlobalParams()) candidates.push_back(g);
  return EsError(400, "illegal_argument_exception",
                 UnrecognizedParametersReason(path, std::move(unknown),
                                              candidates));
}

// A request being answered.
struct Exchange {
  const RestRequest& request;
  RestResponse response;
  std::string decoded_path;
  bool pretty = false;
  bool pretty_given = false;
  bool human = false;
  FilterPath filter;
  // The Content-Type of responses: application/json, or the vendor type
  // the Accept header asked for.
  std::string content_type = "application/json";
  int accept_version = 0;

  // An error response in Elasticsearch's envelope.
  void Error(const absl::Status& status) {
    response.status = HttpStatusOf(status);
    response.body = ErrorJson(status, pretty);
    if (pretty) response.body.push_back('\n');
  }
  void Simple(int status, absl::string_view reason) {
    response.status = status;
    response.body = SimpleErrorJson(reason, status);
  }
  // A success body written compactly, filtered and laid out as asked.
  void Json(int status, std::string compact) {
    response.status = status;
    absl::StatusOr<std::string> shaped = ReshapeJson(compact, filter, pretty);
    if (!shaped.ok()) {
      Error(shaped.status());
      return;
    }
    response.body = *std::move(shaped);
  }
};

absl::Status MediaTypeError(absl::string_view headers,
                            absl::string_view detail) {
  return EsErrorWithRootCause(
      400, "media_type_header_exception",
      absl::StrCat("Invalid media-type value on headers [", headers, "]"),
      "status_exception", detail);
}

// Elasticsearch's 401: a security_exception with the WWW-Authenticate
// values under "header", and the failed API key's words, in the root cause
// and the error alike.
std::string UnauthorizedJson(const AuthFailure& failure) {
  std::string out;
  JsonOut json(&out, false);
  // The members of the root cause and of the error alike.
  auto members = [&] {
    json.Key("type");
    json.String("security_exception");
    json.Key("reason");
    json.String(failure.reason);
    if (!failure.additional.empty()) {
      json.Key("additional_unsuccessful_credentials");
      json.String(failure.additional);
    }
    json.Key("header");
    json.BeginObject();
    json.Key("WWW-Authenticate");
    json.BeginArray();
    for (const std::string& value : Security::WwwAuthenticate()) {
      json.String(value);
    }
    json.EndArray();
    json.EndObject();
  };
  json.BeginObject();
  json.Key("error");
  json.BeginObject();
  json.Key("root_cause");
  json.BeginArray();
  json.BeginObject();
  members();
  json.EndObject();
  json.EndArray();
  members();
  json.EndObject();
  json.Key("status");
  json.Long(401);
  json.EndObject();
  return out;
}

// Whether the client takes gzip: "gzip" (or "*") in Accept-Encoding with
// a quality above 0.
bool AcceptsGzip(const std::string* accept_encoding) {
  if (accept_encoding == nullptr) return false;
  for (absl::string_view item : absl::StrSplit(*accept_encoding, ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(item, ';');
    const absl::string_view coding = absl::StripAsciiWhitespace(parts[0]);
    if (!absl::EqualsIgnoreCase(coding, "gzip") &&
        !absl::EqualsIgnoreCase(coding, "x-gzip") && coding != "*") {
      continue;
    }
    double quality = 1.0;
    for (size_t i = 1; i < parts.size(); ++i) {
      absl::string_view p = absl::StripAsciiWhitespace(parts[i]);
      if (absl::ConsumePrefix(&p, "q=") &&
          !absl::SimpleAtod(absl::StripAsciiWhitespace(p), &quality)) {
        quality = 0;
      }
    }
    if (quality > 0) return true;
  }
  return false;
}

// Privileges that grant the actions Clout authorizes (Elasticsearch's
// ClusterPrivilegeResolver / IndexPrivilege, for these actions).
const std::vector<absl::string_view> kMonitorGrants = {"monitor", "manage",
                                                       "all"};
const std::vector<absl::string_view> kManageGrants = {"manage", "all"};
const std::vector<absl::string_view> kInfluencersGrants = {
    "monitor_ml", "monitor", "manage_ml", "manage", "all"};
const std::vector<absl::string_view> kCreateKeyGrants = {
    "manage_api_key", "manage_own_api_key", "manage_security", "all"};
const std::vector<absl::string_view> kGetKeyGrants = {
    "manage_api_key", "manage_own_api_key", "read_security", "manage_security",
    "all"};
const std::vector<absl::string_view> kAllKeysReadGrants = {
    "manage_api_key", "read_security", "manage_security", "all"};
const std::vector<absl::string_view> kAllKeysGrants = {
    "manage_api_key", "manage_security", "all"};
const std::vector<absl::string_view> kReadGrants = {"read", "all"};

absl::Status ClusterDenied(const Subject& subject, absl::string_view action,
                           const std::vector<absl::string_view>& granting) {
  return EsError(
      403, "security_exception",
      absl::StrCat("action [", action, "] is unauthorized for ",
                   subject.Describe(),
                   ", this action is granted by the cluster privileges [",
                   absl::StrJoin(granting, ","), "]"));
}

absl::Status IndexDenied(const Subject& subject, absl::string_view action,
                         absl::string_view index,
                         const std::vector<absl::string_view>& granting) {
  return EsError(
      403, "security_exception",
      absl::StrCat("action [", action, "] is unauthorized for ",
                   subject.Describe(), " on indices [", index,
                   "], this action is granted by the index privileges [",
                   absl::StrJoin(granting, ","), "]"));
}

}  // namespace

const std::string* RestRequest::Header(absl::string_view name) const {
  for (const HttpHeader& h : headers) {
    if (absl::EqualsIgnoreCase(h.name, name)) return &h.value;
  }
  return nullptr;
}

absl::string_view EndpointName(Endpoint endpoint) {
  switch (endpoint) {
    case Endpoint::kNone: return "none";
    case Endpoint::kInfo: return "info";
    case Endpoint::kGetInfluencers: return "get_influencers";
    case Endpoint::kBulk: return "bulk";
    case Endpoint::kSecurity: return "security";
    case Endpoint::kMetrics: return "metrics";
    case Endpoint::kSnapshot: return "snapshot";
  }
  return "none";
}

absl::StatusOr<std::string> DecodePathSegment(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) {
    return absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) {
      return EsError(400, "illegal_argument_exception",
                     absl::StrCat("partial escape sequence at end of string: ",
                                  s));
    }
    if (!absl::ascii_isxdigit(s[i + 1]) || !absl::ascii_isxdigit(s[i + 2])) {
      return EsError(400, "illegal_argument_exception",
                     absl::StrCat("invalid escape sequence `%", s.substr(i + 1, 2),
                                  "' at index ", i, " of: ", s));
    }
    out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
    i += 2;
  }
  return ValidUtf8(out);
}

RestApi::RestApi(InfluencerStore* store, RestApiOptions options)
    : store_(store), options_(std::move(options)) {
  if (options_.cluster_uuid.empty()) options_.cluster_uuid = RandomUuid();
}

bool RestApi::IsWrite(absl::string_view method, absl::string_view target) {
  if (method != "POST" && method != "PUT") return false;
  absl::string_view path = target.substr(0, target.find('?'));
  while (absl::ConsumeSuffix(&path, "/")) {
  }
  absl::StatusOr<std::string> last =
      DecodePathSegment(path.substr(path.rfind('/') + 1));
  return last.ok() && *last == "_bulk";
}

bool RestApi::MayBlock(const RestRequest& request) const {
  const absl::string_view path =
      absl::string_view(request.target).substr(0, request.target.find('?'));
  return IsWrite(request.method, request.target) ||
         (options_.snapshot && absl::StartsWith(path, "/_clout/snapshot")) ||
         (options_.security != nullptr &&
          !options_.security->IsQuick(request.Header("Authorization")));
}

RestResponse RestApi::Handle(const RestRequest& request) const {
  Exchange x{request, RestResponse()};
  RestResponse& response = x.response;
  const size_t query_at = request.target.find('?');
  absl::string_view raw_path =
      absl::string_view(request.target).substr(0, query_at);
  absl::string_view raw_query =
      query_at == std::string::npos
          ? absl::string_view()
          : absl::string_view(request.target).substr(query_at + 1);

  auto finish = [&]() -> RestResponse {
    if (response.status != 401 && response.status != 403) {
      response.headers.push_back({"X-elastic-product", "Elasticsearch"});
    }
    if (const std::string* id = request.Header("X-Opaque-Id")) {
      response.headers.push_back({"X-Opaque-Id", *id});
    }
    bool has_type = false;
    for (const HttpHeader& h : response.headers) {
      has_type |= absl::EqualsIgnoreCase(h.name, "Content-Type");
    }
    if (!has_type && !response.body.empty()) {
      response.headers.push_back({"Content-Type", x.content_type});
    }
    if (!response.body.empty() &&
        AcceptsGzip(request.Header("Accept-Encoding"))) {
      response.body = GzipCompress(response.body);
      response.headers.push_back({"Content-Encoding", "gzip"});
    }
    return std::move(response);
  };

  // The path, decoded segment by segment ('%2F' stays inside its segment).
  std::vector<std::string> segments;
  for (absl::string_view raw : absl::StrSplit(raw_path, '/', absl::SkipEmpty())) {
    absl::StatusOr<std::string> segment = DecodePathSegment(raw);
    if (!segment.ok()) {
      x.Error(segment.status());
      return finish();
    }
    segments.push_back(*std::move(segment));
  }
  x.decoded_path = absl::StrCat("/", absl::StrJoin(segments, "/"));

  Route route = Match(segments);
  response.endpoint = route.endpoint;
  if ((route.endpoint == Endpoint::kMetrics && !options_.metrics) ||
      (route.endpoint == Endpoint::kSnapshot && !options_.snapshot)) {
    route.endpoint = response.endpoint = Endpoint::kNone;
  }
  if (route.endpoint == Endpoint::kNone) {
    // Elasticsearch's bare {"error":...} here has no status member.
    response.status = 400;
    response.body = "{\"error\":";
    AppendJsonString(absl::StrCat("no handler found for uri [", request.target,
                                  "] and method [", request.method, "]"),
                     &response.body);
    response.body.push_back('}');
    return finish();
  }
  const std::string allow = absl::StrJoin(route.methods, ",");
  if (request.method == "OPTIONS") {
    response.status = 200;
    response.headers.push_back({"Allow", allow});
    return finish();
  }
  if (std::find(route.methods.begin(), route.methods.end(), request.method) ==
      route.methods.end()) {
    x.Simple(405, absl::StrCat("Incorrect HTTP method for uri [",
                               request.target, "] and method [",
                               request.method, "], allowed: [",
                               absl::StrJoin(route.methods, ", "), "]"));
    response.headers.push_back({"Allow", allow});
    return finish();
  }
  if (route.deprecated_path) {
    response.headers.push_back(
        {"Warning",
         absl::StrCat("299 Elasticsearch-", kReportedEsVersion, " \"[",
                      request.method,
                      " /_xpack/ml/anomaly_detectors/{job_id}/results/"
                      "influencers] is deprecated! Use [",
                      request.method,
                      " /_ml/anomaly_detectors/{job_id}/results/influencers] "
                      "instead.\"")});
  }

  // Authentication, once the request has a handler (Elasticsearch's
  // SecurityRestFilter wraps handlers: an unknown path is a 400 for all).
  std::optional<Subject> subject;
  Security* security = options_.security;
  if (security != nullptr) {
    AuthFailure failure;
    absl::StatusOr<Subject> who =
        request.confidential || request.Header("Authorization") == nullptr
            ? security->Authenticate(request.Header("Authorization"),
                                     request.target, &failure)
            : absl::StatusOr<Subject>(
                  EsError(401, "security_exception", "not confidential"));
    if (!request.confidential && failure.reason.empty()) {
      failure.reason =
          "credentials sent over plain HTTP from another machine are "
          "refused: serve HTTPS (--tls_cert, --tls_key) to take them";
    }
    if (!who.ok()) {
      response.status = 401;
      response.body = UnauthorizedJson(failure);
      for (const std::string& value : Security::WwwAuthenticate()) {
        response.headers.push_back({"WWW-Authenticate", value});
      }
      return finish();
    }
    subject = *std::move(who);
    response.user = subject->username;
  }
  // A 403 for `action` unless the subject holds a cluster privilege of
  // `granting`; OK without security.
  auto cluster_check = [&](absl::string_view action,
                           const std::vector<absl::string_view>& granting) {
    if (!subject.has_value() || subject->ClusterAllows(granting)) {
      return absl::OkStatus();
    }
    return ClusterDenied(*subject, action, granting);
  };

  Params params(SplitQueryString(raw_query));

  // Media types. The Accept header only chooses the vendor type and its
  // version; a list (a comma) is ignored, as Elasticsearch ignores it.
  if (const std::string* accept = request.Header("Accept");
      accept != nullptr && !absl::StrContains(*accept, ',')) {
    MediaType type;
    const MediaError error = ParseMediaType(*accept, &type);
    if (error == MediaError::kBadVersion) {
      x.Error(MediaTypeError(
          "Accept", absl::StrCat("Accept version must be either version 8 or "
                                 "7, but found ", type.version_text, ". Accept=",
                                 *accept)));
      return finish();
    }
    if (error == MediaError::kNone && type.vendor) {
      x.accept_version = type.compatible_with;
      x.content_type = absl::StrCat(
          IsNdjson(type) ? "application/vnd.elasticsearch+json"
                         : type.essence,
          ";compatible-with=", type.compatible_with);
    }
  }

  // Response parameters.
  if (const std::string* v = params.Get("pretty")) {
    x.pretty_given = true;
    if (absl::Status s = ParseBooleanParam(*v, &x.pretty); !s.ok()) {
      x.pretty = false;
      x.Error(s);
      return finish();
    }
  }
  if (const std::string* v = params.Get("human")) {
    if (absl::Status s = ParseBooleanParam(*v, &x.human); !s.ok()) {
      x.Error(s);
      return finish();
    }
  }
  if (const std::string* v = params.Get("error_trace")) {
    bool unused = false;
    if (absl::Status s = ParseBooleanParam(*v, &unused); !s.ok()) {
      x.Error(s);
      return finish();
    }
  }
  if (const std::string* v = params.Get("filter_path")) {
    x.filter = FilterPath::Parse(*v);
  }
  if (const std::string* v = params.Get("format")) {
    if (*v == "yaml" || *v == "cbor" || *v == "smile") {
      x.Simple(406, absl::StrCat("Clout answers in JSON only; format [", *v,
                                 "] is not supported"));
      return finish();
    }
  }

  // The body: as sent (gunzipped), else the `source` parameter.
  std::string body_storage;
  absl::string_view body = request.body;
  const std::string* content_type = request.Header("Content-Type");
  if (const std::string* encoding = request.Header("Content-Encoding");
      encoding != nullptr && !body.empty()) {
    const std::string e = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*encoding));
    if (e == "gzip" || e == "x-gzip") {
      absl::StatusOr<std::string> plain =
          GzipDecompress(body, options_.max_content_length);
      if (!plain.ok()) {
        x.Error(plain.status());
        response.close = HttpStatusOf(plain.status()) == 413;
        return finish();
      }
      body_storage = *std::move(plain);
      body = body_storage;
    } else if (e != "identity") {
      x.Error(EsError(400, "illegal_argument_exception",
                      absl::StrCat("Content-Encoding [", *encoding,
                                   "] is not supported; send gzip or "
                                   "identity")));
      return finish();
    }
  }
  if (body.size() > options_.max_content_length) {
    x.Error(EsError(413, "content_too_long_exception",
                    absl::StrCat("request body is larger than "
                                 "http.max_content_length [",
                                 options_.max_content_length, "] bytes")));
    response.close = true;
    return finish();
  }
  std::string source_type;
  if (body.empty() && params.Has("source")) {
    const std::string* source = params.Get("source");
    const std::string* type = params.Get("source_content_type");
    if (type == nullptr) {
      x.Error(EsError(400, "illegal_state_exception",
                      "source and source_content_type parameters are "
                      "required"));
      return finish();
    }
    body_storage = *source;
    body = body_storage;
    source_type = *type;
    content_type = &source_type;
  }
  if (!body.empty()) {
    if (content_type == nullptr) {
      x.Simple(406, "Content-Type header is missing");
      return finish();
    }
    MediaType type;
    const MediaError error = ParseMediaType(*content_type, &type);
    const bool fits = error == MediaError::kNone &&
                      (route.endpoint == Endpoint::kBulk || !IsNdjson(type));
    if (error == MediaError::kBadVersion) {
      x.Error(MediaTypeError(
          "Content-Type",
          absl::StrCat("Content-Type version must be either version 8 or 7, "
                       "but found ", type.version_text, ". Content-Type=",
                       *content_type)));
      return finish();
    }
    if (!fits) {
      x.Simple(406, absl::StrCat("Content-Type header [", *content_type,
                                 "] is not supported"));
      return finish();
    }
    if (type.compatible_with != x.accept_version) {
      const std::string* accept = request.Header("Accept");
      x.Error(MediaTypeError(
          "Accept, Content-Type",
          absl::StrCat("A compatible version is required on both Content-Type "
                       "and Accept headers if either one has requested a "
                       "compatible version and the compatible versions must "
                       "match. Accept=",
                       accept != nullptr ? *accept : "null",
                       ", Content-Type=", *content_type)));
      return finish();
    }
  }

  switch (route.endpoint) {
    case Endpoint::kInfo: {
      if (absl::Status s = CheckUnconsumed(params, x.decoded_path, {});
          !s.ok()) {
        x.Error(s);
        return finish();
      }
      if (absl::Status s = cluster_check("cluster:monitor/main", kMonitorGrants);
          !s.ok()) {
        x.Error(s);
        return finish();
      }
      std::string out;
      JsonOut json(&out, false);
      json.BeginObject();
      json.Key("name");
      json.String(options_.node_name);
      json.Key("cluster_name");
      json.String(options_.cluster_name);
      json.Key("cluster_uuid");
      json.String(options_.cluster_uuid);
      json.Key("version");
      json.BeginObject();
      json.Key("number");
      json.String(kReportedEsVersion);
      json.Key("build_flavor");
      json.String("default");
      json.Key("build_type");
      json.String("clout");
      json.Key("build_hash");
      json.String("clout");
      json.Key("build_date");
      json.String("2026-12-04T00:00:00.000Z");
      json.Key("build_snapshot");
      json.Bool(false);
      json.Key("lucene_version");
      json.String("9.11.1");
      json.Key("minimum_wire_compatibility_version");
      json.String("7.17.0");
      json.Key("minimum_index_compatibility_version");
      json.String("7.0.0");
      json.EndObject();
      json.Key("tagline");
      json.String("You Know, for Search");
      json.EndObject();
      // Pretty unless `pretty` is given (RestMainAction).
      if (!x.pretty_given) x.pretty = true;
      x.Json(200, std::move(out));
      return finish();
    }
    case Endpoint::kGetInfluencers: {
      absl::StatusOr<InfluencersRequest> parsed;
      if (!body.empty()) {
        // Body mode: start and end are read from the query string and
        // ignored (the body's count); nothing else is consumed.
        params.Get("start");
        params.Get("end");
        parsed = ParseBodyRequest(route.job_id, body,
                                  options_.max_content_length);
        if (parsed.ok()) {
          absl::Status s = CheckUnconsumed(params, x.decoded_path,
                                           {"job_id", "start", "end"});
          if (!s.ok()) parsed = s;
        }
      } else {
        std::vector<RequestParam> own;
        for (const RequestParam& p : params.list()) {
          if (!IsGlobalParam(p.first) || p.first == "pretty" ||
              p.first == "human") {
            own.push_back(p);
          }
        }
        OutputOptions output;
        parsed = ParseParamRequest(route.job_id, own, &output, x.decoded_path);
      }
      if (!parsed.ok()) {
        x.Error(parsed.status());
        return finish();
      }
      // As Elasticsearch: the action's cluster privilege, then the job
      // (404), the dates and sort (400), then `read` on the job's results
      // index, which the search checks.
      if (absl::Status s = cluster_check(
              "cluster:monitor/xpack/ml/job/results/influencers/get",
              kInfluencersGrants);
          !s.ok()) {
        x.Error(s);
        return finish();
      }
      absl::StatusOr<InfluencersPage> page = store_->GetInfluencers(*parsed);
      if (!page.ok()) {
        x.Error(page.status());
        return finish();
      }
      const std::string results_index =
          absl::StrCat(".ml-anomalies-", route.job_id);
      if (subject.has_value() &&
          !subject->IndexAllows(results_index, kReadGrants)) {
        x.Error(IndexDenied(*subject, "indices:data/read/search",
                            results_index, kReadGrants));
        return finish();
      }
      OutputOptions output;
      output.human = x.human;
      if (x.filter.empty()) {
        // The writer lays out pretty itself: no second pass.
        output.pretty = x.pretty;
        response.status = 200;
        AppendInfluencersJson(*page, output, &response.body);
        if (x.pretty) response.body.push_back('\n');
      } else {
        x.Json(200, InfluencersJson(*page, output));
      }
      return finish();
    }
    case Endpoint::kBulk: {
      const auto started = std::chrono::steady_clock::now();
      for (absl::string_view name :
           {"timeout", "wait_for_active_shards", "routing", "require_alias",
            "require_data_stream", "list_executed_pipelines"}) {
        params.Get(name);
      }
      if (const std::string* refresh = params.Get("refresh")) {
        if (!refresh->empty() && *refresh != "true" && *refresh != "false" &&
            *refresh != "wait_for") {
          x.Error(EsError(400, "illegal_argument_exception",
                          absl::StrCat("Unknown value for refresh: [", *refresh,
                                       "].")));
          return finish();
        }
      }
      if (const std::string* pipeline = params.Get("pipeline");
          pipeline != nullptr && !pipeline->empty() && *pipeline != "_none") {
        x.Error(EsError(400, "illegal_argument_exception",
                        absl::StrCat("pipeline [", *pipeline,
                                     "]: Clout runs no ingest pipelines")));
        return finish();
      }
      BulkOptions bulk_options;
      bulk_options.default_index = route.index;
      if (subject.has_value()) {
        bulk_options.authorize = [&](absl::string_view action,
                                     absl::string_view index) {
          static const std::vector<absl::string_view> kIndex = {
              "index", "write", "all"};
          static const std::vector<absl::string_view> kCreate = {
              "create_doc", "create", "index", "write", "all"};
          static const std::vector<absl::string_view> kDelete = {
              "delete", "write", "all"};
          static const std::vector<absl::string_view> kBulkShard = {
              "create_doc", "create", "delete", "index", "write", "all"};
          const auto& granting = action == "create"   ? kCreate
                                 : action == "delete" ? kDelete
                                                      : kIndex;
          if (subject->IndexAllows(index, granting)) return absl::OkStatus();
          return IndexDenied(*subject, "indices:data/write/bulk[s]", index,
                             kBulkShard);
        };
      }
      absl::StatusOr<BulkRequest> bulk = ParseBulkRequest(body, bulk_options);
      if (!bulk.ok()) {
        x.Error(bulk.status());
        return finish();
      }
      if (absl::Status s = CheckUnconsumed(
              params, x.decoded_path,
              {"refresh", "timeout", "wait_for_active_shards", "routing",
               "require_alias", "require_data_stream", "pipeline",
               "list_executed_pipelines"});
          !s.ok()) {
        x.Error(s);
        return finish();
      }
      response.bulk_items = bulk->items.size();
      std::vector<BulkItem> items = std::move(bulk->items);
      absl::StatusOr<MutationResult> result =
          store_->Apply(std::move(bulk->batch));
      if (!result.ok()) {
        x.Error(result.status());
        return finish();
      }
      const int64_t took = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - started)
                               .count();
      x.Json(200, BulkResponseJson(items, *result, took));
      return finish();
    }
    case Endpoint::kSecurity: {
      if (security == nullptr) {
        x.Error(EsError(
            500, "exception",
            "Security must be explicitly enabled when using a [basic] "
            "license. Enable security by setting [xpack.security.enabled] to "
            "[true] in the elasticsearch.yml file and restart the node."));
        return finish();
      }
      absl::StatusOr<std::string> out;
      if (segments[1] == "_authenticate") {
        if (absl::Status s = CheckUnconsumed(params, x.decoded_path, {});
            !s.ok()) {
          x.Error(s);
          return finish();
        }
        out = security->AuthenticateJson(*subject);
      } else if (request.method == "GET") {
        for (absl::string_view name :
             {"id", "name", "username", "owner", "realm_name",
              "with_limited_by", "active_only", "with_profile_uid"}) {
          params.Get(name);
        }
        if (absl::Status s = CheckUnconsumed(
                params, x.decoded_path,
                {"id", "name", "username", "owner", "realm_name",
                 "with_limited_by", "active_only", "with_profile_uid"});
            !s.ok()) {
          x.Error(s);
          return finish();
        }
        if (absl::Status s = cluster_check(
                "cluster:admin/xpack/security/api_key/get", kGetKeyGrants);
            !s.ok()) {
          x.Error(s);
          return finish();
        }
        out = security->GetApiKeys(*subject,
                                   subject->ClusterAllows(kAllKeysReadGrants),
                                   params.list());
      } else {
        const bool create = request.method != "DELETE";
        params.Get("refresh");
        if (absl::Status s =
                CheckUnconsumed(params, x.decoded_path, {"refresh"});
            !s.ok()) {
          x.Error(s);
          return finish();
        }
        if (absl::Status s = cluster_check(
                create ? "cluster:admin/xpack/security/api_key/create"
                       : "cluster:admin/xpack/security/api_key/invalidate",
                kCreateKeyGrants);
            !s.ok()) {
          x.Error(s);
          return finish();
        }
        out = create ? security->CreateApiKey(*subject, body)
                     : security->InvalidateApiKeys(
                           *subject, subject->ClusterAllows(kAllKeysGrants),
                           body);
      }
      if (!out.ok()) {
        x.Error(out.status());
        return finish();
      }
      x.Json(200, *std::move(out));
      return finish();
    }
    case Endpoint::kMetrics: {
      if (absl::Status s = CheckUnconsumed(params, x.decoded_path, {});
          !s.ok()) {
        x.Error(s);
        return finish();
      }
      if (absl::Status s =
              cluster_check("cluster:monitor/clout/metrics", kMonitorGrants);
          !s.ok()) {
        x.Error(s);
        return finish();
      }
      response.status = 200;
      response.body = options_.metrics();
      response.headers.push_back(
          {"Content-Type", "text/plain; version=0.0.4; charset=utf-8"});
      return finish();
    }
    case Endpoint::kSnapshot: {
      if (absl::Status s = CheckUnconsumed(params, x.decoded_path, {});
          !s.ok()) {
        x.Error(s);
        return finish();
      }
      if (absl::Status s =
              cluster_check("cluster:admin/clout/snapshot", kManageGrants);
          !s.ok()) {
        x.Error(s);
        return finish();
      }
      absl::StatusOr<std::string> body = options_.snapshot();
      if (!body.ok()) {
        x.Error(body.status());
        return finish();
      }
      x.Json(200, *std::move(body));
      return finish();
    }
    case Endpoint::kNone:
      break;
  }
  return finish();
}

}  // namespace clout
