#include "cli/serve.h"

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <condition_variable>
#include <ctime>
#include <thread>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/common.h"
#include "engine/error.h"
#include "engine/java_format.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/rest_api.h"
#include "server/security.h"
#include "storage/data_dir.h"
#include "storage/env.h"
#include "storage/wal.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 9200, "port to listen on (0: any free port)");
ABSL_FLAG(std::string, config_dir, "",
          "directory of the security files (users, users_roles, roles.yml)");
ABSL_FLAG(bool, insecure_listen_anywhere, false,
          "without security, listen on a non-loopback address anyway");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain: serve HTTPS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, access_log, "",
          "append one JSON line per request to this file (- for stderr)");
ABSL_FLAG(uint64_t, max_content_length, uint64_t{100} << 20,
          "largest request body, in bytes, after gzip decompression");
ABSL_FLAG(int, idle_timeout_seconds, 300,
          "close a connection idle this long between requests");
ABSL_FLAG(int, request_timeout_seconds, 0,
          "drop a request whose header or body takes longer to arrive");
ABSL_FLAG(int, shutdown_grace_seconds, 10,
          "on SIGINT/SIGTERM, how long requests in flight may take");
ABSL_FLAG(std::string, data_dir, "",
          "keep results durably here: a write-ahead log, replayed on start");
ABSL_FLAG(std::string, durability, "request",
          "request: acknowledge writes once synced to disk; async: sync every "
          "100 ms (a crash may lose that window)");
ABSL_FLAG(uint64_t, snapshot_log_bytes, uint64_t{256} << 20,
          "with --data_dir, take a snapshot once the log holds this many "
          "bytes");
ABSL_FLAG(std::string, recover, "",
          "skip_corrupt: start despite a corrupt log or snapshot segment, "
          "setting the damaged files aside (a damaged segment's rows are "
          "lost)");

