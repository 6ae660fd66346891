// The write-ahead log under fault injection (storage/fault_env.h): every
// acknowledged batch survives a crash at any point, torn tails are dropped,
// corruption is refused (or set aside on request), a full disk or a failed
// sync fails the write and leaves the store and the log as they were.
#include "storage/wal.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <atomic>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/columns.h"
#include "engine/error.h"
#include "engine/mutation.h"
#include "engine/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/fault_env.h"

namespace clout {
namespace {

using ::testing::HasSubstr;

constexpr char kDir[] = "/data";

// Every job's rows, as text, in order, with versions.
std::map<std::string, std::vector<std::string>> Rows(
    const InfluencerStore& store) {
  std::map<std::string, std::vector<std::string>> rows;
  const std::shared_ptr<const StoreVersion> current = store.Current();
  for (const auto& [id, stored] : current->jobs) {
    std::shared_ptr<const JobResults> job = MaterializeJob(stored);
    std::vector<std::string>& out = rows[id];
    for (size_t r = 0; r < job->size(); ++r) {
      out.push_back(absl::StrCat(job->field_name(r), "=", job->field_value(r),
                                 "@", job->columns.timestamp[r], " ",
                                 job->columns.influencer_score[r], " v",
                                 job->columns.version[r]));
    }
  }
  return rows;
}

InfluencerFields Row(absl::string_view value, int64_t timestamp,
                     double score) {
  InfluencerFields row;
  row.field_name = "host";
  row.field_value = value;
  row.timestamp = timestamp;
  row.bucket_span = 900;
  row.influencer_score = score;
  row.initial_influencer_score = score / 2;
  row.probability = 0.01;
  return row;
}

// A random batch: upserts, deletes and now and then a job operation.
MutationBatch RandomBatch(std::mt19937_64& random) {
  const bool bulk = random() % 3 != 0;
  MutationBatch batch(bulk ? MutationMode::kBulk : MutationMode::kLoad);
  const int ops = 1 + static_cast<int>(random() % 6);
  for (int i = 0; i < ops; ++i) {
    const std::string job = random() % 2 ? "a" : "b";
    const std::string value = absl::StrCat("h", random() % 5);
    InfluencerFields row = Row(value, 1000 * (random() % 4),
                               static_cast<double>(random() % 100));
    switch (random() % 10) {
      case 0:
        batch.DeleteInfluencer(
            *ParseInfluencerResultId(InfluencerDocumentId(job, row)));
        break;
      case 1:
        if (bulk) batch.ReplaceJob(job);
        break;
      default:
        batch.AddInfluencer(job, row);
    }
  }
  return batch;
}

LogOptions Options(FaultEnv* env, uint64_t segment_bytes = 64 << 20) {
  LogOptions options;
  options.env = env;
  options.dir = kDir;
  options.segment_bytes = segment_bytes;
  return options;
}

absl::StatusOr<DurableStore> Open(FaultEnv* env, uint64_t segment_bytes,
                                  bool skip_corrupt = false) {
  return OpenDurableStore(Options(env, segment_bytes), skip_corrupt, {});
}

std::unique_ptr<FaultEnv> NewEnv() {
  auto env = std::make_unique<FaultEnv>();
  EXPECT_TRUE(env->CreateDir(kDir).ok());
  EXPECT_TRUE(env->SyncDir("/").ok());
  return env;
}

// Applies `batches` random batches, some submitted together (one group,
// one sync), and mirrors every acknowledged one on `mirror`.
void Drive(InfluencerStore& store, InfluencerStore& mirror,
           std::mt19937_64& random, int batches) {
  for (int b = 0; b < batches;) {
    const int together = 1 + static_cast<int>(random() % 4);
    std::vector<std::future<absl::StatusOr<MutationResult>>> futures;
    std::vector<std::string> encoded;
    for (int k = 0; k < together && b < batches; ++k, ++b) {
      MutationBatch batch = RandomBatch(random);
      encoded.emplace_back();
      EncodeMutationBatch(batch, &encoded.back());
      futures.push_back(store.Submit(std::move(batch)));
    }
    for (size_t k = 0; k < futures.size(); ++k) {
      absl::StatusOr<MutationResult> result = futures[k].get();
      ASSERT_TRUE(result.ok()) << result.status();
      ASSERT_TRUE(mirror.Apply(*DecodeMutationBatch(encoded[k])).ok());
    }
  }
}

// A log of `batches` random batches (seed `seed`) in a new FaultEnv, its
// store closed; `mirror` gets every batch.
std::unique_ptr<FaultEnv> LogOf(int batches, uint64_t seed,
                                InfluencerStore& mirror) {
  std::unique_ptr<FaultEnv> env = NewEnv();
  std::mt19937_64 random(seed);
  absl::StatusOr<DurableStore> durable = Open(env.get(), 64 << 20);
  EXPECT_TRUE(durable.ok()) << durable.status();
  if (durable.ok()) Drive(*durable->store, mirror, random, batches);
  return env;
}

TEST(WalTest, AcknowledgedBatchesSurviveCrashesAtAnyPoint) {
  // Small segments: groups of batches span new segments, whose names and
  // whose predecessors' tails must be durable before an acknowledgment.
  for (uint64_t segment_bytes : {uint64_t{1}, uint64_t{600}, uint64_t{1} << 20}) {
    for (int seed = 0; seed < 40; ++seed) {
      SCOPED_TRACE(absl::StrCat("segment_bytes ", segment_bytes, " seed ", seed));
      std::mt19937_64 random(seed);
      std::unique_ptr<FaultEnv> env = NewEnv();
      InfluencerStore mirror;  // every acknowledged batch
      for (int life = 0; life < 3; ++life) {
        absl::StatusOr<DurableStore> durable = Open(env.get(), segment_bytes);
        ASSERT_TRUE(durable.ok()) << durable.status();
        ASSERT_EQ(Rows(*durable->store), Rows(mirror)) << "life " << life;
        ASSERT_EQ(durable->store->Current()->generation,
                  mirror.Current()->generation);
        ASSERT_EQ(durable->store->Current()->next_seq_no,
                  mirror.Current()->next_seq_no);
        Drive(*durable->store, mirror, random, 1 + random() % 12);
        // A batch appended but never synced (the crash came before the
        // sync): it may survive or not, but never as garbage.
        if (random() % 2 == 0) {
          MutationBatch extra = RandomBatch(random);
          ASSERT_TRUE(durable->log
                          ->Append(extra, durable->store->Current()->generation + 1)
                          .ok());
        }
        durable->store.reset();
        env->Crash(/*torn=*/true, random());
        // What survived of the unsynced batch, if anything, is replayed;
        // the mirror follows the log's view of it.
        absl::StatusOr<LogScan> scan = ScanLog(Options(env.get()), false);
        ASSERT_TRUE(scan.ok()) << scan.status();
        if (scan->last_generation > mirror.Current()->generation) {
          ASSERT_EQ(scan->last_generation, mirror.Current()->generation + 1);
          ASSERT_TRUE(ReplayLog(Options(env.get()), *scan,
                                mirror.Current()->generation,
                                [&](uint64_t, MutationBatch batch) {
                                  return mirror.Apply(std::move(batch)).status();
                                })
                          .ok());
        }
      }
    }
  }
}

TEST(WalTest, WaitDurableCoversAppendsBeforeARotation) {
  std::unique_ptr<FaultEnv> env = NewEnv();
  absl::StatusOr<DurableStore> durable = Open(env.get(), 64 << 20);
  ASSERT_TRUE(durable.ok());
  // The writer thread appended a batch; a snapshot rotates the log before
  // the writer's sync: that sync must still cover the batch.
  MutationBatch batch(MutationMode::kBulk);
  batch.AddInfluencer("a", Row("x", 0, 1));
  ASSERT_TRUE(durable->log->Append(batch, 1).ok());
  ASSERT_TRUE(durable->log->Rotate().ok());
  ASSERT_TRUE(durable->log->WaitDurable(1).ok());
  durable->store.reset();
  env->Crash(/*torn=*/true, 5);
  absl::StatusOr<LogScan> scan = ScanLog(Options(env.get()), false);
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_EQ(scan->last_generation, 1u);
}

TEST(WalTest, AFailedRotationLeavesNoStraySegment) {
  std::unique_ptr<FaultEnv> env = NewEnv();
  InfluencerStore mirror;
  std::mt19937_64 random(21);
  absl::StatusOr<DurableStore> durable = Open(env.get(), 64 << 20);
  ASSERT_TRUE(durable.ok());
  Drive(*durable->store, mirror, random, 2);
  env->SetSpaceLeft(5);  // the new segment's header does not fit
  EXPECT_FALSE(durable->log->Rotate().ok());
  env->SetSpaceLeft(-1);
  Drive(*durable->store, mirror, random, 3);  // the old segment goes on
  ASSERT_TRUE(durable->log->Rotate().ok());
  Drive(*durable->store, mirror, random, 2);
  durable->store.reset();
  env->Crash(/*torn=*/true, 3);
  absl::StatusOr<DurableStore> reopened = Open(env.get(), 64 << 20);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(Rows(*reopened->store), Rows(mirror));
}

TEST(WalTest, ATornTailIsCutAndLaterWritesSurviveTheNextCrash) {
  std::unique_ptr<FaultEnv> env = NewEnv();
  InfluencerStore mirror;
  std::mt19937_64 random(7);
  {
    absl::StatusOr<DurableStore> durable = Open(env.get(), 64 << 20);
    ASSERT_TRUE(durable.ok());
    Drive(*durable->store, mirror, random, 5);
  }
  // Half a record at the end, durably (a crash in the middle of a write
  // that reached the disk in part).
  const std::string segment = JoinPath(kDir, "wal-00000000000000000001.log");
  {
    auto file = *env->OpenAppendable(segment);
    ASSERT_TRUE(file->Append(std::string("\x10\x20\x30\x40\x50\x00\x00\x00\x06", 9)).ok());
    ASSERT_TRUE(file->Sync().ok());
  }
  {
    absl::StatusOr<DurableStore> durable = Open(env.get(), 64 << 20);
    ASSERT_TRUE(durable.ok()) << durable.status();
    EXPECT_THAT(durable->scan.torn, HasSubstr(segment));
    EXPECT_THAT(durable->scan.torn, HasSubstr("the file ends inside a record"));
    EXPECT_EQ(Rows(*durable->store), Rows(mirror));
    // The bytes cut off are kept.
    EXPECT_THAT(durable->scan.torn, HasSubstr("kept the 9 bytes cut off"));
    EXPECT_EQ(env->Contents(segment + ".torn"),
              std::string("\x10\x20\x30\x40\x50\x00\x00\x00\x06", 9));
    Drive(*durable->store, mirror, random, 3);
  }
  // The cut must itself be durable: otherwise the torn bytes come back in
  // the middle of the log.
  env->Crash(/*torn=*/false, 1);
  absl::StatusOr<DurableStore> durable = Open(env.get(), 64 << 20);
  ASSERT_TRUE(durable.ok()) << durable.status();
  EXPECT_EQ(Rows(*durable->store), Rows(mirror));
}

// Keeping the bytes a torn cut drops is a precaution: a full disk does not
// stop the start, and leaves no partial copy.
TEST(WalTest, NoRoomToKeepATornTailDoesNotStopTheStart) {
  InfluencerStore mirror;
  std::unique_ptr<FaultEnv> env = LogOf(4, 12, mirror);
  const std::string segment = JoinPath(kDir, "wal-00000000000000000001.log");
  {
    auto file = *env->OpenAppendable(segment);
    ASSERT_TRUE(file->Append(std::string(40, '\x7f')).ok());
    ASSERT_TRUE(file->Sync().ok());
  }
  // Room for the new segment's header, not for the 40 bytes.
  env->SetSpaceLeft(20);
  absl::StatusOr<DurableStore> durable = Open(env.get(), 64 << 20);
  ASSERT_TRUE(durable.ok()) << durable.status();
  EXPECT_EQ(Rows(*durable->store), Rows(mirror));
  EXPECT_THAT(durable->scan.torn, HasSubstr("could not keep the bytes cut off"));
  EXPECT_EQ(env->Contents(segment + ".torn"), "");
}

// A bit flipped in the length field of the last record makes it seem to
// run past the end of the file, as a torn one does; but the record is whole
// (its checksum matches the rest of the file), so it is refused as damage,
// not dropped as torn.
TEST(WalTest, ADamagedLengthInTheLastRecordIsNotATornTail) {
  for (int bit : {0, 1, 2, 3, 9, 17, 30}) {
    std::unique_ptr<FaultEnv> env = NewEnv();
    InfluencerStore mirror;
    std::mt19937_64 random(5);
    {
      absl::StatusOr<DurableStore> durable = Open(env.get(), 64 << 20);
      ASSERT_TRUE(durable.ok());
      Drive(*durable->store, mirror, random, 3);
    }
    const std::string segment = JoinPath(kDir, "wal-00000000000000000001.log");
    const std::string bytes = env->Contents(segment);
    // The last record: walk the records (24-byte headers) after the
    // 16-byte file header.
    size_t at = 16, last = 0;
    while (at + 24 <= bytes.size()) {
      uint32_t length;
      std::memcpy(&length, bytes.data() + at + 4, 4);
      last = at;
      at += 24 + length;
    }
    ASSERT_EQ(at, bytes.size());
    uint32_t length;
    std::memcpy(&length, bytes.data() + last + 4, 4);
    // A larger length seems torn; a smaller one fails the checksum before
    // the end of the file. Both are refused: the record checks out as it
    // stands, to the end of the file.
    env->FlipBit(segment, last + 4 + bit / 8, bit % 8);
    absl::StatusOr<DurableStore> refused = Open(env.get(), 64 << 20);
    ASSERT_FALSE(refused.ok()) << "bit " << bit;
    EXPECT_EQ(ErrorTypeOf(refused.status()), "translog_corrupted_exception");
    EXPECT_THAT(std::string(refused.status().message()),
                HasSubstr("length field is damaged"))
        << "bit " << bit;
    // Nothing was cut: with the bit back, every batch is there.
    env->FlipBit(segment, last + 4 + bit / 8, bit % 8);
    absl::StatusOr<DurableStore> whole = Open(env.get(), 64 << 20);
    ASSERT_TRUE(whole.ok()) << whole.status();
    EXPECT_EQ(Rows(*whole->store), Rows(mirror));
  }
}

// A power cut loses unsynced pages of the log in any order (FaultEnv's
// holes): a lost page with later ones kept is a torn tail, cut there, not
// corruption, and every batch synced before it survives.
TEST(WalTest, HolesInTheUnsyncedEndAreATornTail) {
  int cut_before_kept_records = 0;  // crashes that left records past a hole
  for (uint64_t seed = 0; seed < 30; ++seed) {
    std::unique_ptr<FaultEnv> env = NewEnv();
    InfluencerStore mirror;
    std::mt19937_64 random(seed);
    // The mirror's rows after each batch; [synced] is the last synced.
    std::vector<std::map<std::string, std::vector<std::string>>> after = {
        Rows(mirror)};
    size_t synced = 0;
    {
      LogOptions options = Options(env.get());
      options.durability = Durability::kAsync;
      options.async_interval_millis = 3600 * 1000;  // no sync but these
      absl::StatusOr<DurableStore> durable =
          OpenDurableStore(options, false, {});
      ASSERT_TRUE(durable.ok()) << durable.status();
      for (int round = 0; round < 3; ++round) {
        for (int b = 0; b < 80; ++b) {
          Drive(*durable->store, mirror, random, 1);
          after.push_back(Rows(mirror));
        }
        if (round < 2) {
          ASSERT_TRUE(durable->log->Sync().ok());
          synced = after.size() - 1;
        }
      }
      durable->store.reset();
      durable->log.reset();
    }
    env->Crash(/*torn=*/true, seed, /*holes=*/true);
    absl::StatusOr<DurableStore> reopened = Open(env.get(), 64 << 20);
    ASSERT_TRUE(reopened.ok()) << "seed " << seed << ": " << reopened.status();
    const auto rows = Rows(*reopened->store);
    size_t found = after.size();
    for (size_t j = synced; j < after.size(); ++j) {
      if (after[j] == rows) found = j;
    }
    ASSERT_LT(found, after.size())
        << "seed " << seed << ": not a state after a synced batch";
    if (reopened->scan.torn.find("no record after it") != std::string::npos) {
      ++cut_before_kept_records;
      // What the cut dropped is kept.
      EXPECT_THAT(reopened->scan.torn, HasSubstr(" bytes cut off (from offset "));
      absl::StatusOr<std::vector<std::string>> names = env->ListDir(kDir);
      ASSERT_TRUE(names.ok());
      EXPECT_TRUE(std::any_of(names->begin(), names->end(),
                              [](const std::string& name) {
                                return name.find(".torn") != std::string::npos;
                              }));
    }
  }
  // Most crashes lose a page with later ones kept.
  EXPECT_GT(cut_before_kept_records, 10);
}

// Damage to a record that was synced, in the segment being written, is
// corruption when a record after it says so (written after the sync).
TEST(WalTest, DamageBeforeTheLastSyncIsCorruptionInTheLastSegment) {
  InfluencerStore mirror;
  std::unique_ptr<FaultEnv> env = LogOf(6, 8, mirror);
  const std::string segment = JoinPath(kDir, "wal-00000000000000000001.log");
  // The second record's batch (16-byte file header, 24-byte record
  // headers).
  const std::string bytes = env->Contents(segment);
  uint32_t first_length;
  std::memcpy(&first_length, bytes.data() + 16 + 4, 4);
  const uint64_t second = 16 + 24 + first_length;
  env->FlipBit(segment, second + 24, 5);
  absl::StatusOr<DurableStore> refused = Open(env.get(), 64 << 20);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(absl::StrCat("corrupted at offset ", second,
                                     ": checksum mismatch")));
  // A length field damaged to run past the end of the file (as a torn
  // record's would): refused, since later records say it was synced.
  env->FlipBit(segment, second + 24, 5);
  env->FlipBit(segment, second + 7, 6);  // bit 30 of the length
  refused = Open(env.get(), 64 << 20);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(ErrorTypeOf(refused.status()), "translog_corrupted_exception");
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(absl::StrCat(
                  "corrupted at offset ", second,
                  ": the record's length field is damaged (a later record "
                  "says the log was synced past it)")));
  env->FlipBit(segment, second + 7, 6);
  // Its length damaged to end exactly at the end of the file: not a torn
  // last record, since the records after it say they were synced past it.
  uint32_t length;
  std::memcpy(&length, bytes.data() + second + 4, 4);
  const uint32_t to_end = static_cast<uint32_t>(bytes.size() - second - 24);
  for (int bit = 0; bit < 32; ++bit) {
    if (((length ^ to_end) >> bit) & 1) {
      env->FlipBit(segment, second + 4 + bit / 8, bit % 8);
    }
  }
  refused = Open(env.get(), 64 << 20);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(absl::StrCat("corrupted at offset ", second,
                                     ": checksum mismatch")));
}

