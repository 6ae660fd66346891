#include "server/security.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/error.h"
#include "engine/json_out.h"
#include "server/json_filter.h"
#include "simdjson.h"
#include "yaml-cpp/yaml.h"

namespace clout {
namespace {

absl::Status ConfigError(absl::string_view what) {
  return EsError(500, "exception", what);
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                 static_cast<int>(n)) != 1) {
    // OpenSSL's generator failing is not something to serve through.
    std::fprintf(stderr, "clout: RAND_bytes failed\n");
    std::abort();
  }
  return out;
}

// `n` random characters of URL-safe base64 (Elasticsearch's key ids and
// secrets look so).
std::string RandomToken(size_t n) {
  std::string out = absl::WebSafeBase64Escape(RandomBytes(n));
  out.resize(n);
  return out;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The built-in roles of spec get-influencers.md section 7 (as
// Elasticsearch's ReservedRolesStore defines them, for what Clout serves).
const std::map<std::string, Role>& BuiltInRoles() {
  static const auto* roles = new std::map<std::string, Role>{
      {"superuser", Role{{"all"}, {IndexPermission{{"*"}, {"all"}}}}},
      {"machine_learning_admin",
       Role{{"manage_ml"},
            {IndexPermission{{".ml-anomalies*", ".ml-notifications*",
                              ".ml-state*", ".ml-meta*", ".ml-stats-*"},
                             {"view_index_metadata", "read"}},
             IndexPermission{{".ml-annotations*"},
                             {"view_index_metadata", "read", "write"}}}}},
      {"machine_learning_user",
       Role{{"monitor_ml"},
            {IndexPermission{{".ml-anomalies*", ".ml-notifications*"},
                             {"view_index_metadata", "read"}},
             IndexPermission{{".ml-annotations*"},
                             {"view_index_metadata", "read", "write"}}}}},
  };
  return *roles;
}

// A string or a list of strings, as role fields may be written.
absl::Status YamlStrings(const YAML::Node& node, absl::string_view what,
                         std::vector<std::string>* out) {
  if (node.IsScalar()) {
    out->push_back(node.as<std::string>());
    return absl::OkStatus();
  }
  if (!node.IsSequence()) {
    return ConfigError(absl::StrCat("roles.yml: [", what,
                                    "] must be a string or a list"));
  }
  for (const YAML::Node& item : node) {
    if (!item.IsScalar()) {
      return ConfigError(absl::StrCat("roles.yml: [", what,
                                      "] must hold strings"));
    }
    out->push_back(item.as<std::string>());
  }
  return absl::OkStatus();
}

absl::Status ParseYamlRole(const std::string& name, const YAML::Node& node,
                           Role* role) {
  if (!node.IsMap()) {
    return ConfigError(absl::StrCat("roles.yml: role [", name,
                                    "] must be a mapping"));
  }
  for (const auto& field : node) {
    const std::string key = field.first.as<std::string>();
    if (key == "cluster") {
      if (absl::Status s = YamlStrings(field.second, name + ".cluster",
                                       &role->cluster);
          !s.ok()) {
        return s;
      }
    } else if (key == "indices") {
      if (!field.second.IsSequence()) {
        return ConfigError(absl::StrCat("roles.yml: [", name,
                                        ".indices] must be a list"));
      }
      for (const YAML::Node& entry : field.second) {
        IndexPermission permission;
        if (!entry.IsMap() || !entry["names"] || !entry["privileges"]) {
          return ConfigError(absl::StrCat(
              "roles.yml: every entry of [", name,
              ".indices] needs [names] and [privileges]"));
        }
        if (absl::Status s = YamlStrings(entry["names"], name + ".names",
                                         &permission.names);
            !s.ok()) {
          return s;
        }
        if (absl::Status s = YamlStrings(entry["privileges"],
                                         name + ".privileges",
                                         &permission.privileges);
            !s.ok()) {
          return s;
        }
        role->indices.push_back(std::move(permission));
      }
    }
    // run_as, applications, metadata, ...: nothing Clout serves uses them.
  }
  return absl::OkStatus();
}

// A role object of a JSON body (role_descriptors).
absl::Status ParseJsonRole(simdjson::dom::element element, Role* role) {
  simdjson::dom::object object;
  if (element.get_object().get(object)) {
    return EsError(400, "x_content_parse_exception",
                   "a role descriptor must be an object");
  }
  auto strings = [](simdjson::dom::element e, std::vector<std::string>* out) {
    simdjson::dom::array array;
    std::string_view s;
    if (!e.get_string().get(s)) {
      out->emplace_back(s);
      return true;
    }
    if (e.get_array().get(array)) return false;
    for (auto item : array) {
      if (item.get_string().get(s)) return false;
      out->emplace_back(s);
    }
    return true;
  };
  for (auto field : object) {
    if (field.key == "cluster") {
      if (!strings(field.value, &role->cluster)) {
        return EsError(400, "x_content_parse_exception",
                       "[cluster] must be an array of strings");
      }
    } else if (field.key == "indices") {
      simdjson::dom::array array;
      if (field.value.get_array().get(array)) {
        return EsError(400, "x_content_parse_exception",
                       "[indices] must be an array");
      }
      for (auto entry : array) {
        IndexPermission permission;
        simdjson::dom::element names, privileges;
        if (entry["names"].get(names) || entry["privileges"].get(privileges) ||
            !strings(names, &permission.names) ||
            !strings(privileges, &permission.privileges)) {
          return EsError(400, "x_content_parse_exception",
                         "every [indices] entry needs [names] and "
                         "[privileges] as arrays of strings");
        }
        role->indices.push_back(std::move(permission));
      }
    }
  }
  return absl::OkStatus();
}

// Elasticsearch's TimeValue: an integer and a unit (nanos, micros, ms, s,
// m, h, d). Returns milliseconds.
absl::StatusOr<int64_t> ParseTimeValue(absl::string_view text) {
  // Nanoseconds per unit; integer arithmetic, bounded so that no product
  // or later sum with "now" overflows (at most about 100 years; longer
  // is a 400).
  static const std::vector<std::pair<absl::string_view, int64_t>> kUnits = {
      {"nanos", 1},           {"micros", 1000},
      {"ms", 1000000},        {"s", 1000000000},
      {"m", 60000000000},     {"h", 3600000000000},
      {"d", 86400000000000}};
  constexpr int64_t kMaxMillis = int64_t{100} * 366 * 86400000;
  for (const auto& [unit, nanos] : kUnits) {
    absl::string_view number = text;
    if (!absl::ConsumeSuffix(&number, unit)) continue;
    int64_t n = 0;
    if (absl::SimpleAtoi(number, &n) && n >= 0 &&
        n <= kMaxMillis * 1000000 / nanos) {
      return static_cast<int64_t>(static_cast<__int128>(n) * nanos / 1000000);
    }
    break;
  }
  return EsError(400, "illegal_argument_exception",
                 absl::StrCat("failed to parse setting [expiration] with value [",
                              text, "] as a time value: unit is missing or "
                              "unrecognized"));
}

}  // namespace

bool IndexPatternMatches(absl::string_view pattern, absl::string_view text) {
  return GlobMatch(pattern, text, /*question_mark=*/true);
}

bool Permissions::ClusterAllows(
    const std::vector<absl::string_view>& granting) const {
  for (const Role& role : roles_) {
    for (const std::string& privilege : role.cluster) {
      if (std::find(granting.begin(), granting.end(), privilege) !=
          granting.end()) {
        return true;
      }
    }
  }
  return false;
}

bool Permissions::IndexAllows(
    absl::string_view index,
    const std::vector<absl::string_view>& granting) const {
  for (const Role& role : roles_) {
    for (const IndexPermission& permission : role.indices) {
      bool holds = false;
      for (const std::string& privilege : permission.privileges) {
        holds |= std::find(granting.begin(), granting.end(), privilege) !=
                 granting.end();
      }
      if (!holds) continue;
      for (const std::string& pattern : permission.names) {
        if (IndexPatternMatches(pattern, index)) return true;
      }
    }
  }
  return false;
}

bool Subject::ClusterAllows(
    const std::vector<absl::string_view>& granting) const {
  return permissions.ClusterAllows(granting) &&
         (!key_permissions.has_value() ||
          key_permissions->ClusterAllows(granting));
}

bool Subject::IndexAllows(absl::string_view index,
                          const std::vector<absl::string_view>& granting) const {
  return permissions.IndexAllows(index, granting) &&
         (!key_permissions.has_value() ||
          key_permissions->IndexAllows(index, granting));
}

std::string Subject::Describe() const {
  if (is_api_key) {
    return absl::StrCat("API key id [", api_key_id, "] of user [", username,
                        "]");
  }
  return absl::StrCat("user [", username, "] with effective roles [",
                      absl::StrJoin(roles, ","), "]");
}

const std::vector<std::string>& Security::WwwAuthenticate() {
  static const auto* values = new std::vector<std::string>{
      "Basic realm=\"security\", charset=\"UTF-8\"", "ApiKey"};
  return *values;
}

Security::Security(std::string dir, SecurityOptions options)
    : dir_(std::move(dir)), options_(std::move(options)) {
  salt_ = RandomBytes(16);
}

namespace {

// A real bcrypt hash of a random password at `cost`: checking an unknown
// user against it costs what a known user of that cost costs. Empty if
// libcrypt has no bcrypt.
std::string DummyHash(int cost) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  const std::string random = RandomBytes(16);
  if (crypt_gensalt_rn("$2b$", cost, random.data(),
                       static_cast<int>(random.size()), setting,
                       sizeof(setting)) == nullptr) {
    return "";
  }
  crypt_data data{};
  const char* hash = crypt_r(RandomToken(16).c_str(), setting, &data);
  return hash != nullptr && hash[0] == '$' ? std::string(hash) : "";
}

}  // namespace

