// Security: Elasticsearch's file realm, API keys and role-based
// authorization, for `clout serve --config_dir=DIR`.
//
// Spec rest-service.md sections 4 and 5. The realm is the three files
// Elasticsearch's file realm reads from its config directory:
//   users        name:bcrypt-hash ($2a$/$2b$/$2y$, as elasticsearch-users or
//                `htpasswd -B` write them)
//   users_roles  role:user1,user2
//   roles.yml    Elasticsearch's role format (cluster privileges, indices
//                with `names` patterns and `privileges`)
// plus the built-in roles superuser, machine_learning_admin and
// machine_learning_user. The files are re-read when they change (checked
// at most once a second); a change that does not parse keeps the previous
// realm and is reported on stderr.
//
// Secrets: passwords are checked with libcrypt's bcrypt (crypt_r); a
// successful check is cached for `cache_ttl` under a salted SHA-256 of the
// password, never the password; API keys are kept as salted SHA-256
// digests. Every comparison of secrets is constant-time (CRYPTO_memcmp),
// and an unknown user costs one bcrypt like a known one. Nothing here logs
// or returns a secret, except CreateApiKey's response, once.
//
// Thread-safe: every method may be called from any thread.
#ifndef CLOUT_SERVER_SECURITY_H_
#define CLOUT_SERVER_SECURITY_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clout {

struct IndexPermission {
  std::vector<std::string> names;  // patterns: `*` and `?` wildcards
  std::vector<std::string> privileges;
};

struct Role {
  std::vector<std::string> cluster;
  std::vector<IndexPermission> indices;
};

// What a set of roles allows. Pure.
class Permissions {
 public:
  Permissions() = default;
  explicit Permissions(std::vector<Role> roles) : roles_(std::move(roles)) {}
  // True if some role holds one of `granting` (privileges that grant the
  // action) as a cluster privilege.
  bool ClusterAllows(const std::vector<absl::string_view>& granting) const;
  // True if some role's index permission matches `index` and holds one of
  // `granting`.
  bool IndexAllows(absl::string_view index,
                   const std::vector<absl::string_view>& granting) const;
  const std::vector<Role>& roles() const { return roles_; }

 private:
  std::vector<Role> roles_;
};

// Who made a request, once authenticated.
struct Subject {
  std::string username;
  std::vector<std::string> roles;  // sorted
  Permissions permissions;         // the user's roles (a key's owner's)
  // Set when the request authenticated with an API key.
  bool is_api_key = false;
  std::string api_key_id;
  std::string api_key_name;
  // A key's own role descriptors, when it was given some: the key may do
  // what both these and its owner's roles allow.
  std::optional<Permissions> key_permissions;

  bool ClusterAllows(const std::vector<absl::string_view>& granting) const;
  bool IndexAllows(absl::string_view index,
                   const std::vector<absl::string_view>& granting) const;
  // "user [u] with effective roles [a,b]" or "API key id [id] of user [u]",
  // as Elasticsearch's 403 reasons name the subject.
  std::string Describe() const;
};

// A 401: the error's reason and its extra members.
struct AuthFailure {
  std::string reason;
  // "additional_unsuccessful_credentials", or empty.
  std::string additional;
};

struct SecurityOptions {
  // How long a successful password check is remembered (Elasticsearch's
  // cache.ttl default).
  std::chrono::seconds cache_ttl = std::chrono::minutes(20);
  size_t cache_max_users = 100000;
  // The clock, in epoch milliseconds (API key creation and expiry).
  std::function<int64_t()> now_millis;
  // API keys kept across restarts: Open reads the keys from
  // `api_keys_state` (what `persist_api_keys` was last given), and every
  // creation or invalidation calls `persist_api_keys` with the new state
  // before it is answered; if that fails, the change is undone and the
  // request fails with its error. The state holds each key's salted
  // digest, never the key. Unset: keys live in memory only.
  std::string api_keys_state;
  std::function<absl::Status(absl::string_view state)> persist_api_keys;
};

class Security {
 public:
  // Reads the realm from `config_dir`, and the API keys of
  // options.api_keys_state. Errors (500 `exception` naming the file and
  // line): a missing directory or `users` file, a line that does not
  // parse, a hash that is not bcrypt, a roles.yml that is not valid YAML or
  // not Elasticsearch's role format, an API key state that does not parse.
  static absl::StatusOr<std::unique_ptr<Security>> Open(
      const std::string& config_dir, SecurityOptions options = {});