// A record of an older log left in the file by a crash (a good checksum,
// an old generation) does not vouch for a sync past damage before it.
TEST(WalTest, AStaleRecordDoesNotMakeACrashCorruption) {
  InfluencerStore mirror;
  std::unique_ptr<FaultEnv> env = LogOf(3, 9, mirror);
  const std::string segment = JoinPath(kDir, "wal-00000000000000000001.log");
  std::string bytes = env->Contents(segment);
  // A lost page (zeros) where a fourth record was, then a stale record of
  // generation 1 claiming a sync past the hole.
  const uint64_t hole = bytes.size();
  bytes.append(100, '\0');
  std::string stale(24, '\0');
  const uint32_t length = 0;
  const uint64_t generation = 1;
  const uint64_t synced = hole + 1;
  std::memcpy(stale.data() + 4, &length, 4);
  std::memcpy(stale.data() + 8, &generation, 8);
  std::memcpy(stale.data() + 16, &synced, 8);
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(stale.data() + 4), 20));
  std::memcpy(stale.data(), &crc, 4);
  bytes += stale;
  ASSERT_TRUE(env->WriteFile(segment, bytes).ok());
  absl::StatusOr<DurableStore> reopened = Open(env.get(), 64 << 20);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(Rows(*reopened->store), Rows(mirror));
  EXPECT_THAT(reopened->scan.torn, HasSubstr(absl::StrCat("offset ", hole)));
  reopened->store.reset();
  reopened->log.reset();
  // The same in a segment just started (generation 4 on), whose first
  // record is lost: the stale one is older than the segment's name says.
  const std::string fresh = JoinPath(kDir, "wal-00000000000000000004.log");
  std::string started = env->Contents(fresh);
  ASSERT_EQ(started.size(), 16u);  // the header the reopened log wrote
  started.append(100, '\0');
  const uint64_t claim = 17;
  std::memcpy(stale.data() + 16, &claim, 8);
  const uint32_t crc2 = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(stale.data() + 4), 20));
  std::memcpy(stale.data(), &crc2, 4);
  started += stale;
  ASSERT_TRUE(env->WriteFile(fresh, started).ok());
  reopened = Open(env.get(), 64 << 20);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(Rows(*reopened->store), Rows(mirror));
  EXPECT_THAT(reopened->scan.torn, HasSubstr(fresh));
}