int64_t Security::Now() const {
  if (options_.now_millis) return options_.now_millis();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Security::Digest(absl::string_view secret) const {
  return DigestWith(salt_, secret);
}

std::string Security::DigestWith(absl::string_view salt,
                                 absl::string_view secret) {
  std::string input(salt);
  input.append(secret.data(), secret.size());
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(),
         digest);
  OPENSSL_cleanse(input.data(), input.size());
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

absl::StatusOr<Security::Realm> Security::ReadRealm(const std::string& dir) {
  Realm realm;
  auto read_lines = [&](const std::string& name, bool required,
                        std::vector<std::string>* lines) -> absl::Status {
    std::ifstream in(dir + "/" + name);
    if (!in) {
      if (!required) return absl::OkStatus();
      return ConfigError(absl::StrCat("cannot read [", dir, "/", name,
                                      "]: the file realm needs it"));
    }
    std::string line;
    while (std::getline(in, line)) lines->push_back(line);
    return absl::OkStatus();
  };
  std::vector<std::string> lines;
  if (absl::Status s = read_lines("users", true, &lines); !s.ok()) return s;
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view line = absl::StripAsciiWhitespace(lines[i]);
    if (line.empty() || line[0] == '#') continue;
    const size_t colon = line.find(':');
    absl::string_view hash =
        colon == absl::string_view::npos ? "" : line.substr(colon + 1);
    if (colon == 0 || colon == absl::string_view::npos ||
        !(absl::StartsWith(hash, "$2a$") || absl::StartsWith(hash, "$2b$") ||
          absl::StartsWith(hash, "$2y$"))) {
      // Never quote the line: it holds a hash.
      return ConfigError(absl::StrCat(
          dir, "/users:", i + 1,
          ": expected name:hash with a bcrypt hash ($2a$, $2b$ or $2y$)"));
    }
    realm.users[std::string(line.substr(0, colon))] = User{std::string(hash)};
  }
  lines.clear();
  if (absl::Status s = read_lines("users_roles", false, &lines); !s.ok()) {
    return s;
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view line = absl::StripAsciiWhitespace(lines[i]);
    if (line.empty() || line[0] == '#') continue;
    const size_t colon = line.find(':');
    if (colon == 0 || colon == absl::string_view::npos) {
      return ConfigError(absl::StrCat(dir, "/users_roles:", i + 1,
                                      ": expected role:user1,user2"));
    }
    const std::string role(absl::StripAsciiWhitespace(line.substr(0, colon)));
    for (absl::string_view user :
         absl::StrSplit(line.substr(colon + 1), ',', absl::SkipWhitespace())) {
      realm.user_roles[std::string(absl::StripAsciiWhitespace(user))]
          .push_back(role);
    }
  }
  // Unknown users are checked against a hash of the realm's highest cost
  // (10, elasticsearch-users' default, for an empty realm), so that they
  // take at least as long as any known user.
  int cost = 0;
  for (const auto& [name, user] : realm.users) {
    int c = 0;
    if (user.hash.size() > 7 && absl::SimpleAtoi(user.hash.substr(4, 2), &c)) {
      cost = std::max(cost, c);
    }
  }
  realm.dummy_hash = DummyHash(std::clamp(cost == 0 ? 10 : cost, 4, 31));
  if (realm.dummy_hash.empty()) {
    return ConfigError("libcrypt has no bcrypt ($2b$)");
  }
  realm.roles = BuiltInRoles();
  std::ifstream roles_file(dir + "/roles.yml");
  if (roles_file) {
    try {
      YAML::Node root = YAML::Load(roles_file);
      if (root.IsMap()) {
        for (const auto& entry : root) {
          const std::string name = entry.first.as<std::string>();
          Role role;
          if (absl::Status s = ParseYamlRole(name, entry.second, &role);
              !s.ok()) {
            return s;
          }
          realm.roles[name] = std::move(role);
        }
      } else if (!root.IsNull()) {
        return ConfigError(absl::StrCat(dir, "/roles.yml: expected a mapping "
                                             "of role names to roles"));
      }
    } catch (const YAML::Exception& e) {
      return ConfigError(absl::StrCat(dir, "/roles.yml:", e.mark.line + 1,
                                      ": ", e.msg));
    }
  }
  for (auto& [user, roles] : realm.user_roles) {
    std::sort(roles.begin(), roles.end());
    roles.erase(std::unique(roles.begin(), roles.end()), roles.end());
  }
  return realm;
}