  // Authenticates a request from its Authorization header (nullptr: none).
  // `request_uri` is the path and query as received, for the reasons.
  // Returns the subject, or the 401's reason (spec section 4). May take a
  // bcrypt's time (~50 ms) unless the password is cached.
  absl::StatusOr<Subject> Authenticate(const std::string* authorization,
                                       absl::string_view request_uri,
                                       AuthFailure* failure);

  // True if Authenticate would be quick: no header, an API key, or a
  // password whose check is cached. Never verifies anything.
  bool IsQuick(const std::string* authorization) const;

  // The body of GET /_security/_authenticate for `subject`.
  std::string AuthenticateJson(const Subject& subject) const;

  // POST /_security/api_key: creates a key owned by `owner` from the JSON
  // body; returns the response ({"id","name","expiration"?,"api_key",
  // "encoded"}) or a 400.
  absl::StatusOr<std::string> CreateApiKey(const Subject& owner,
                                           absl::string_view body);

  // DELETE /_security/api_key: `all` says the caller may invalidate any
  // key (manage_api_key); otherwise only the caller's own.
  absl::StatusOr<std::string> InvalidateApiKeys(const Subject& caller,
                                                bool all,
                                                absl::string_view body);

  // GET /_security/api_key, filtered by the parameters id, name, username
  // and owner (true: the caller's own); `all` as above.
  absl::StatusOr<std::string> GetApiKeys(
      const Subject& caller, bool all,
      const std::vector<std::pair<std::string, std::string>>& params);

  // The value of the two WWW-Authenticate headers of a 401.
  static const std::vector<std::string>& WwwAuthenticate();

 private:
  struct User {
    std::string hash;  // bcrypt
  };
  struct Realm {
    std::map<std::string, User> users;
    std::map<std::string, std::vector<std::string>> user_roles;
    std::map<std::string, Role> roles;
    std::string dummy_hash;  // for unknown users: the realm's highest cost
  };
  struct FileStamp {
    int64_t mtime_ns = -1;
    int64_t size = -1;
    uint64_t inode = 0;
    bool operator==(const FileStamp&) const = default;
  };
  struct ApiKey {
    std::string id;
    std::string name;
    std::string salt;    // the key's own, random
    std::string digest;  // SHA-256 of salt + key
    // The role_descriptors object as given (JSON), or empty.
    std::string descriptors_json;
    std::string owner;
    std::optional<std::vector<Role>> descriptors;
    int64_t creation = 0;
    std::optional<int64_t> expiration;
    bool invalidated = false;
    int64_t invalidation = 0;
  };
  struct CacheEntry {
    std::string digest;  // SHA-256 of salt + password
    std::string hash;    // the user's bcrypt hash it was checked against
    std::chrono::steady_clock::time_point expires;
  };

  Security(std::string dir, SecurityOptions options);
  static absl::StatusOr<Realm> ReadRealm(const std::string& dir);
  std::vector<FileStamp> Stamps() const;
  void MaybeReload();
  std::shared_ptr<const Realm> realm() const;
  Subject SubjectFor(const Realm& realm, const std::string& username) const;
  std::string Digest(absl::string_view secret) const;
  static std::string DigestWith(absl::string_view salt,
                                absl::string_view secret);
  // The keys as options_.api_keys_state holds them (mu_ held).
  std::string KeysState() const;
  absl::Status LoadKeys(absl::string_view state);
  int64_t Now() const;

  const std::string dir_;
  SecurityOptions options_;
  std::string salt_;          // random, per process

  mutable std::mutex mu_;
  std::shared_ptr<const Realm> realm_;
  std::vector<FileStamp> stamps_;
  std::chrono::steady_clock::time_point next_check_;
  absl::flat_hash_map<std::string, CacheEntry> cache_;
  std::map<std::string, ApiKey> keys_;  // by id
};

// Glob match of an index pattern (`*` any run, `?` one character). Pure.
bool IndexPatternMatches(absl::string_view pattern, absl::string_view index);

}  // namespace clout

#endif  // CLOUT_SERVER_SECURITY_H_