TEST(WalTest, CorruptionIsRefusedOrSetAsideOnRequest) {
  std::unique_ptr<FaultEnv> env = NewEnv();
  InfluencerStore mirror;
  std::mt19937_64 random(11);
  std::vector<std::map<std::string, std::vector<std::string>>> after;
  {
    // One record per segment.
    absl::StatusOr<DurableStore> durable = Open(env.get(), 1);
    ASSERT_TRUE(durable.ok());
    for (int b = 0; b < 4; ++b) {
      Drive(*durable->store, mirror, random, 1);
      after.push_back(Rows(mirror));
    }
  }
  // A flipped bit in the third record (the batch, past the headers).
  const std::string third = JoinPath(kDir, "wal-00000000000000000003.log");
  env->FlipBit(third, 40, 3);
  absl::StatusOr<DurableStore> refused = Open(env.get(), 1);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(ErrorTypeOf(refused.status()), "translog_corrupted_exception");
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(absl::StrCat("[", third, "] is corrupted at offset 16: "
                                     "checksum mismatch")));
  // Still refused: nothing was changed by the refusal.
  ASSERT_FALSE(Open(env.get(), 1).ok());

  absl::StatusOr<DurableStore> skipped = Open(env.get(), 1, true);
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_THAT(skipped->scan.skipped, HasSubstr("checksum mismatch"));
  EXPECT_THAT(skipped->scan.skipped, HasSubstr(third + ".corrupt"));
  EXPECT_EQ(Rows(*skipped->store), after[1]);  // the first two batches
  EXPECT_NE(env->Contents(third + ".corrupt"), "");
  // Writes go on from there, and survive a restart without a gap.
  InfluencerStore rebuilt;
  ASSERT_TRUE(ReplayLog(Options(env.get()), skipped->scan, 0,
                        [&](uint64_t, MutationBatch batch) {
                          return rebuilt.Apply(std::move(batch)).status();
                        })
                  .ok());
  Drive(*skipped->store, rebuilt, random, 3);
  skipped->store.reset();
  env->Crash(false, 2);
  absl::StatusOr<DurableStore> reopened = Open(env.get(), 1);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(Rows(*reopened->store), Rows(rebuilt));
}