namespace clout {

const char kServeHelp[] =
    R"(Usage: clout serve [--host=127.0.0.1] [--port=9200] [--config_dir=DIR]
                   [--data_dir=DIR] [--threads=N] [DUMP...]

Loads the dumps (optional: without any, the store starts empty and fills
through _bulk), then serves Elasticsearch's REST API for influencer
results until SIGINT or SIGTERM. Once listening it prints one line to
stderr:
  clout serve: listening on http://HOST:PORT
On a signal it stops accepting connections, lets requests in flight finish
(at most --shutdown_grace_seconds, default 10) and exits 0. Errors before
serving (a bad dump, the port taken) print one line of the error envelope
and exit non-zero, as the other commands do.

Endpoints (../shared/spec/rest-service.md):
  GET|POST /_ml/anomaly_detectors/JOB/results/influencers   Get Influencers
  GET|POST /_xpack/ml/anomaly_detectors/JOB/results/influencers
           (the 6.x path, answered with a deprecation Warning header)
  POST|PUT /_bulk, /INDEX/_bulk    write result documents (NDJSON)
  GET|HEAD /                       node info, as the official clients expect
  GET /_clout/metrics              Prometheus metrics
  POST /_clout/snapshot            a snapshot now (with --data_dir)
  GET /_security/_authenticate, POST|GET|DELETE /_security/api_key
                                   (with --config_dir)
Every request takes pretty, human, filter_path, error_trace; bodies may be
gzip-compressed, and responses are when the client accepts gzip.

Flags:
  --host=ADDR     address to listen on (default 127.0.0.1; every address a
                  name resolves to is bound). Without TLS only loopback
                  addresses are allowed, unless --insecure_listen_anywhere
                  is given: without security anyone who reaches the port
                  can then read and write every result, and with it
                  passwords and API keys cross the network in clear.
  --tls_cert=PEM --tls_key=PEM  serve HTTPS (TLS 1.2+, OpenSSL); needs
                  --config_dir. Any address may then be served.
  --port=N        port (default 9200; 0 picks a free one and prints it)
  --threads=N     I/O threads answering queries (default: one per core);
                  _bulk writes run on writer threads of their own (2;
                  16 with --data_dir, where they mostly wait for a sync)
  --access_log=F  append one JSON line per request to F (- for stderr):
                  time, method, path (never the query string), status,
                  bytes, microseconds, X-Opaque-Id. Off by default.
  --config_dir=D  turns security on: Elasticsearch's file realm in D
                  (`users` with bcrypt hashes as elasticsearch-users or
                  `htpasswd -B` write them, `users_roles`, `roles.yml`),
                  re-read when it changes, plus the built-in roles superuser,
                  machine_learning_admin and machine_learning_user. Requests
                  then need Basic or ApiKey credentials; API keys are made
                  with POST /_security/api_key and kept in --data_dir's
                  directory (as salted digests, never the keys); without
                  --data_dir they live in memory only.
  --max_content_length=BYTES    largest request body after gzip
                  decompression (default 100 MiB, Elasticsearch's
                  http.max_content_length); larger: 413, connection closed
  --idle_timeout_seconds=S      close keep-alive connections idle this long
                  (default 300)
  --request_timeout_seconds=S   drop a request whose header or body takes
                  longer to arrive (default 30 for the header, 120 for the
                  body)
  --lenient, --load_threads=N   as for clout query: how the dumps load
  --shutdown_grace_seconds=S    see above

Durability (--data_dir=DIR):
  Without --data_dir, results live in memory only: a restart forgets what
  _bulk wrote. With it, every write is appended to a write-ahead log in
  DIR/log before it is acknowledged or visible to queries; a restart
  restores the newest snapshot of DIR/snapshots and replays the log after
  it. DIR is created if missing and locked against a second server.
  --durability=request  (default) a _bulk is answered once its batch is on
                  disk (fdatasync); concurrent writes share one sync.
  --durability=async    answered once written; the log is synced every
                  100 ms. A crash of the machine (not of clout alone) may
                  lose the writes of that window.
  --snapshot_log_bytes=B  take a snapshot once the log holds B bytes
                  (default 256 MiB); snapshots are also taken after
                  seeding, on POST /_clout/snapshot (cluster privilege
                  manage) and at a clean shutdown. Each writes only what
                  the previous one lacks, then drops the log it covers.
  DUMP arguments seed an empty data directory only; next to one that
  holds results they are refused (loading them would silently undo newer
  writes on every restart).
  Recovery drops a torn log tail (damage past the last sync: a crash in
  the middle of writing, never an acknowledged write under
  --durability=request) with a warning, keeping a copy as *.torn when it
  drops more than zeros. Any other damage stops the start with the file
  and offset; --recover=skip_corrupt starts anyway with the records
  before the damage, keeping the damaged files aside as *.corrupt. A
  damaged snapshot segment file loses its rows under skip_corrupt (the
  log it covered is gone); a damaged snapshot manifest always stops the
  start.
  A full disk fails the write with 429 cluster_block_exception and a
  failed write with 500 translog_exception; queries go on. After a failed
  sync, writes are refused until a restart.

Examples:
  clout serve --port=9200 data/it_ops_new_kpi.ndjson
  curl -s 'localhost:9200/_ml/anomaly_detectors/it_ops_new_kpi/results/influencers?size=2&pretty'
  curl -s -H 'Content-Type: application/json' \
       'localhost:9200/_ml/anomaly_detectors/it_ops_new_kpi/results/influencers' \
       -d '{"sort":"timestamp","desc":false,"page":{"size":3}}'
  curl -s -H 'Content-Type: application/x-ndjson' -XPOST localhost:9200/_bulk \
       --data-binary @bulk.ndjson

  # The official Python client (Debian: python3-elasticsearch)
  /usr/bin/python3 -c 'from elasticsearch import Elasticsearch
  es = Elasticsearch("http://localhost:9200")
  print(es.ml.get_influencers(job_id="it_ops_new_kpi", size=3))'
)";

const std::vector<std::string>& ServeFlags() {
  static const std::vector<std::string> flags = {
      "host", "port", "threads", "config_dir", "insecure_listen_anywhere",
      "access_log", "lenient", "load_threads", "shutdown_grace_seconds",
      "max_content_length", "idle_timeout_seconds", "request_timeout_seconds",
      "tls_cert", "tls_key", "data_dir", "durability", "recover",
      "snapshot_log_bytes"};
  return flags;
}