std::vector<Security::FileStamp> Security::Stamps() const {
  std::vector<FileStamp> stamps;
  for (const char* name : {"users", "users_roles", "roles.yml"}) {
    struct stat st;
    FileStamp stamp;
    if (stat((dir_ + "/" + name).c_str(), &st) == 0) {
      stamp.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
      stamp.size = st.st_size;
      stamp.inode = st.st_ino;
    }
    stamps.push_back(stamp);
  }
  return stamps;
}

absl::StatusOr<std::unique_ptr<Security>> Security::Open(
    const std::string& config_dir, SecurityOptions options) {
  std::unique_ptr<Security> security(
      new Security(config_dir, std::move(options)));
  security->stamps_ = security->Stamps();
  absl::StatusOr<Realm> realm = ReadRealm(config_dir);
  if (!realm.ok()) return realm.status();
  security->realm_ = std::make_shared<const Realm>(*std::move(realm));
  if (absl::Status s =
          security->LoadKeys(security->options_.api_keys_state);
      !s.ok()) {
    return s;
  }
  security->next_check_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  return security;
}

void Security::MaybeReload() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (now < next_check_) return;
    next_check_ = now + std::chrono::seconds(1);
  }
  std::vector<FileStamp> stamps = Stamps();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stamps == stamps_) return;
    stamps_ = stamps;
  }
  absl::StatusOr<Realm> realm = ReadRealm(dir_);
  if (!realm.ok()) {
    std::fprintf(stderr,
                 "clout serve: the file realm changed but does not load; "
                 "keeping the previous one: %s\n",
                 std::string(realm.status().message()).c_str());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  realm_ = std::make_shared<const Realm>(*std::move(realm));
  cache_.clear();  // a changed password or a removed user must not linger
}