TEST(WalTest, SettingCorruptionAsideIsDurableOnItsOwn) {
  std::unique_ptr<FaultEnv> env = NewEnv();
  InfluencerStore mirror;
  std::mt19937_64 random(13);
  std::vector<std::map<std::string, std::vector<std::string>>> after;
  {
    // Records 1-3 in the first segment, 4 and 5 in later ones.
    LogOptions options = Options(env.get(), 64 << 20);
    absl::StatusOr<DurableStore> durable = OpenDurableStore(options, false, {});
    ASSERT_TRUE(durable.ok());
    for (int b = 0; b < 3; ++b) {
      Drive(*durable->store, mirror, random, 1);
      after.push_back(Rows(mirror));
    }
  }
  {
    absl::StatusOr<DurableStore> durable = Open(env.get(), 1);
    ASSERT_TRUE(durable.ok());
    Drive(*durable->store, mirror, random, 2);
  }
  // Damage the second record of the first segment.
  const std::string first = JoinPath(kDir, "wal-00000000000000000001.log");
  const std::string data = env->Contents(first);
  const uint64_t second_record =
      16 + 24 + *reinterpret_cast<const uint32_t*>(data.data() + 16 + 4);
  env->FlipBit(first, second_record + 28, 0);
  absl::StatusOr<LogScan> scan = ScanLog(Options(env.get()), true);
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_EQ(scan->last_generation, 1u);
  // The repair (the segment cut after record 1, later segments renamed)
  // must survive a crash by itself.
  env->Crash(false, 3);
  absl::StatusOr<DurableStore> reopened = Open(env.get(), 64 << 20);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(Rows(*reopened->store), after[0]);
  InfluencerStore rebuilt;
  ASSERT_TRUE(rebuilt.Apply(*DecodeMutationBatch([&] {
    // Generation 1's batch, from the log itself.
    std::string bytes;
    ReplayLog(Options(env.get()), reopened->scan, 0,
              [&](uint64_t, MutationBatch batch) {
                EncodeMutationBatch(batch, &bytes);
                return absl::OkStatus();
              })
        .IgnoreError();
    return bytes;
  }())).ok());
  Drive(*reopened->store, rebuilt, random, 2);
  reopened->store.reset();
  env->Crash(false, 4);
  absl::StatusOr<DurableStore> again = Open(env.get(), 64 << 20);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(Rows(*again->store), Rows(rebuilt));
}