namespace {

// The access log: one JSON line per request, flushed as written.
class AccessLog {
 public:
  explicit AccessLog(std::FILE* out) : out_(out) {}
  void Write(const RequestRecord& r) {
    std::string line = "{\"@timestamp\":";
    AppendJsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                      absl::UTCTimeZone()),
                     &line);
    line.append(",\"method\":");
    AppendJsonString(r.method, &line);
    line.append(",\"path\":");
    AppendJsonString(r.path, &line);
    absl::StrAppend(&line, ",\"status\":", r.status, ",\"bytes\":", r.bytes_out,
                    ",\"micros\":", r.micros, ",\"user\":");
    if (r.user.empty()) {
      line.append("null");
    } else {
      AppendJsonString(r.user, &line);
    }
    line.append(",\"opaque_id\":");
    if (r.opaque_id.empty()) {
      line.append("null");
    } else {
      AppendJsonString(r.opaque_id, &line);
    }
    line.append("}\n");
    std::lock_guard<std::mutex> lock(mu_);
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
  }

 private:
  std::mutex mu_;
  std::FILE* out_;
};

bool IsUsage(const absl::Status& status) {
  return ErrorTypeOf(status) == "illegal_argument_exception";
}

// Opens (creating) the data directory `dir` and recovers its store.
absl::StatusOr<std::unique_ptr<DataDir>> OpenDataDir(
    const std::string& dir, const std::string& durability,
    const std::string& recover, uint64_t snapshot_log_bytes) {
  DataDirOptions options;
  options.dir = dir;
  options.snapshot_log_bytes = snapshot_log_bytes;
  if (durability == "request") {
    options.durability = Durability::kRequest;
  } else if (durability == "async") {
    options.durability = Durability::kAsync;
  } else {
    return EsError(400, "illegal_argument_exception",
                   absl::StrCat("--durability is request or async, not [",
                                durability, "]"));
  }
  if (!recover.empty() && recover != "skip_corrupt") {
    return EsError(400, "illegal_argument_exception",
                   absl::StrCat("--recover is skip_corrupt, not [", recover,
                                "]"));
  }
  options.skip_corrupt = recover == "skip_corrupt";
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<DataDir>> data = DataDir::Open(options);
  if (!data.ok()) {
    const std::string type = ErrorTypeOf(data.status());
    if (type == "translog_corrupted_exception" ||
        type == "snapshot_corrupted_exception") {
      if (options.skip_corrupt) {
        // The damage is past what skip_corrupt can leave out (a MANIFEST
        // alone says which rows are deleted): guessing would serve wrong
        // data.
        return EsError(
            500, type,
            absl::StrCat(data.status().message(),
                         "; nothing was served. --recover=skip_corrupt "
                         "leaves out damaged log records and snapshot "
                         "segment files, ",
                         type == "snapshot_corrupted_exception"
                             ? "but not a damaged MANIFEST"
                             : "but not this damage",
                         ". Restore the data directory from a backup"));
      }
      return EsError(
          500, type,
          absl::StrCat(
              data.status().message(),
              "; nothing was served. Restore the data directory from a "
              "backup, or start with --recover=skip_corrupt ",
              type == "translog_corrupted_exception"
                  ? "to serve the records before the damage"
                  : "to serve without a damaged segment file's rows (a "
                    "damaged MANIFEST cannot be skipped)"));
    }
    if (type == "exception") {
      return EsError(500, "exception",
                     absl::StrCat("data directory [", dir,
                                  "]: ", data.status().message()));
    }
    return data.status();
  }
  const LogScan& log = (*data)->recovered_log();
  if (!log.torn.empty()) {
    std::fprintf(stderr,
                 "clout serve: warning: dropped a torn log tail (writes "
                 "cut short by a crash before they were synced, never "
                 "acknowledged under --durability=request): %s\n",
                 log.torn.c_str());
  }
  if (!log.skipped.empty()) {
    std::fprintf(stderr,
                 "clout serve: warning: --recover=skip_corrupt skipped "
                 "what follows the damage: %s\n",
                 log.skipped.c_str());
  }
  const SnapshotDir& snapshots = (*data)->snapshots();
  for (const std::string& skipped : snapshots.skipped()) {
    std::fprintf(stderr,
                 "clout serve: warning: --recover=skip_corrupt left out a "
                 "damaged snapshot segment; its rows are lost: %s\n",
                 skipped.c_str());
  }
  if (!snapshots.kept_earlier().empty()) {
    std::fprintf(stderr,
                 "clout serve: note: %zu damaged snapshot file(s) that "
                 "earlier starts set aside are still in [%s]: %s (kept for "
                 "inspection; clout never deletes them)\n",
                 snapshots.kept_earlier().size(),
                 JoinPath(dir, "snapshots").c_str(),
                 absl::StrJoin(snapshots.kept_earlier(), ", ").c_str());
  }
  if (!log.kept_earlier.empty()) {
    std::fprintf(stderr,
                 "clout serve: note: %zu file(s) of damaged log bytes that "
                 "earlier starts set aside are still in [%s]: %s (kept for "
                 "inspection; clout never deletes them)\n",
                 log.kept_earlier.size(),
                 JoinPath(dir, "log").c_str(),
                 absl::StrJoin(log.kept_earlier, ", ").c_str());
  }
  if (!log.ignored.empty()) {
    std::fprintf(stderr,
                 "clout serve: warning: damaged log records that the "
                 "snapshot already holds were ignored: %s\n",
                 log.ignored.c_str());
  }
  std::fprintf(stderr,
               "clout serve: recovered generation %llu from %s in %.3f s: "
               "snapshot of generation %llu, then %llu log records (%.1f "
               "MiB)\n",
               static_cast<unsigned long long>(
                   (*data)->store().Current()->generation),
               dir.c_str(), absl::ToDoubleSeconds(absl::Now() - start),
               static_cast<unsigned long long>((*data)->recovered_snapshot()),
               static_cast<unsigned long long>(log.records),
               static_cast<double>(log.bytes) / (1 << 20));
  return data;
}