std::shared_ptr<const Security::Realm> Security::realm() const {
  std::lock_guard<std::mutex> lock(mu_);
  return realm_;
}

Subject Security::SubjectFor(const Realm& realm,
                             const std::string& username) const {
  Subject subject;
  subject.username = username;
  std::vector<Role> roles;
  if (auto it = realm.user_roles.find(username); it != realm.user_roles.end()) {
    subject.roles = it->second;
    for (const std::string& name : it->second) {
      if (auto role = realm.roles.find(name); role != realm.roles.end()) {
        roles.push_back(role->second);
      }
    }
  }
  subject.permissions = Permissions(std::move(roles));
  return subject;
}

bool Security::IsQuick(const std::string* authorization) const {
  if (authorization == nullptr) return true;
  absl::string_view value = absl::StripAsciiWhitespace(*authorization);
  if (!absl::StartsWithIgnoreCase(value, "basic ")) return true;
  std::string decoded;
  if (!absl::Base64Unescape(absl::StripAsciiWhitespace(value.substr(6)),
                            &decoded)) {
    return true;
  }
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) {
    OPENSSL_cleanse(decoded.data(), decoded.size());
    return true;
  }
  const std::string user = decoded.substr(0, colon);
  const std::string digest =
      Digest(absl::string_view(decoded).substr(colon + 1));
  OPENSSL_cleanse(decoded.data(), decoded.size());
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(user);
  // Quick only when the password is the cached one: a wrong password for
  // a cached user pays a bcrypt.
  return it != cache_.end() &&
         it->second.expires > std::chrono::steady_clock::now() &&
         ConstantTimeEquals(it->second.digest, digest);
}