TEST(WalTest, AFullDiskFailsTheWriteAndLeavesStoreAndLogAsTheyWere) {
  std::unique_ptr<FaultEnv> env = NewEnv();
  InfluencerStore mirror;
  std::mt19937_64 random(3);
  absl::StatusOr<DurableStore> durable = Open(env.get(), 64 << 20);
  ASSERT_TRUE(durable.ok());
  Drive(*durable->store, mirror, random, 3);
  const auto before = Rows(*durable->store);
  const uint64_t generation = durable->store->Current()->generation;
  env->SetSpaceLeft(10);  // a short write, then ENOSPC
  MutationBatch batch(MutationMode::kBulk);
  batch.AddInfluencer("a", Row("full", 5000, 1));
  absl::StatusOr<MutationResult> failed = durable->store->Apply(std::move(batch));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(HttpStatusOf(failed.status()), 429);
  EXPECT_EQ(ErrorTypeOf(failed.status()), "cluster_block_exception");
  EXPECT_THAT(std::string(failed.status().message()),
              HasSubstr("No space left on device"));
  EXPECT_EQ(Rows(*durable->store), before);
  EXPECT_EQ(durable->store->Current()->generation, generation);
  // Space comes back: writes go on, and the log holds no trace of the
  // failed one.
  env->SetSpaceLeft(-1);
  Drive(*durable->store, mirror, random, 2);
  durable->store.reset();
  env->Crash(false, 4);
  absl::StatusOr<DurableStore> reopened = Open(env.get(), 64 << 20);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(Rows(*reopened->store), Rows(mirror));
}