// Takes a snapshot of `data` and says so on stderr; returns the response
// body of POST /_clout/snapshot.
absl::StatusOr<std::string> TakeSnapshot(DataDir& data, const char* why) {
  const absl::Time start = absl::Now();
  absl::StatusOr<SnapshotStats> stats = data.Snapshot();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (!stats.ok()) {
    std::fprintf(stderr, "clout serve: snapshot (%s) failed: %s\n", why,
                 std::string(stats.status().message()).c_str());
    if (ErrorTypeOf(stats.status()) == "exception") {
      return EsError(500, "exception",
                     absl::StrCat("the snapshot failed: ",
                                  stats.status().message()));
    }
    return stats.status();
  }
  std::fprintf(stderr,
               "clout serve: snapshot (%s) of generation %llu: %llu of %llu "
               "segments written (%.1f MiB of %.1f MiB) in %.3f s\n",
               why, static_cast<unsigned long long>(stats->generation),
               static_cast<unsigned long long>(stats->segments_written),
               static_cast<unsigned long long>(stats->segments),
               static_cast<double>(stats->bytes_written) / (1 << 20),
               static_cast<double>(stats->bytes) / (1 << 20), seconds);
  return absl::StrCat(
      "{\"acknowledged\":true,\"generation\":", stats->generation,
      ",\"segments\":", stats->segments, ",\"segments_written\":",
      stats->segments_written, ",\"bytes\":", stats->bytes,
      ",\"bytes_written\":", stats->bytes_written, ",\"took\":",
      static_cast<int64_t>(seconds * 1000), "}");
}

}  // namespace