absl::StatusOr<Subject> Security::Authenticate(const std::string* authorization,
                                               absl::string_view request_uri,
                                               AuthFailure* failure) {
  const absl::Status unauthenticated =
      EsError(401, "security_exception", "unauthenticated");
  auto fail = [&](std::string reason, std::string additional = "") {
    failure->reason = std::move(reason);
    failure->additional = std::move(additional);
    return unauthenticated;
  };
  absl::string_view value =
      authorization == nullptr ? "" : absl::StripAsciiWhitespace(*authorization);
  const bool basic = absl::StartsWithIgnoreCase(value, "basic ");
  const bool api_key = absl::StartsWithIgnoreCase(value, "apikey ");
  if (!basic && !api_key) {
    return fail(absl::StrCat("missing authentication credentials for REST "
                             "request [",
                             request_uri, "]"));
  }
  MaybeReload();
  std::string decoded;
  absl::string_view encoded =
      absl::StripAsciiWhitespace(value.substr(basic ? 6 : 7));
  if (!absl::Base64Unescape(encoded, &decoded)) {
    return basic ? fail("invalid basic authentication header encoding")
                 : fail("unable to authenticate with provided credentials and "
                        "anonymous access is not allowed for this request",
                        "API key: invalid ApiKey value");
  }
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) {
    OPENSSL_cleanse(decoded.data(), decoded.size());
    return basic ? fail("invalid basic authentication header value")
                 : fail("unable to authenticate with provided credentials and "
                        "anonymous access is not allowed for this request",
                        "API key: invalid ApiKey value");
  }
  const std::string name = decoded.substr(0, colon);
  std::string secret = decoded.substr(colon + 1);
  OPENSSL_cleanse(decoded.data(), decoded.size());
  std::shared_ptr<const Realm> snapshot = realm();

  if (api_key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = keys_.find(name);
    // Each key has a salt of its own (its digest outlives the process).
    const std::string digest =
        DigestWith(it == keys_.end() ? salt_ : it->second.salt, secret);
    OPENSSL_cleanse(secret.data(), secret.size());
    const std::string expected =
        it == keys_.end() ? std::string(digest.size(), '\0') : it->second.digest;
    const bool match = ConstantTimeEquals(digest, expected);
    const std::string kReason =
        "unable to authenticate with provided credentials and anonymous "
        "access is not allowed for this request";
    if (it == keys_.end()) {
      return fail(kReason, absl::StrCat("API key: unable to find apikey with id [",
                                        name, "]"));
    }
    if (!match) {
      return fail(kReason, absl::StrCat("API key: invalid credentials for API key [",
                                        name, "]"));
    }
    const ApiKey& key = it->second;
    if (key.invalidated) {
      return fail(kReason, absl::StrCat("API key: api key [", name,
                                        "] has been invalidated"));
    }
    if (key.expiration.has_value() && *key.expiration <= Now()) {
      return fail(kReason, "API key: api key is expired");
    }
    // A key may do no more than its owner may now: a user removed from the
    // realm takes their keys along, and lost roles narrow them.
    if (snapshot->users.find(key.owner) == snapshot->users.end()) {
      return fail(kReason, absl::StrCat("API key: the owner of api key [",
                                        name, "] is no longer a user"));
    }
    Subject subject = SubjectFor(*snapshot, key.owner);
    subject.roles.clear();
    subject.is_api_key = true;
    subject.api_key_id = key.id;
    subject.api_key_name = key.name;
    if (key.descriptors.has_value()) {
      subject.key_permissions = Permissions(*key.descriptors);
    }
    return subject;
  }

  auto user = snapshot->users.find(name);
  const std::string digest = Digest(secret);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto cached = cache_.find(name);
    if (cached != cache_.end() && user != snapshot->users.end() &&
        cached->second.expires > std::chrono::steady_clock::now() &&
        ConstantTimeEquals(cached->second.hash, user->second.hash) &&
        ConstantTimeEquals(cached->second.digest, digest)) {
      OPENSSL_cleanse(secret.data(), secret.size());
      return SubjectFor(*snapshot, name);
    }
  }
  const std::string& hash =
      user == snapshot->users.end() ? snapshot->dummy_hash : user->second.hash;
  crypt_data data{};
  const char* computed = crypt_r(secret.c_str(), hash.c_str(), &data);
  OPENSSL_cleanse(secret.data(), secret.size());
  const bool match = computed != nullptr && computed[0] == '$' &&
                     ConstantTimeEquals(computed, hash) &&
                     user != snapshot->users.end();
  OPENSSL_cleanse(&data, sizeof(data));
  if (!match) {
    return fail(absl::StrCat("unable to authenticate user [", name,
                             "] for REST request [", request_uri, "]"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Only for the realm still current: a reload while bcrypt ran (a
    // changed password) must not see the old one cached again.
    if (realm_ == snapshot) {
      if (cache_.size() >= options_.cache_max_users) cache_.clear();
      cache_[name] = CacheEntry{digest, user->second.hash,
                                std::chrono::steady_clock::now() +
                                    options_.cache_ttl};
    }
  }
  return SubjectFor(*snapshot, name);
}

std::string Security::AuthenticateJson(const Subject& subject) const {
  std::string out;
  JsonOut json(&out, false);
  json.BeginObject();
  json.Key("username");
  json.String(subject.username);
  json.Key("roles");
  json.BeginArray();
  if (!subject.is_api_key) {
    for (const std::string& role : subject.roles) json.String(role);
  }
  json.EndArray();
  json.Key("full_name");
  json.Raw("null");
  json.Key("email");
  json.Raw("null");
  json.Key("metadata");
  json.BeginObject();
  json.EndObject();
  json.Key("enabled");
  json.Bool(true);
  for (const char* realm : {"authentication_realm", "lookup_realm"}) {
    json.Key(realm);
    json.BeginObject();
    json.Key("name");
    json.String(subject.is_api_key ? "_es_api_key" : "default_file");
    json.Key("type");
    json.String(subject.is_api_key ? "_es_api_key" : "file");
    json.EndObject();
  }
  if (subject.is_api_key) {
    json.Key("api_key");
    json.BeginObject();
    json.Key("id");
    json.String(subject.api_key_id);
    json.Key("name");
    json.String(subject.api_key_name);
    json.EndObject();
  }
  json.Key("authentication_type");
  json.String(subject.is_api_key ? "api_key" : "realm");
  json.EndObject();
  return out;
}

absl::StatusOr<std::string> Security::CreateApiKey(const Subject& owner,
                                                   absl::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::padded_string padded(body.data(), body.size());
  if (body.empty() || parser.parse(padded).get(root) || !root.is_object()) {
    return EsError(400, "x_content_parse_exception",
                   "[api_key_request] the body must be a JSON object");
  }
  ApiKey key;
  // A named object: iterating over value_unsafe() of the temporary result
  // would read it after its end.
  const simdjson::dom::object fields = root.get_object().value_unsafe();
  for (auto field : fields) {
    std::string_view s;
    if (field.key == "name") {
      if (field.value.get_string().get(s)) {
        return EsError(400, "x_content_parse_exception",
                       "[api_key_request] [name] must be a string");
      }
      key.name = std::string(s);
    } else if (field.key == "expiration") {
      if (field.value.get_string().get(s)) {
        return EsError(400, "x_content_parse_exception",
                       "[api_key_request] [expiration] must be a string");
      }
      absl::StatusOr<int64_t> ms =
          ParseTimeValue(absl::string_view(s.data(), s.size()));
      if (!ms.ok()) return ms.status();
      key.expiration = Now() + *ms;
    } else if (field.key == "role_descriptors") {
      simdjson::dom::object descriptors;
      if (field.value.get_object().get(descriptors)) {
        return EsError(400, "x_content_parse_exception",
                       "[api_key_request] [role_descriptors] must be an object");
      }
      std::vector<Role> roles;
      for (auto descriptor : descriptors) {
        Role role;
        if (absl::Status st = ParseJsonRole(descriptor.value, &role); !st.ok()) {
          return st;
        }
        roles.push_back(std::move(role));
      }
      // An empty object is no descriptors: the owner's rights.
      if (!roles.empty()) {
        key.descriptors = std::move(roles);
        key.descriptors_json = simdjson::minify(field.value);
      }
    } else if (field.key == "metadata") {
      // Accepted, not kept.
    } else {
      return EsError(400, "x_content_parse_exception",
                     absl::StrCat("[api_key_request] unknown field [",
                                  std::string(field.key), "]"));
    }
  }
  if (key.name.empty()) {
    return EsError(400, "action_request_validation_exception",
                   "Validation Failed: 1: api key name is required;");
  }
  if (key.name.size() > 1024) {
    return EsError(400, "action_request_validation_exception",
                   "Validation Failed: 1: api key name may not be more than "
                   "1024 characters long;");
  }
  key.id = RandomToken(20);
  std::string secret = RandomToken(22);
  key.salt = RandomBytes(16);
  key.digest = DigestWith(key.salt, secret);
  key.owner = owner.username;
  key.creation = Now();
  std::string out;
  JsonOut json(&out, false);
  json.BeginObject();
  json.Key("id");
  json.String(key.id);
  json.Key("name");
  json.String(key.name);
  if (key.expiration.has_value()) {
    json.Key("expiration");
    json.Long(*key.expiration);
  }
  json.Key("api_key");
  json.String(secret);
  json.Key("encoded");
  json.String(absl::Base64Escape(absl::StrCat(key.id, ":", secret)));
  json.EndObject();
  OPENSSL_cleanse(secret.data(), secret.size());
  std::lock_guard<std::mutex> lock(mu_);
  const std::string id = key.id;
  keys_[id] = std::move(key);
  if (options_.persist_api_keys) {
    if (absl::Status s = options_.persist_api_keys(KeysState()); !s.ok()) {
      keys_.erase(id);
      OPENSSL_cleanse(out.data(), out.size());
      return EsError(500, "exception",
                     absl::StrCat("the API key could not be stored: ",
                                  s.message()));
    }
  }
  return out;
}

absl::StatusOr<std::string> Security::InvalidateApiKeys(const Subject& caller,
                                                        bool all,
                                                        absl::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::padded_string padded(body.data(), body.size());
  if (body.empty() || parser.parse(padded).get(root) || !root.is_object()) {
    return EsError(400, "x_content_parse_exception",
                   "[invalidate_api_key] the body must be a JSON object");
  }
  std::vector<std::string> ids;
  std::string name, username;
  bool owner = false;
  const simdjson::dom::object fields = root.get_object().value_unsafe();
  for (auto field : fields) {
    std::string_view s;
    if (field.key == "ids") {
      simdjson::dom::array array;
      if (field.value.get_array().get(array)) {
        return EsError(400, "x_content_parse_exception",
                       "[invalidate_api_key] [ids] must be an array");
      }
      for (auto id : array) {
        if (id.get_string().get(s)) {
          return EsError(400, "x_content_parse_exception",
                         "[invalidate_api_key] [ids] must hold strings");
        }
        ids.emplace_back(s);
      }
    } else if (field.key == "id" && !field.value.get_string().get(s)) {
      ids.emplace_back(s);
    } else if (field.key == "name" && !field.value.get_string().get(s)) {
      name = std::string(s);
    } else if (field.key == "username" && !field.value.get_string().get(s)) {
      username = std::string(s);
    } else if (field.key == "owner" && field.value.is_bool()) {
      owner = field.value.get_bool().value_unsafe();
    } else if (field.key == "realm_name") {
      // One realm: nothing to narrow.
    } else {
      return EsError(400, "x_content_parse_exception",
                     absl::StrCat("[invalidate_api_key] unknown field [",
                                  std::string(field.key), "]"));
    }
  }
  if (ids.empty() && name.empty() && username.empty() && !owner) {
    return EsError(400, "action_request_validation_exception",
                   "Validation Failed: 1: One of [api key id(s), api key "
                   "name, username, realm name] must be specified if [owner] "
                   "flag is false;");
  }
  std::vector<std::string> invalidated, previously;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, key] : keys_) {
    if (!ids.empty() && std::find(ids.begin(), ids.end(), id) == ids.end()) {
      continue;
    }
    if (!name.empty() && key.name != name) continue;
    if (!username.empty() && key.owner != username) continue;
    if ((owner || !all) && key.owner != caller.username) continue;
    if (key.invalidated) {
      previously.push_back(id);
    } else {
      key.invalidated = true;
      key.invalidation = Now();
      invalidated.push_back(id);
    }
  }
  if (!invalidated.empty() && options_.persist_api_keys) {
    if (absl::Status s = options_.persist_api_keys(KeysState()); !s.ok()) {
      for (const std::string& id : invalidated) keys_[id].invalidated = false;
      return EsError(500, "exception",
                     absl::StrCat("the invalidation could not be stored: ",
                                  s.message()));
    }
  }
  std::string out;
  JsonOut json(&out, false);
  json.BeginObject();
  json.Key("invalidated_api_keys");
  json.BeginArray();
  for (const std::string& id : invalidated) json.String(id);
  json.EndArray();
  json.Key("previously_invalidated_api_keys");
  json.BeginArray();
  for (const std::string& id : previously) json.String(id);
  json.EndArray();
  json.Key("error_count");
  json.Long(0);
  json.EndObject();
  return out;
}