TEST(WalTest, AFailedSyncFailsTheWriteAndEveryLaterOne) {
  std::unique_ptr<FaultEnv> env = NewEnv();
  InfluencerStore mirror;
  std::mt19937_64 random(5);
  absl::StatusOr<DurableStore> durable = Open(env.get(), 64 << 20);
  ASSERT_TRUE(durable.ok());
  Drive(*durable->store, mirror, random, 3);
  const auto before = Rows(*durable->store);
  env->SetSyncFails(true);
  MutationBatch batch(MutationMode::kBulk);
  batch.AddInfluencer("a", Row("unsynced", 5000, 1));
  absl::StatusOr<MutationResult> failed = durable->store->Apply(std::move(batch));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(HttpStatusOf(failed.status()), 500);
  EXPECT_EQ(ErrorTypeOf(failed.status()), "translog_exception");
  EXPECT_EQ(Rows(*durable->store), before);  // queries go on, unchanged
  env->SetSyncFails(false);
  MutationBatch later(MutationMode::kBulk);
  later.AddInfluencer("a", Row("later", 6000, 1));
  EXPECT_FALSE(durable->store->Apply(std::move(later)).ok());
  EXPECT_EQ(Rows(*durable->store), before);
  durable->store.reset();
  env->Crash(true, 6);
  absl::StatusOr<DurableStore> reopened = Open(env.get(), 64 << 20);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  // The acknowledged batches are there; the failed one may be (it was
  // written, never acknowledged), the refused one is not.
  auto rows = Rows(*reopened->store);
  EXPECT_THAT(rows["a"], ::testing::Not(::testing::Contains(HasSubstr("later"))));
  EXPECT_GE(reopened->store->Current()->generation,
            mirror.Current()->generation);
}

TEST(WalTest, DroppedSegmentsStayDroppedAndTheRestReplays) {
  std::unique_ptr<FaultEnv> env = NewEnv();
  InfluencerStore mirror;
  std::mt19937_64 random(9);
  absl::StatusOr<DurableStore> durable = Open(env.get(), 1);
  ASSERT_TRUE(durable.ok());
  Drive(*durable->store, mirror, random, 6);
  EXPECT_EQ(durable->log->stats().segments, 6u);  // one record each
  ASSERT_TRUE(durable->log->DropThrough(4).ok());
  EXPECT_EQ(durable->log->stats().segments, 2u);
  durable->store.reset();
  env->Crash(false, 8);
  absl::StatusOr<LogScan> scan = ScanLog(Options(env.get()), false);
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_EQ(scan->first_generation, 5u);
  EXPECT_EQ(scan->last_generation, 6u);
  // Without what generations 1-4 held (a snapshot's job), replay refuses.
  EXPECT_FALSE(ReplayLog(Options(env.get()), *scan, 0,
                         [](uint64_t, MutationBatch) { return absl::OkStatus(); })
                   .ok());
  EXPECT_TRUE(ReplayLog(Options(env.get()), *scan, 4,
                        [](uint64_t, MutationBatch) { return absl::OkStatus(); })
                  .ok());
}

