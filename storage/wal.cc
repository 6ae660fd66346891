#include "storage/wal.h"

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "engine/error.h"

namespace clout {
namespace {

constexpr absl::string_view kMagic = "CLOUTWAL";
// Version 2 added each record's `synced` field; version 1 segments (no
// such field) are still read.
constexpr uint32_t kFormatVersion = 2;
constexpr size_t kHeaderBytes = 16;  // magic, version, zero
// crc, length, generation, synced (version 1: no synced).
constexpr size_t kRecordHeaderBytes = 24;
constexpr size_t kRecordHeaderBytesV1 = 16;

std::string SegmentName(uint64_t first_generation) {
  return absl::StrFormat("wal-%020d.log", first_generation);
}

// The first generation a segment's name gives, or false if `name` is not
// a segment's.
bool ParseSegmentName(absl::string_view name, uint64_t* first_generation) {
  if (name.size() != 28 || !absl::StartsWith(name, "wal-") ||
      !absl::EndsWith(name, ".log")) {
    return false;
  }
  absl::string_view digits = name.substr(4, 20);
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(digits, first_generation);
}

std::string FileHeader() {
  std::string header(kMagic);
  header.append(reinterpret_cast<const char*>(&kFormatVersion), 4);
  header.append(4, '\0');
  return header;
}

uint32_t Crc(absl::string_view bytes, uint32_t seed = 0) {
  // (crc32(0L, Z_NULL, 0) is 0: a seed of 0 starts afresh; another goes on
  // from the CRC of the bytes before these.)
  uLong crc = seed;
  // zlib takes uInt lengths: feed large records in pieces.
  while (!bytes.empty()) {
    const size_t n = std::min<size_t>(bytes.size(), 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()),
                static_cast<uInt>(n));
    bytes.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
}

template <typename T>
T Load(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

absl::Status Corrupted(absl::string_view path, uint64_t offset,
                       absl::string_view what) {
  return EsError(500, "translog_corrupted_exception",
                 absl::StrCat("translog from source [", path,
                              "] is corrupted at offset ", offset, ": ", what));
}

// One record found in a segment.
struct Record {
  uint64_t offset;
  uint64_t end;  // the offset after it
  uint64_t generation;
  absl::string_view payload;
};

// Why a segment's records stop where they do.
enum class Stop { kEnd, kTorn, kCorrupt };

struct Parsed {
  std::vector<Record> records;
  Stop stop = Stop::kEnd;
  uint64_t valid_bytes = 0;
  std::string problem;  // kTorn, kCorrupt
  uint64_t problem_offset = 0;
};

bool AllZero(absl::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

// Whether a good record of a version 2 segment after offset `pos` says
// that the log had been synced past `pos` when it was written: the bytes
// at `pos` were then durable, so damage there is not a crash's. Looks for
// records at every offset after `pos` (the damage may hide where the next
// one starts); only a record whose synced field lies in (pos, its own
// offset] can say so, and only those are checksummed.
// Records of an older log whose blocks a crash left in the file do not
// count: only one of a generation after `after_generation` (the last good
// record's before `pos`) does.
bool SyncedPast(absl::string_view data, uint64_t pos,
                uint64_t after_generation) {
  for (uint64_t q = pos + 1; q + kRecordHeaderBytes <= data.size(); ++q) {
    const char* p = data.data() + q;
    const uint64_t synced = Load<uint64_t>(p + 16);
    if (synced <= pos || synced > q) continue;
    if (Load<uint64_t>(p + 8) <= after_generation) continue;
    const uint32_t length = Load<uint32_t>(p + 4);
    if (length > data.size() - q - kRecordHeaderBytes) continue;
    if (Crc(data.substr(q + 4, kRecordHeaderBytes - 4 + length)) ==
        Load<uint32_t>(p)) {
      return true;
    }
  }
  return false;
}

// Splits a segment's bytes (of a segment whose name gives
// `first_generation`; 0: unknown) into records. A record that fails is torn if
// the file ends inside it, if nothing but zeros follows it, or (version 2)
// if no good record after it says the log was synced past it: a crash
// loses what was not synced, not always as a prefix (pages of the
// unsynced end may be lost while later ones are kept). Else it is
// corrupt. Without `verify`, checksums are not computed (bytes a scan
// checked).
Parsed ParseSegment(absl::string_view data, bool verify = true,
                    uint64_t first_generation = 0) {
  Parsed parsed;
  if (data.size() < kHeaderBytes) {
    parsed.stop = Stop::kTorn;
    parsed.problem = "the segment header is incomplete";
    return parsed;
  }
  if (data.substr(0, kMagic.size()) != kMagic) {
    parsed.stop = AllZero(data) ? Stop::kTorn : Stop::kCorrupt;
    parsed.problem = "not a clout log segment (bad magic bytes)";
    return parsed;
  }
  const uint32_t version = Load<uint32_t>(data.data() + kMagic.size());
  if (version != kFormatVersion && version != 1) {
    parsed.stop = Stop::kCorrupt;
    parsed.problem = absl::StrCat("log format version ", version,
                                  " (this build reads versions 1 to ",
                                  kFormatVersion, ")");
    return parsed;
  }
  const size_t record_header =
      version == 1 ? kRecordHeaderBytesV1 : kRecordHeaderBytes;
  // Whether damage at `pos` may be a crash's rather than corruption.
  // (A file reused under its name, which StartSegment truncates first,
  // could show records of the same generations; the bound cannot tell
  // those.)
  auto may_be_torn = [&](uint64_t pos) {
    const uint64_t after =
        parsed.records.empty()
            ? (first_generation > 0 ? first_generation - 1 : 0)
            : parsed.records.back().generation;
    return version >= 2 && !SyncedPast(data, pos, after);
  };
  uint64_t pos = kHeaderBytes;
  parsed.valid_bytes = pos;
  while (pos < data.size()) {
    const uint64_t left = data.size() - pos;
    auto fail = [&](absl::string_view what, bool torn) {
      parsed.stop = torn ? Stop::kTorn : Stop::kCorrupt;
      parsed.problem = std::string(what);
      parsed.problem_offset = pos;
    };
    if (left < record_header) {
      fail("the file ends inside a record header", true);
      break;
    }
    const char* p = data.data() + pos;
    const uint32_t crc = Load<uint32_t>(p);
    const uint32_t length = Load<uint32_t>(p + 4);
    const uint64_t generation = Load<uint64_t>(p + 8);
    // Whether the record is whole with a damaged length field: its
    // checksum matches the rest of the file read as its batch (the CRC
    // covers the length, so a torn record cannot match).
    auto whole_to_end = [&]() {
      if (!verify || left - record_header > UINT32_MAX) return false;
      const uint32_t rest = static_cast<uint32_t>(left - record_header);
      std::string header(p + 4, record_header - 4);
      std::memcpy(header.data(), &rest, 4);
      return Crc(absl::string_view(p + record_header, rest), Crc(header)) ==
             crc;
    };
    constexpr absl::string_view kWhole =
        "the record's length field is damaged (the record is whole: its "
        "checksum matches the rest of the file)";
    if (length > left - record_header) {
      // Torn, unless the record is whole, or a later record says the log
      // was synced past it.
      if (whole_to_end()) {
        fail(kWhole, false);
      } else if (verify && version >= 2 && !may_be_torn(pos)) {
        fail("the record's length field is damaged (a later record says "
             "the log was synced past it)",
             false);
      } else {
        fail("the file ends inside a record", true);
      }
      break;
    }
    const uint64_t end = pos + record_header + length;
    if (verify && Crc(data.substr(pos + 4, record_header - 4 + length)) != crc) {
      // A later record that says the log was synced past this one is
      // asked first: a length damaged to end at the end of the file must
      // not pass for a torn last record.
      if (whole_to_end()) {
        fail(kWhole, false);
      } else if (version >= 2 && !may_be_torn(pos)) {
        fail("checksum mismatch", false);
      } else if (end == data.size() || AllZero(data.substr(pos))) {
        fail("checksum mismatch", true);
      } else if (version >= 2) {
        fail("checksum mismatch, and no record after it says the log was "
             "synced past it (a crash before the sync: what follows is "
             "dropped)",
             true);
      } else {
        fail("checksum mismatch", false);
      }
      break;
    }
    parsed.records.push_back(
        {pos, end, generation, data.substr(pos + record_header, length)});
    pos = end;
    parsed.valid_bytes = pos;
  }
  return parsed;
}

absl::Status WriteError(const absl::Status& status) {
  if (absl::IsResourceExhausted(status)) {
    return EsError(
        429, "cluster_block_exception",
        absl::StrCat("index [.ml-anomalies-shared] blocked by: "
                     "[TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage "
                     "watermark, index has read-only-allow-delete block]; "
                     "the write-ahead log could not be written: ",
                     status.message()));
  }
  return EsError(500, "translog_exception",
                 absl::StrCat("the write-ahead log could not be written: ",
                              status.message()));
}

}  // namespace

absl::StatusOr<LogScan> ScanLog(const LogOptions& options, bool skip_corrupt,
                                uint64_t covered_through) {
  Env* env = options.env;
  absl::StatusOr<std::vector<std::string>> names = env->ListDir(options.dir);
  if (!names.ok()) return names.status();
  // A name for a copy set aside that replaces no earlier one.
  absl::flat_hash_set<std::string> taken(names->begin(), names->end());
  auto aside = [&taken](const std::string& name,
                        absl::string_view suffix = ".corrupt") {
    std::string candidate = absl::StrCat(name, suffix);
    for (int n = 1; taken.contains(candidate); ++n) {
      candidate = absl::StrCat(name, suffix, ".", n);
    }
    taken.insert(candidate);
    return candidate;
  };
  LogScan scan;
  for (const std::string& name : *names) {
    uint64_t first;
    if (ParseSegmentName(name, &first)) {
      scan.segments.push_back({name, first});
    }
    if (absl::StrContains(name, ".log.torn") ||
        absl::StrContains(name, ".log.corrupt")) {
      scan.kept_earlier.push_back(name);
    }
  }
  std::sort(scan.kept_earlier.begin(), scan.kept_earlier.end());
  std::sort(scan.segments.begin(), scan.segments.end(),
            [](const LogScan::Segment& a, const LogScan::Segment& b) {
              return a.first_generation < b.first_generation;
            });
  // Segments are mapped and parsed (their checksums checked) on two
  // threads, ahead of the loop below, which takes them in order: the
  // checksums are most of a scan's time. Parsing reads only.
  struct Ahead {
    absl::StatusOr<std::unique_ptr<MappedFile>> mapped;
    Parsed parsed;
    bool ready = false;
  };
  const size_t count = scan.segments.size();
  std::vector<Ahead> ahead(count);
  // The helper reads these, never scan.segments (which the loop cuts).
  std::vector<std::string> paths;
  std::vector<uint64_t> firsts;
  for (const LogScan::Segment& segment : scan.segments) {
    paths.push_back(JoinPath(options.dir, segment.name));
    firsts.push_back(segment.first_generation);
  }
  std::mutex ahead_mu;
  std::condition_variable ahead_cv;
  std::atomic<size_t> next_parse{0};
  // Parses the next segment nobody has claimed; false once none is left.
  auto parse_one = [&]() {
    const size_t j = next_parse.fetch_add(1);
    if (j >= count) return false;
    Ahead result;
    try {
      result.mapped = env->MapFile(paths[j]);
      if (result.mapped.ok()) {
        result.parsed =
            ParseSegment((*result.mapped)->data(), true, firsts[j]);
      }
    } catch (const std::bad_alloc&) {
      result.mapped = EsError(500, "translog_exception",
                              absl::StrCat("out of memory reading ", paths[j]));
    }
    std::lock_guard<std::mutex> lock(ahead_mu);
    ahead[j] = std::move(result);
    ahead[j].ready = true;
    ahead_cv.notify_all();
    return true;
  };
  // The helper stays at most kAhead segments ahead of the loop, so that a
  // long log holds a few segments (maps, file descriptors) at a time.
  constexpr size_t kAhead = 2;
  size_t consumer = 0;  // guarded by ahead_mu: the segment the loop is at
  std::thread helper;
  if (count > 1) {
    helper = std::thread([&] {
      for (;;) {
        {
          std::unique_lock<std::mutex> lock(ahead_mu);
          ahead_cv.wait(lock, [&] {
            return next_parse.load() >= count ||
                   next_parse.load() <= consumer + kAhead;
          });
        }
        if (!parse_one()) break;
      }
    });
  }
  struct JoinHelper {
    std::atomic<size_t>& next;
    size_t count;
    std::thread& helper;
    std::mutex& mu;
    std::condition_variable& cv;
    ~JoinHelper() {
      {
        std::lock_guard<std::mutex> lock(mu);
        next.store(count);  // claim what is left: the helper stops
      }
      cv.notify_all();
      if (helper.joinable()) helper.join();
    }
  } join_helper{next_parse, count, helper, ahead_mu, ahead_cv};
  bool changed_dir = false;
  for (size_t i = 0; i < scan.segments.size(); ++i) {
    LogScan::Segment& segment = scan.segments[i];
    const std::string path = JoinPath(options.dir, segment.name);
    // This one, parsed here or by the helper.
    {
      std::lock_guard<std::mutex> lock(ahead_mu);
      consumer = i;
    }
    ahead_cv.notify_all();
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(ahead_mu);
        if (ahead[i].ready) break;
      }
      if (!parse_one()) {
        std::unique_lock<std::mutex> lock(ahead_mu);
        ahead_cv.wait(lock, [&] { return ahead[i].ready; });
        break;
      }
    }
    // A segment the snapshot covers whole (the next one starts at or
    // before the snapshot's generation + 1) is read by nobody: damage in
    // it is noted, not refused or repaired, and its records not counted.
    const bool covered =
        i + 1 < scan.segments.size() &&
        scan.segments[i + 1].first_generation <= covered_through + 1;
    auto ignore = [&](absl::string_view what) {
      absl::StrAppend(&scan.ignored, scan.ignored.empty() ? "" : "; ", what,
                      " (the snapshot of generation ", covered_through,
                      " covers the segment)");
      segment.records = 0;
      scan.last_generation = scan.segments[i + 1].first_generation - 1;
    };
    absl::StatusOr<std::unique_ptr<MappedFile>> mapped =
        std::move(ahead[i].mapped);
    if (!mapped.ok()) {
      if (!covered) return mapped.status();
      ignore(mapped.status().message());
      continue;
    }
    const absl::string_view data = (*mapped)->data();
    Parsed parsed = std::move(ahead[i].parsed);
    segment.file_bytes = data.size();
    segment.valid_bytes = parsed.valid_bytes;
    const bool last = i + 1 == scan.segments.size();
    // Generations run on by one, from the name's.
    std::string gap;
    uint64_t expected = segment.first_generation;
    size_t good = 0;
    for (; good < parsed.records.size(); ++good) {
      const Record& record = parsed.records[good];
      if (scan.last_generation != 0 && good == 0 &&
          record.generation != scan.last_generation + 1) {
        gap = absl::StrCat("generation ", record.generation,
                           " follows generation ", scan.last_generation);
        break;
      }
      if (record.generation != expected) {
        gap = absl::StrCat("generation ", record.generation, " where ",
                           expected, " was expected");
        break;
      }
      ++expected;
    }
    absl::Status corrupt;
    if (!gap.empty()) {
      corrupt = Corrupted(path, parsed.records[good].offset, gap);
    } else if (parsed.stop == Stop::kCorrupt ||
               (parsed.stop == Stop::kTorn && !last)) {
      corrupt = Corrupted(path, parsed.problem_offset, parsed.problem);
    }
    if (!corrupt.ok() && covered) {
      ignore(corrupt.message());
      continue;
    }
    if (!corrupt.ok()) {
      if (!skip_corrupt) return corrupt;
      // Keep the records before the damage: a copy of this segment and
      // every later segment are set aside, and this one is cut there.
      parsed.records.resize(good);
      const uint64_t keep = good == 0 ? 0 : parsed.records[good - 1].end;
      scan.skipped = std::string(corrupt.message());
      const std::string copy = JoinPath(options.dir, aside(segment.name));
      if (absl::Status s = env->WriteFile(copy, data); !s.ok()) return s;
      absl::StrAppend(&scan.skipped, "; kept a copy as ", copy);
      for (size_t j = i + 1; j < scan.segments.size(); ++j) {
        const std::string from = JoinPath(options.dir, scan.segments[j].name);
        const std::string to = JoinPath(options.dir, aside(scan.segments[j].name));
        if (absl::Status s = env->Rename(from, to); !s.ok()) return s;
        absl::StrAppend(&scan.skipped, "; set aside ", to);
      }
      // The copy's name and the renames durable before the cut is.
      if (absl::Status s = env->SyncDir(options.dir); !s.ok()) return s;
      scan.segments.resize(i + 1);
      changed_dir = true;
      if (keep == 0) {
        if (absl::Status s = env->Remove(path); !s.ok()) return s;
        scan.segments.pop_back();
        break;
      }
      absl::StatusOr<std::unique_ptr<WritableFile>> file =
          env->OpenAppendable(path);
      if (!file.ok()) return file.status();
      if (absl::Status s = (*file)->Truncate(keep); !s.ok()) return s;
      if (absl::Status s = (*file)->Sync(); !s.ok()) return s;
      segment.valid_bytes = keep;
      segment.file_bytes = keep;
    } else if (parsed.stop == Stop::kTorn) {
      scan.torn = absl::StrCat(path, " at offset ", parsed.problem_offset,
                               ": ", parsed.problem);
      const absl::string_view cut = data.substr(parsed.valid_bytes);
      if (!AllZero(cut)) {
        // The bytes cut off are kept, in case they were damaged synced
        // records rather than a crash's (the one case the log cannot
        // tell). A precaution: without room for them, the start goes on.
        const std::string copy =
            JoinPath(options.dir, aside(segment.name, ".torn"));
        absl::Status kept = env->WriteFile(copy, cut);
        // Its name durable before the cut is.
        if (kept.ok()) kept = env->SyncDir(options.dir);
        if (kept.ok()) {
          absl::StrAppend(&scan.torn, "; kept the ", cut.size(),
                          " bytes cut off (from offset ", parsed.valid_bytes,
                          ") as ", copy);
        } else {
          env->Remove(copy).IgnoreError();
          absl::StrAppend(&scan.torn, "; could not keep the bytes cut off: ",
                          kept.message());
        }
      }
      if (parsed.records.empty()) {
        // Nothing of it was ever acknowledged: remove it whole.
        if (absl::Status s = env->Remove(path); !s.ok()) return s;
        changed_dir = true;
        scan.segments.pop_back();
        break;
      }
      absl::StatusOr<std::unique_ptr<WritableFile>> file =
          env->OpenAppendable(path);
      if (!file.ok()) return file.status();
      if (absl::Status s = (*file)->Truncate(parsed.valid_bytes); !s.ok()) {
        return s;
      }
      if (absl::Status s = (*file)->Sync(); !s.ok()) return s;
      segment.file_bytes = parsed.valid_bytes;
    }
    segment.records = parsed.records.size();
    for (const Record& record : parsed.records) {
      if (scan.first_generation == 0) scan.first_generation = record.generation;
      scan.last_generation = record.generation;
      scan.bytes += record.end - record.offset;
    }
    scan.records += parsed.records.size();
    if (!scan.skipped.empty()) break;
  }
  if (changed_dir) {
    if (absl::Status s = env->SyncDir(options.dir); !s.ok()) return s;
  }
  return scan;
}

absl::Status ReplayLog(
    const LogOptions& options, const LogScan& scan, uint64_t after_generation,
    const std::function<absl::Status(uint64_t generation,
                                     MutationBatch batch)>& apply) {
  if (scan.last_generation > after_generation &&
      scan.first_generation > after_generation + 1) {
    return Corrupted(options.dir, 0,
                     absl::StrCat("the log starts at generation ",
                                  scan.first_generation, " but generation ",
                                  after_generation + 1, " is needed"));
  }
  for (const LogScan::Segment& segment : scan.segments) {
    // A segment a snapshot covers (maybe removed since the scan) is not
    // read.
    if (segment.records == 0 ||
        segment.first_generation + segment.records - 1 <= after_generation) {
      continue;
    }
    const std::string path = JoinPath(options.dir, segment.name);
    absl::StatusOr<std::unique_ptr<MappedFile>> mapped =
        options.env->MapFile(path);
    if (!mapped.ok()) return mapped.status();
    const absl::string_view data = (*mapped)->data();
    if (data.size() < segment.valid_bytes) {
      return Corrupted(path, data.size(), "the segment shrank after the scan");
    }
    // The scan checked every checksum of these bytes.
    Parsed parsed =
        ParseSegment(data.substr(0, segment.valid_bytes), /*verify=*/false);
    if (parsed.stop != Stop::kEnd ||
        parsed.records.size() < segment.records) {
      return Corrupted(path, parsed.problem_offset, "changed after the scan");
    }
    parsed.records.resize(segment.records);
    for (const Record& record : parsed.records) {
      if (record.generation <= after_generation) continue;
      absl::StatusOr<MutationBatch> batch = DecodeMutationBatch(record.payload);
      if (!batch.ok()) {
        return Corrupted(path, record.offset, batch.status().message());
      }
      if (absl::Status s = apply(record.generation, *std::move(batch));
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

WriteAheadLog::WriteAheadLog(const LogOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<WriteAheadLog>> WriteAheadLog::Open(
    const LogOptions& options, const LogScan& scan, uint64_t base) {
  std::unique_ptr<WriteAheadLog> log(new WriteAheadLog(options));
  for (const LogScan::Segment& segment : scan.segments) {
    log->segments_.push_back(
        {segment.name, segment.first_generation, segment.file_bytes});
  }
  log->replayed_through_ = scan.last_generation;
  log->last_generation_ = std::max(scan.last_generation, base);
  if (scan.last_generation <= base) {
    // The snapshot holds every record: the segments go (durably with the
    // new segment's directory sync, before any record is written there).
    for (const Segment& segment : log->segments_) {
      if (absl::Status s =
              options.env->Remove(JoinPath(options.dir, segment.name));
          !s.ok()) {
        return s;
      }
    }
    log->segments_.clear();
  }
  {
    std::unique_lock<std::mutex> lock(log->mu_);
    if (absl::Status s = log->StartSegment(log->last_generation_ + 1);
        !s.ok()) {
      return s;
    }
    if (scan.last_generation > base) {
      lock.unlock();
      if (absl::Status s = log->DropThrough(base); !s.ok()) return s;
    }
  }
  if (options.durability == Durability::kAsync) {
    log->async_ = std::thread([raw = log.get()] { raw->AsyncLoop(); });
  }
  return log;
}

WriteAheadLog::~WriteAheadLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (async_.joinable()) async_.join();
  // Whatever was appended reaches the disk when the process ends anyway; a
  // clean shutdown calls Sync first to know.
}

absl::Status WriteAheadLog::StartSegment(uint64_t first_generation) {
  const std::string name = SegmentName(first_generation);
  const std::string path = JoinPath(options_.dir, name);
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      options_.env->OpenAppendable(path);
  if (!file.ok()) return file.status();
  // A segment of that name holds no good record (the scan removed or
  // kept it): its generations are the ones to come.
  // On failure the file goes: a stray segment would later be taken for
  // part of the log.
  auto fail = [&](absl::Status s) {
    file->reset();
    options_.env->Remove(path).IgnoreError();
    return s;
  };
  if ((*file)->size() > 0) {
    if (absl::Status s = (*file)->Truncate(0); !s.ok()) return fail(s);
  }
  if (absl::Status s = (*file)->Append(FileHeader()); !s.ok()) return fail(s);
  // The name must be durable before a record in it is acknowledged.
  if (absl::Status s = options_.env->SyncDir(options_.dir); !s.ok()) {
    return fail(s);
  }
  if (!segments_.empty() && segments_.back().name == name) {
    segments_.pop_back();
  }
  segments_.push_back({name, first_generation, kHeaderBytes});
  file_ = std::move(*file);
  file_name_ = path;
  synced_bytes_ = 0;
  return absl::OkStatus();
}

absl::Status WriteAheadLog::Append(const MutationBatch& batch,
                                   uint64_t generation) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!broken_.ok()) return broken_;
  if (generation <= replayed_through_) {
    if (replaying_) return absl::OkStatus();  // a replayed batch: logged
  }
  if (generation != last_generation_ + 1) {
    return EsError(500, "translog_exception",
                   absl::StrCat("the store offered generation ", generation,
                                " to a log at generation ", last_generation_));
  }
  std::string record(kRecordHeaderBytes, '\0');
  EncodeMutationBatch(batch, &record);
  const uint64_t length = record.size() - kRecordHeaderBytes;
  if (length > UINT32_MAX) {
    return EsError(413, "illegal_argument_exception",
                   absl::StrCat("a batch of ", length,
                                " bytes is too large for the write-ahead log "
                                "(at most 4 GiB): split it"));
  }
  const uint32_t length32 = static_cast<uint32_t>(length);
  std::memcpy(record.data() + 4, &length32, 4);
  std::memcpy(record.data() + 8, &generation, 8);
  if (file_->size() >= options_.segment_bytes &&
      file_->size() > kHeaderBytes) {
    // The old segment is synced before the new one takes records, so that
    // a sync of the new one covers everything before it.
    if (absl::Status s = SyncLocked(lock, false); !s.ok()) return s;
    // A Rotate() while the sync waited for another may have started one.
    if (file_->size() >= options_.segment_bytes &&
        file_->size() > kHeaderBytes) {
      if (absl::Status s = StartSegment(generation); !s.ok()) {
        // The old segment goes on taking records (this one is retried).
        return WriteError(s);
      }
    }
  }
  // How far the segment it goes to is durable (set once any rotation is
  // done): recovery tells a crash's damage (after that) from corruption
  // (before it) by this.
  std::memcpy(record.data() + 16, &synced_bytes_, 8);
  const uint32_t crc = Crc(absl::string_view(record).substr(4));
  std::memcpy(record.data(), &crc, 4);
  const uint64_t before = file_->size();
  if (absl::Status s = file_->Append(record); !s.ok()) {
    if (absl::Status cut = file_->Truncate(before); !cut.ok()) {
      broken_ = WriteError(absl::Status(
          cut.code(), absl::StrCat(s.message(), "; then ", cut.message(),
                                   "; writes are refused until a restart")));
      return broken_;
    }
    return WriteError(s);
  }
  segments_.back().bytes = file_->size();
  last_generation_ = generation;
  appends_.fetch_add(1, std::memory_order_relaxed);
  bytes_.fetch_add(record.size(), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status WriteAheadLog::SyncLocked(std::unique_lock<std::mutex>& lock,
                                       bool let_go) {
  sync_cv_.wait(lock, [this] { return !syncing_; });
  if (!broken_.ok()) return broken_;
  if (file_->size() == synced_bytes_) return absl::OkStatus();
  // file_ stays the same file while syncing_ is set: a new segment starts
  // only after a sync with mu_ held, which waits for this one.
  const std::shared_ptr<WritableFile> file = file_;
  const uint64_t size = file->size();
  absl::Status s;
  if (let_go) {
    syncing_ = true;
    lock.unlock();
    s = file->Sync();
    lock.lock();
    syncing_ = false;
    sync_cv_.notify_all();
    // An append that failed meanwhile may have broken the log.
    if (s.ok() && !broken_.ok()) return broken_;
  } else {
    s = file->Sync();
  }
  if (!s.ok()) {
    // After a failed fsync the kernel may have dropped the dirty pages:
    // nothing written since the last good sync can be trusted.
    broken_ = EsError(500, "translog_exception",
                      absl::StrCat("the write-ahead log could not be synced: ",
                                   s.message(),
                                   "; writes are refused until a restart"));
    return broken_;
  }
  synced_bytes_ = std::max(synced_bytes_, size);
  syncs_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status WriteAheadLog::WaitDurable(uint64_t) {
  std::unique_lock<std::mutex> lock(mu_);
  if (options_.durability == Durability::kAsync) return broken_;
  return SyncLocked(lock, true);
}

absl::Status WriteAheadLog::Sync() {
  std::unique_lock<std::mutex> lock(mu_);
  return SyncLocked(lock, true);
}

absl::Status WriteAheadLog::Rotate() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!broken_.ok()) return broken_;
  if (file_->size() <= kHeaderBytes) return absl::OkStatus();
  if (absl::Status s = SyncLocked(lock, false); !s.ok()) return s;
  // An append's rotation while the sync waited for another may have
  // started one.
  if (file_->size() <= kHeaderBytes) return absl::OkStatus();
  return StartSegment(last_generation_ + 1);
}

void WriteAheadLog::EndReplay() {
  std::lock_guard<std::mutex> lock(mu_);
  replaying_ = false;
}

void WriteAheadLog::AsyncLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock,
                 std::chrono::milliseconds(options_.async_interval_millis),
                 [this] { return stopping_; });
    if (stopping_) break;
    // Appends go on meanwhile; broken_ reports a failure to writers.
    SyncLocked(lock, true).IgnoreError();
  }
}

absl::Status WriteAheadLog::DropThrough(uint64_t generation) {
  std::unique_lock<std::mutex> lock(mu_);
  bool removed = false;
  while (segments_.size() > 1 &&
         segments_[1].first_generation <= generation + 1) {
    const std::string path = JoinPath(options_.dir, segments_.front().name);
    if (absl::Status s = options_.env->Remove(path); !s.ok()) return s;
    segments_.erase(segments_.begin());
    removed = true;
  }
  if (removed) return options_.env->SyncDir(options_.dir);
  return absl::OkStatus();
}

LogStats WriteAheadLog::stats() const {
  LogStats stats;
  stats.appends = appends_.load(std::memory_order_relaxed);
  stats.syncs = syncs_.load(std::memory_order_relaxed);
  stats.bytes = bytes_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  stats.segments = segments_.size();
  for (const Segment& segment : segments_) stats.log_bytes += segment.bytes;
  stats.last_generation = last_generation_;
  return stats;
}

absl::StatusOr<DurableStore> OpenDurableStore(
    const LogOptions& log_options, bool skip_corrupt,
    StoreOptions store_options, std::shared_ptr<const StoreVersion> snapshot) {
  DurableStore durable;
  const uint64_t base = snapshot == nullptr ? 0 : snapshot->generation;
  absl::StatusOr<LogScan> scan = ScanLog(log_options, skip_corrupt, base);
  if (!scan.ok()) return scan.status();
  durable.scan = *std::move(scan);
  if (durable.scan.last_generation > base &&
      durable.scan.first_generation > base + 1) {
    return Corrupted(log_options.dir, 0,
                     absl::StrCat("the log starts at generation ",
                                  durable.scan.first_generation,
                                  " but the snapshot ends at generation ",
                                  base, ": generations in between are lost"));
  }
  absl::StatusOr<std::unique_ptr<WriteAheadLog>> log =
      WriteAheadLog::Open(log_options, durable.scan, base);
  if (!log.ok()) return log.status();
  durable.log = std::move(*log);
  store_options.log = durable.log;
  durable.store = std::make_unique<InfluencerStore>(std::move(store_options));
  if (snapshot != nullptr) {
    if (absl::Status s = durable.store->Restore(std::move(snapshot)); !s.ok()) {
      return s;
    }
  }
  // Consecutive `_bulk` batches are coalesced into commits of up to
  // kCoalesce operations (MutationBatch::Coalesce: the same outcome, one
  // commit); submitted ahead, those commits queue up and the store's
  // writer applies them back to back. Their item outcomes are not kept.
  const size_t kCoalesce = log_options.replay_commit_operations;
  // Commits submitted and not yet settled: with large commits one is
  // enough to keep the writer busy, and each holds ~100 bytes an operation.
  const size_t kInFlight = kCoalesce >= (size_t{1} << 20) ? 1 : 8;
  ApplyOptions apply;
  apply.replay = true;
  apply.item_results = false;
  std::deque<std::pair<uint64_t, std::future<absl::StatusOr<MutationResult>>>>
      pending;
  auto settle_one = [&]() -> absl::Status {
    auto [generation, future] = std::move(pending.front());
    pending.pop_front();
    absl::StatusOr<MutationResult> result = future.get();
    if (!result.ok()) {
      return EsError(500, "translog_exception",
                     absl::StrCat("replaying the log up to generation ",
                                  generation, " failed: ",
                                  result.status().message()));
    }
    if (result->generation != generation) {
      return EsError(500, "translog_exception",
                     absl::StrCat("replaying the log up to generation ",
                                  generation, " gave generation ",
                                  result->generation));
    }
    return absl::OkStatus();
  };
  std::optional<MutationBatch> group;
  uint64_t group_end = 0;
  auto submit = [&]() -> absl::Status {
    if (!group.has_value()) return absl::OkStatus();
    pending.emplace_back(group_end,
                         durable.store->Submit(*std::move(group), apply));
    group.reset();
    return pending.size() >= kInFlight ? settle_one() : absl::OkStatus();
  };
  // The log is read and decoded on a thread of its own, while this one
  // coalesces the batches (and the store's writer applies the commits):
  // on two cores, reading and coalescing a log cost about the same.
  struct Decoded {
    uint64_t generation;
    MutationBatch batch;
  };
  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<Decoded> queue;
  constexpr size_t kQueued = 64;  // decoded batches waiting, at most
  bool read_all = false;          // the reader is done (see read_status)
  bool stop_reading = false;      // the coalescing side failed
  absl::Status read_status;
  // However this function leaves (an error, an exception), the reader is
  // stopped and joined first (the stopper exists before the thread does).
  std::thread reader;
  struct StopReader {
    std::mutex& mu;
    std::condition_variable& cv;
    bool& stop;
    std::thread& thread;
    void Stop() {
      {
        std::lock_guard<std::mutex> lock(mu);
        stop = true;
        cv.notify_all();
      }
      if (thread.joinable()) thread.join();
    }
    ~StopReader() { Stop(); }
  } stop_reader{queue_mu, queue_cv, stop_reading, reader};
  reader = std::thread([&] {
    absl::Status s;
    try {
      s = ReplayLog(
          log_options, durable.scan, base,
          [&](uint64_t generation, MutationBatch batch) -> absl::Status {
            std::unique_lock<std::mutex> lock(queue_mu);
            queue_cv.wait(lock, [&] {
              return stop_reading || queue.size() < kQueued;
            });
            if (stop_reading) return absl::CancelledError("replay stopped");
            queue.push_back({generation, std::move(batch)});
            queue_cv.notify_all();
            return absl::OkStatus();
          });
    } catch (const std::bad_alloc&) {
      s = EsError(500, "translog_exception",
                  "out of memory reading the write-ahead log");
    }
    std::lock_guard<std::mutex> lock(queue_mu);
    read_status = std::move(s);
    read_all = true;
    queue_cv.notify_all();
  });
  auto coalesce = [&](uint64_t generation,
                      MutationBatch batch) -> absl::Status {
    const bool bulk = batch.mode() == MutationMode::kBulk;
    if (group.has_value() &&
        (!bulk || group->mode() != MutationMode::kBulk ||
         group->operations() >= kCoalesce)) {
      if (absl::Status s = submit(); !s.ok()) return s;
    }
    if (group.has_value()) {
      group->Coalesce(std::move(batch));
    } else {
      group.emplace(std::move(batch));
      if (bulk) {
        // Room for the batches to come, up to the commit's bound: a row
        // takes 50 bytes of a record, so the log's bytes bound its rows
        // (fresh memory is costly to touch; room unused is not touched).
        group->Reserve(std::min<size_t>(kCoalesce, durable.scan.bytes / 50));
      }
    }
    group_end = generation;
    return absl::OkStatus();
  };
  absl::Status replayed;
  for (;;) {
    std::optional<Decoded> next;
    {
      std::unique_lock<std::mutex> lock(queue_mu);
      queue_cv.wait(lock, [&] { return read_all || !queue.empty(); });
      if (queue.empty()) {
        replayed = read_status;
        break;
      }
      next.emplace(std::move(queue.front()));
      queue.pop_front();
      queue_cv.notify_all();
    }
    replayed = coalesce(next->generation, std::move(next->batch));
    if (!replayed.ok()) break;
  }
  stop_reader.Stop();  // the reader has read everything, or must stop
  if (replayed.ok()) replayed = submit();
  while (!pending.empty()) {
    absl::Status s = settle_one();
    if (replayed.ok()) replayed = s;
  }
  if (!replayed.ok()) return replayed;
  durable.log->EndReplay();
  return durable;
}

}  // namespace clout