absl::StatusOr<std::string> Security::GetApiKeys(
    const Subject& caller, bool all,
    const std::vector<std::pair<std::string, std::string>>& params) {
  std::string id, name, username;
  bool owner = false;
  for (const auto& [key, value] : params) {
    if (key == "id") id = value;
    if (key == "name") name = value;
    if (key == "username") username = value;
    if (key == "owner") owner = value.empty() || value == "true";
  }
  std::vector<const ApiKey*> found;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key_id, key] : keys_) {
    if (!id.empty() && key_id != id) continue;
    if (!name.empty() && !IndexPatternMatches(name, key.name)) continue;
    if (!username.empty() && key.owner != username) continue;
    if ((owner || !all) && key.owner != caller.username) continue;
    found.push_back(&key);
  }
  std::sort(found.begin(), found.end(), [](const ApiKey* a, const ApiKey* b) {
    return a->creation != b->creation ? a->creation < b->creation : a->id < b->id;
  });
  std::string out;
  JsonOut json(&out, false);
  json.BeginObject();
  json.Key("api_keys");
  json.BeginArray();
  for (const ApiKey* key : found) {
    json.BeginObject();
    json.Key("id");
    json.String(key->id);
    json.Key("name");
    json.String(key->name);
    json.Key("type");
    json.String("rest");
    json.Key("creation");
    json.Long(key->creation);
    if (key->expiration.has_value()) {
      json.Key("expiration");
      json.Long(*key->expiration);
    }
    json.Key("invalidated");
    json.Bool(key->invalidated);
    if (key->invalidated) {
      json.Key("invalidation");
      json.Long(key->invalidation);
    }
    json.Key("username");
    json.String(key->owner);
    json.Key("realm");
    json.String("default_file");
    json.Key("metadata");
    json.BeginObject();
    json.EndObject();
    json.EndObject();
  }
  json.EndArray();
  json.EndObject();
  return out;
}