// Damage in a segment a snapshot covers (a crash between a snapshot and
// the removal of the segments it covers) neither stops the start nor, under
// skip_corrupt, sets aside the later segments that hold acknowledged
// writes. A second damaged copy never replaces the first.
TEST(WalTest, DamageTheSnapshotCoversIsIgnored) {
  std::unique_ptr<FaultEnv> env = NewEnv();
  InfluencerStore mirror;
  std::mt19937_64 random(21);
  const std::string second = JoinPath(kDir, "wal-00000000000000000002.log");
  // Five batches, a record a segment; the version after the second stands
  // for a snapshot of generation 2, which covers segments 1 and 2.
  std::shared_ptr<const StoreVersion> at_two;
  {
    absl::StatusOr<DurableStore> durable = Open(env.get(), 1);
    ASSERT_TRUE(durable.ok());
    for (int b = 0; b < 5; ++b) {
      Drive(*durable->store, mirror, random, 1);
      if (b == 1) at_two = durable->store->Current();
    }
  }
  ASSERT_EQ(at_two->generation, 2u);
  env->FlipBit(second, 40, 1);
  // Without the snapshot the damage is refused ...
  ASSERT_FALSE(Open(env.get(), 1).ok());
  // ... with it, it is noted and everything after it replays.
  absl::StatusOr<DurableStore> reopened =
      OpenDurableStore(Options(env.get(), 1), false, {}, at_two);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_THAT(reopened->scan.ignored, HasSubstr("checksum mismatch"));
  EXPECT_THAT(reopened->scan.ignored, HasSubstr(second));
  EXPECT_EQ(reopened->scan.skipped, "");
  EXPECT_EQ(Rows(*reopened->store), Rows(mirror));
  reopened->store.reset();
  reopened->log.reset();
  // Damage past the snapshot is still corruption; set aside twice, the
  // copies take distinct names.
  const std::string fourth = JoinPath(kDir, "wal-00000000000000000004.log");
  ASSERT_TRUE(env->WriteFile(fourth + ".corrupt", "an earlier copy").ok());
  env->FlipBit(fourth, 40, 1);
  ASSERT_FALSE(OpenDurableStore(Options(env.get(), 1), false, {}, at_two).ok());
  absl::StatusOr<DurableStore> skipped =
      OpenDurableStore(Options(env.get(), 1), true, {}, at_two);
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(env->Contents(fourth + ".corrupt"), "an earlier copy");
  EXPECT_NE(env->Contents(fourth + ".corrupt.1"), "");
  EXPECT_THAT(skipped->scan.skipped, HasSubstr(fourth + ".corrupt.1"));
}

// A `_bulk` batch that writes few identities many times: upserts (of
// values that change, and of the same document again), creates, deletes by
// _id (with colliding values "Aa" and "BB"), job deletions and
// replacements, failed items and documents of other result types.
MutationBatch ChurnBatch(std::mt19937_64& random) {
  MutationBatch batch(MutationMode::kBulk);
  const int ops = static_cast<int>(random() % 30);
  for (int i = 0; i < ops; ++i) {
    const std::string job = random() % 4 == 0 ? "b" : "a";
    constexpr const char* kValues[] = {"Aa", "BB", "h1", "h2"};
    InfluencerFields row = Row(kValues[random() % 4], 1000 * (random() % 2),
                               static_cast<double>(random() % 3));
    const int kind = static_cast<int>(random() % 100);
    if (kind < 60) {
      batch.AddInfluencer(job, row);
    } else if (kind < 70) {
      batch.CreateInfluencer(job, row);
    } else if (kind < 85) {
      batch.DeleteInfluencer(
          *ParseInfluencerResultId(InfluencerDocumentId(job, row)));
    } else if (kind < 88) {
      batch.DeleteJob(job);
    } else if (kind < 91) {
      batch.ReplaceJob(job);
    } else if (kind < 94) {
      batch.AddError(EsError(400, "mapper_parsing_exception", "bad"));
    } else if (kind < 97) {
      batch.AddOtherResult(job, absl::StrCat(job, "_bucket_", random() % 2));
    } else {
      batch.DeleteOtherResult(absl::StrCat(job, "_bucket_", random() % 2));
    }
  }
  return batch;
}

// Recovery coalesces the log's `_bulk` batches into commits of up to
// LogOptions::replay_commit_operations operations: whatever that bound,
// the store it recovers is the one that applying every batch in turn
// builds (rows and their order, _version, generation, next _seq_no), with
// an identity written many times, deleted and written again, and its job
// deleted or replaced in between, within one commit.
TEST(WalTest, RecoveryInCommitsOfAnySizeMatchesOneBatchAtATime) {
  for (size_t commit : {size_t{1}, size_t{7}, size_t{100}, size_t{1} << 23}) {
    for (int seed = 0; seed < 20; ++seed) {
      SCOPED_TRACE(absl::StrCat("commit ", commit, " seed ", seed));
      std::mt19937_64 random(seed);
      std::unique_ptr<FaultEnv> env = NewEnv();
      InfluencerStore mirror;  // each batch applied on its own
      {
        absl::StatusOr<DurableStore> durable = Open(env.get(), 4096);
        ASSERT_TRUE(durable.ok()) << durable.status();
        const int batches = 1 + static_cast<int>(random() % 80);
        for (int b = 0; b < batches; ++b) {
          // Now and then a load batch, which is a commit of its own.
          MutationBatch batch = random() % 10 == 0 ? RandomBatch(random)
                                                   : ChurnBatch(random);
          std::string encoded;
          EncodeMutationBatch(batch, &encoded);
          absl::StatusOr<MutationResult> applied =
              durable->store->Apply(std::move(batch));
          absl::StatusOr<MutationResult> mirrored =
              mirror.Apply(*DecodeMutationBatch(encoded));
          ASSERT_EQ(applied.ok(), mirrored.ok());
        }
        ASSERT_EQ(durable->store->Current()->generation,
                  mirror.Current()->generation);
        ASSERT_EQ(Rows(*durable->store), Rows(mirror));
      }
      env->Crash(false, seed);
      LogOptions options = Options(env.get(), 4096);
      options.replay_commit_operations = commit;
      absl::StatusOr<DurableStore> recovered =
          OpenDurableStore(options, false, {});
      ASSERT_TRUE(recovered.ok()) << recovered.status();
      EXPECT_EQ(Rows(*recovered->store), Rows(mirror));
      EXPECT_EQ(recovered->store->Current()->generation,
                mirror.Current()->generation);
      EXPECT_EQ(recovered->store->Current()->next_seq_no,
                mirror.Current()->next_seq_no);
      // The recovered store goes on as the mirror does.
      MutationBatch more = ChurnBatch(random);
      std::string encoded;
      EncodeMutationBatch(more, &encoded);
      absl::StatusOr<MutationResult> a = recovered->store->Apply(std::move(more));
      absl::StatusOr<MutationResult> b = mirror.Apply(*DecodeMutationBatch(encoded));
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_EQ(a->first_seq_no, b->first_seq_no);
      ASSERT_EQ(a->items.size(), b->items.size());
      for (size_t i = 0; i < a->items.size(); ++i) {
        EXPECT_EQ(a->items[i].version, b->items[i].version) << i;
        EXPECT_EQ(a->items[i].seq_no, b->items[i].seq_no) << i;
        EXPECT_EQ(a->items[i].outcome, b->items[i].outcome) << i;
      }
      EXPECT_EQ(Rows(*recovered->store), Rows(mirror));
    }
  }
}