int RunServe(const ServeArgs& args) {
  const std::string host = absl::GetFlag(FLAGS_host);
  const int port = absl::GetFlag(FLAGS_port);
  if (port < 0 || port > 65535) {
    return UsageError(absl::StrCat("--port is 0 to 65535, not [", port, "]"));
  }
  if (host.empty()) return UsageError("--host is empty");
  // SIGINT and SIGTERM are taken by sigwait below: blocked before any
  // thread starts (the store's writer thread starts with the first load),
  // so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const bool insecure = absl::GetFlag(FLAGS_insecure_listen_anywhere);
  // Without security, anyone reaching the port could read and write every
  // result; with security but without TLS, passwords and keys would cross
  // the network in clear. Either way: loopback only, unless told.
  const std::string tls_cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string tls_key = absl::GetFlag(FLAGS_tls_key);
  if (tls_cert.empty() != tls_key.empty()) {
    return UsageError("--tls_cert and --tls_key go together");
  }
  const bool tls = !tls_cert.empty();
  if (tls && absl::GetFlag(FLAGS_config_dir).empty() && !insecure) {
    return UsageError(
        "--tls_cert without --config_dir: TLS without security still lets "
        "anyone who reaches the port read and write; give --config_dir, or "
        "--insecure_listen_anywhere to serve so anyway");
  }
  const bool require_loopback = !insecure && !tls;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> log_file(nullptr, std::fclose);
  std::unique_ptr<AccessLog> access_log;
  if (const std::string path = absl::GetFlag(FLAGS_access_log); !path.empty()) {
    if (path == "-") {
      access_log = std::make_unique<AccessLog>(stderr);
    } else {
      log_file.reset(std::fopen(ResolvePath(path).c_str(), "a"));
      if (log_file == nullptr) {
        return Fail(EsError(500, "exception",
                            absl::StrCat("cannot open access log [", path,
                                         "]: ", std::strerror(errno))),
                    kLoadFailure);
      }
      access_log = std::make_unique<AccessLog>(log_file.get());
    }
  }

  Loaded loaded;
  std::unique_ptr<DataDir> data;
  WriteAheadLog* wal = nullptr;
  InfluencerStore* store = nullptr;
  if (const std::string dir = absl::GetFlag(FLAGS_data_dir); !dir.empty()) {
    absl::StatusOr<std::unique_ptr<DataDir>> opened = OpenDataDir(
        ResolvePath(dir), absl::GetFlag(FLAGS_durability),
        absl::GetFlag(FLAGS_recover), absl::GetFlag(FLAGS_snapshot_log_bytes));
    if (!opened.ok()) {
      return Fail(opened.status(),
                  IsUsage(opened.status()) ? kUsage : kLoadFailure);
    }
    data = *std::move(opened);
    if (!args.dumps.empty() && data->store().Current()->generation > 0) {
      return UsageError(absl::StrCat(
          "the data directory [", dir, "] already holds results (generation ",
          data->store().Current()->generation,
          "); DUMP arguments only seed an empty one, since loading them "
          "again would undo newer writes. Serve it without DUMP arguments, "
          "or give an empty --data_dir"));
    }
    wal = &data->log();
    store = &data->store();
  }
  std::unique_ptr<Security> security;
  if (const std::string dir = absl::GetFlag(FLAGS_config_dir); !dir.empty()) {
    SecurityOptions options;
    if (data != nullptr) {
      // API keys live in the data directory: a restart keeps them.
      absl::StatusOr<std::string> keys = data->ReadState("api_keys");
      if (!keys.ok()) return Fail(keys.status(), kLoadFailure);
      options.api_keys_state = *std::move(keys);
      options.persist_api_keys = [&data](absl::string_view state) {
        return data->WriteState("api_keys", state);
      };
    }
    absl::StatusOr<std::unique_ptr<Security>> opened =
        Security::Open(ResolvePath(dir), std::move(options));
    if (!opened.ok()) return Fail(opened.status(), kLoadFailure);
    security = *std::move(opened);
  }
  if (!args.dumps.empty()) {
    if (int code = LoadDumps(args.dumps, StoreOptions(), args.lenient,
                             args.load_threads, &loaded, store);
        code != kOk) {
      return code;
    }
  }
  if (store == nullptr) {
    if (loaded.store == nullptr) {
      loaded.store = std::make_unique<InfluencerStore>();
    }
    store = loaded.store.get();
  }
  const std::shared_ptr<const StoreVersion> current = store->Current();
  for (const auto& [job, results] : current->jobs) {
    // Build each job's indexes before taking traffic (a snapshot's score
    // orders are already there).
    (void)store->WarmIndexes(job);
  }
  if (data != nullptr && !args.dumps.empty()) {
    // The seed is in the log; a snapshot (with the indexes just built)
    // makes the next start fast.
    if (!TakeSnapshot(*data, "after seeding").ok()) return kLoadFailure;
  }

  ServerMetrics metrics;
  RestApiOptions api_options;
  api_options.max_content_length = absl::GetFlag(FLAGS_max_content_length);
  api_options.metrics = [&] {
    if (wal == nullptr) return metrics.Render(*store);
    const LogStats stats = wal->stats();
    LogCounters counters;
    counters.appends = stats.appends;
    counters.syncs = stats.syncs;
    counters.bytes = stats.bytes;
    counters.segments = stats.segments;
    counters.log_bytes = stats.log_bytes;
    return metrics.Render(*store, &counters);
  };
  if (data != nullptr) {
    api_options.snapshot = [&] { return TakeSnapshot(*data, "requested"); };
  }
  api_options.security = security.get();
  RestApi api(store, api_options);

  HttpServerOptions options;
  options.require_loopback = require_loopback;
  options.tls_cert_file = tls ? ResolvePath(tls_cert) : "";
  options.tls_key_file = tls ? ResolvePath(tls_key) : "";
  options.host = host;
  options.port = static_cast<uint16_t>(port);
  options.threads = args.threads;
  // With a log, a writer thread mostly waits for its batch's sync; the
  // batches of threads waiting together share one (group commit).
  if (wal != nullptr) options.writer_threads = 16;
  options.shutdown_grace =
      std::chrono::seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds));
  options.max_content_length = api_options.max_content_length;
  options.idle_timeout =
      std::chrono::seconds(absl::GetFlag(FLAGS_idle_timeout_seconds));
  if (int t = absl::GetFlag(FLAGS_request_timeout_seconds); t > 0) {
    options.header_timeout = options.body_timeout = std::chrono::seconds(t);
  }
  options.on_request = [&](const RequestRecord& record) {
    metrics.Record(record);
    if (access_log) access_log->Write(record);
  };
  absl::StatusOr<std::unique_ptr<HttpServer>> server =
      HttpServer::Start(&api, options);
  if (!server.ok()) {
    if (require_loopback &&
        absl::StrContains(server.status().message(), "not a loopback")) {
      return UsageError(absl::StrCat(
          server.status().message(),
          ". Without TLS, only loopback addresses are served; give "
          "--insecure_listen_anywhere to listen anyway",
          security == nullptr
              ? " (without security, anyone who can reach the port can then "
                "read and write every result)"
              : " (passwords and API keys then cross the network in clear)"));
    }
    return Fail(server.status(), kLoadFailure);
  }
  const bool v6 = host.find(':') != std::string::npos;
  std::fprintf(stderr, "clout serve: listening on %s://%s%s%s:%u\n",
               tls ? "https" : "http", v6 ? "[" : "", host.c_str(),
               v6 ? "]" : "",
               static_cast<unsigned>((*server)->port()));
  std::fflush(stderr);

  // Snapshots once the log outgrows --snapshot_log_bytes, checked every
  // second, off the request threads.
  std::mutex snapshotter_mu;
  std::condition_variable snapshotter_cv;
  bool stopping = false;
  std::thread snapshotter;
  if (data != nullptr) {
    snapshotter = std::thread([&] {
      std::unique_lock<std::mutex> lock(snapshotter_mu);
      auto retry_at = std::chrono::steady_clock::now();
      while (!snapshotter_cv.wait_for(lock, std::chrono::seconds(1),
                                      [&] { return stopping; })) {
        if (!data->SnapshotDue() || std::chrono::steady_clock::now() < retry_at) {
          continue;
        }
        lock.unlock();
        const bool ok =
            TakeSnapshot(*data, "the log passed --snapshot_log_bytes").ok();
        lock.lock();
        // After a failure (a full disk), try again in a minute, not a second.
        retry_at = std::chrono::steady_clock::now() +
                   (ok ? std::chrono::seconds(0) : std::chrono::seconds(60));
      }
    });
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::fprintf(stderr, "clout serve: %s, shutting down\n",
               signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  (*server)->Stop();
  if (data != nullptr) {
    {
      std::lock_guard<std::mutex> lock(snapshotter_mu);
      stopping = true;
    }
    snapshotter_cv.notify_all();
    snapshotter.join();
    // Under --durability=async the last writes may not be synced yet; a
    // snapshot then makes the next start fast.
    if (absl::Status s = wal->Sync(); !s.ok()) {
      std::fprintf(stderr, "clout serve: the log could not be synced: %s\n",
                   std::string(s.message()).c_str());
      return kLoadFailure;
    }
    if (!TakeSnapshot(*data, "shutdown").ok()) return kLoadFailure;
  }
  std::fprintf(stderr, "clout serve: stopped\n");
  return kOk;
}

}  // namespace clout