std::string Security::KeysState() const {
  // One JSON object per line, in id order.
  std::string out;
  for (const auto& [id, key] : keys_) {
    JsonOut json(&out, false);
    json.BeginObject();
    json.Key("id");
    json.String(key.id);
    json.Key("name");
    json.String(key.name);
    json.Key("salt");
    json.String(absl::BytesToHexString(key.salt));
    json.Key("digest");
    json.String(absl::BytesToHexString(key.digest));
    json.Key("owner");
    json.String(key.owner);
    if (!key.descriptors_json.empty()) {
      json.Key("role_descriptors");
      json.Raw(key.descriptors_json);
    }
    json.Key("creation");
    json.Long(key.creation);
    if (key.expiration.has_value()) {
      json.Key("expiration");
      json.Long(*key.expiration);
    }
    json.Key("invalidated");
    json.Bool(key.invalidated);
    json.Key("invalidation");
    json.Long(key.invalidation);
    json.EndObject();
    out.push_back('\n');
  }
  return out;
}

absl::Status Security::LoadKeys(absl::string_view state) {
  simdjson::dom::parser parser;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(state, '\n', absl::SkipEmpty())) {
    ++line_number;
    auto bad = [&](absl::string_view what) {
      return EsError(500, "exception",
                     absl::StrCat("the stored API keys do not parse (line ",
                                  line_number, "): ", what));
    };
    simdjson::padded_string padded(line.data(), line.size());
    simdjson::dom::element root;
    simdjson::dom::object fields;
    if (parser.parse(padded).get(root) || root.get_object().get(fields)) {
      return bad("not a JSON object");
    }
    ApiKey key;
    std::string_view s;
    auto text = [&](const char* name, std::string* out) {
      if (fields[name].get_string().get(s)) return false;
      *out = std::string(s);
      return true;
    };
    std::string salt_hex, digest_hex;
    int64_t number;
    if (!text("id", &key.id) || !text("name", &key.name) ||
        !text("salt", &salt_hex) || !text("digest", &digest_hex) ||
        !text("owner", &key.owner) ||
        fields["creation"].get_int64().get(key.creation) ||
        fields["invalidated"].get_bool().get(key.invalidated) ||
        fields["invalidation"].get_int64().get(key.invalidation)) {
      return bad("a field is missing or of the wrong type");
    }
    if (!fields["expiration"].get_int64().get(number)) {
      key.expiration = number;
    }
    key.salt = absl::HexStringToBytes(salt_hex);
    key.digest = absl::HexStringToBytes(digest_hex);
    if (key.salt.size() != 16 || key.digest.size() != SHA256_DIGEST_LENGTH) {
      return bad("a bad salt or digest");
    }
    simdjson::dom::object descriptors;
    if (!fields["role_descriptors"].get_object().get(descriptors)) {
      std::vector<Role> roles;
      for (auto descriptor : descriptors) {
        Role role;
        if (absl::Status st = ParseJsonRole(descriptor.value, &role);
            !st.ok()) {
          return bad(st.message());
        }
        roles.push_back(std::move(role));
      }
      key.descriptors_json = simdjson::minify(
          fields["role_descriptors"].value_unsafe());
      if (!roles.empty()) key.descriptors = std::move(roles);
    }
    keys_[key.id] = std::move(key);
  }
  return absl::OkStatus();
}

}  // namespace clout