TEST(WalTest, AsyncDurabilityAcknowledgesBeforeTheSync) {
  std::unique_ptr<FaultEnv> env = NewEnv();
  LogOptions options = Options(env.get());
  options.durability = Durability::kAsync;
  options.async_interval_millis = 5;
  absl::StatusOr<DurableStore> durable = OpenDurableStore(options, false, {});
  ASSERT_TRUE(durable.ok());
  MutationBatch batch(MutationMode::kBulk);
  batch.AddInfluencer("a", Row("x", 0, 1));
  ASSERT_TRUE(durable->store->Apply(std::move(batch)).ok());
  // Counted after the write: FaultEnv takes a sync's copy and counts it
  // under one lock, so a sync counted later copied the file after the
  // append and covers it. (Counted before, the background sync of the new
  // segment's header could pass for it: the test then crashed before the
  // batch was synced, a flake under TSan.)
  const int64_t syncs = env->syncs();
  // The background thread syncs it soon (bounded wait).
  for (int i = 0; i < 2000 && env->syncs() == syncs; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GT(env->syncs(), syncs);
  durable->store.reset();
  durable->log.reset();
  env->Crash(false, 1);
  absl::StatusOr<DurableStore> reopened = Open(env.get(), 64 << 20);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(reopened->store->Current()->generation, 1u);
}

TEST(WalTest, AppendsDoNotWaitForABackgroundSync) {
  std::unique_ptr<FaultEnv> env = NewEnv();
  LogOptions options = Options(env.get());
  options.durability = Durability::kAsync;
  options.async_interval_millis = 1;
  absl::StatusOr<DurableStore> durable = OpenDurableStore(options, false, {});
  ASSERT_TRUE(durable.ok());
  // The next background sync (of the first batch, at the latest) blocks
  // on the disk until released.
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> once{false};
  env->SetSyncHook([&, released] {
    if (!once.exchange(true)) {
      entered.set_value();
      released.wait();
    }
  });
  MutationBatch first(MutationMode::kBulk);
  first.AddInfluencer("a", Row("x", 0, 1));
  ASSERT_TRUE(durable->store->Apply(std::move(first)).ok());
  // A sync is under way (bounded wait).
  if (entered.get_future().wait_for(std::chrono::seconds(10)) !=
      std::future_status::ready) {
    release.set_value();
    env->SetSyncHook(nullptr);
    FAIL() << "no background sync started";
  }
  MutationBatch second(MutationMode::kBulk);
  second.AddInfluencer("a", Row("y", 0, 1));
  std::future<absl::StatusOr<MutationResult>> applied =
      durable->store->Submit(std::move(second));
  // The write is acknowledged while the sync still waits (bounded).
  const bool acknowledged =
      applied.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  release.set_value();
  env->SetSyncHook(nullptr);
  ASSERT_TRUE(acknowledged) << "the append waited for the sync";
  ASSERT_TRUE(applied.get().ok());
  // And a clean shutdown's sync makes both durable.
  ASSERT_TRUE(durable->log->Sync().ok());
  durable->store.reset();
  durable->log.reset();
  env->Crash(false, 1);
  absl::StatusOr<DurableStore> reopened = Open(env.get(), 64 << 20);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ(reopened->store->Current()->generation, 2u);
}

TEST(WalTest, ASegmentFromAnotherFormatVersionIsRefused) {
  std::unique_ptr<FaultEnv> env = NewEnv();
  std::string header = "CLOUTWAL";
  header += std::string("\x09\x00\x00\x00\x00\x00\x00\x00", 8);
  ASSERT_TRUE(env->WriteFile(JoinPath(kDir, "wal-00000000000000000001.log"),
                             header)
                  .ok());
  absl::StatusOr<DurableStore> refused = Open(env.get(), 64 << 20);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("log format version 9 (this build reads versions 1 to 2)"));
}

}  // namespace
}  // namespace clout
