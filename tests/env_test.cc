// The POSIX Env on a real directory: the large-write file (O_DIRECT in
// aligned blocks, a tail through the page cache) against plain appends.
#include "storage/env.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace clout {
namespace {

using ::testing::HasSubstr;

std::string TempPath(absl::string_view name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return JoinPath(tmp != nullptr ? tmp : "/tmp", name);
}

std::string RandomBytes(size_t n, std::mt19937_64& random) {
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>(random());
  return bytes;
}

// Every size around the 4 KiB blocks and the 2 MiB buffer, appended in
// random pieces (a byte up to more than the buffer): the file holds
// exactly the bytes, and size() follows every append.
TEST(EnvTest, LargeWritesHoldExactlyTheBytesAppended) {
  Env* env = Env::Default();
  const std::string path = TempPath("large.bin");
  std::mt19937_64 random(7);
  for (size_t size : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096},
                      size_t{4097}, size_t{(2 << 20) - 1}, size_t{2 << 20},
                      size_t{(2 << 20) + 1}, size_t{(5 << 20) + 123}}) {
    SCOPED_TRACE(absl::StrCat("size ", size));
    const std::string bytes = RandomBytes(size, random);
    // A file there already is replaced, not appended to.
    ASSERT_TRUE(env->WriteFile(path, std::string(9000, 'z')).ok());
    absl::StatusOr<std::unique_ptr<WritableFile>> file =
        env->CreateForLargeWrite(path);
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ((*file)->size(), 0u);
    size_t at = 0;
    while (at < size) {
      const size_t n = std::min<size_t>(
          size - at, 1 + random() % (random() % 2 ? 100 : 3 << 20));
      ASSERT_TRUE((*file)->Append(absl::string_view(bytes).substr(at, n)).ok());
      at += n;
      ASSERT_EQ((*file)->size(), at);
    }
    ASSERT_TRUE((*file)->Sync().ok());
    absl::StatusOr<std::string> read = env->ReadFile(path);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_TRUE(*read == bytes) << "read " << read->size() << " bytes";
    // Appends after a Sync go on where it ended.
    ASSERT_TRUE((*file)->Append("after").ok());
    ASSERT_TRUE((*file)->Sync().ok());
    EXPECT_TRUE(*env->ReadFile(path) == bytes + "after");
  }
  env->Remove(path).IgnoreError();
}

// Truncate (undoing a failed append) and the destructor (bytes appended
// but never synced still reach the file, as with plain appends).
TEST(EnvTest, LargeWritesTruncateAndFlushOnClose) {
  Env* env = Env::Default();
  const std::string path = TempPath("truncated.bin");
  std::mt19937_64 random(11);
  const std::string bytes = RandomBytes((3 << 20) + 777, random);
  {
    absl::StatusOr<std::unique_ptr<WritableFile>> file =
        env->CreateForLargeWrite(path);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Append(bytes).ok());
    ASSERT_TRUE((*file)->Truncate(1000001).ok());
    EXPECT_EQ((*file)->size(), 1000001u);
    ASSERT_TRUE((*file)->Append(bytes.substr(0, 5000)).ok());
  }
  absl::StatusOr<std::string> read = env->ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(*read == bytes.substr(0, 1000001) + bytes.substr(0, 5000));
  env->Remove(path).IgnoreError();
}

// Pages of the file at `path` (its first `size` bytes) in the page cache.
size_t CachedPages(const std::string& path, size_t size) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return SIZE_MAX;
  void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return SIZE_MAX;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((size + page - 1) / page);
  size_t cached = SIZE_MAX;
  if (mincore(map, size, resident.data()) == 0) {
    cached = 0;
    for (unsigned char p : resident) cached += p & 1;
  }
  munmap(map, size);
  return cached;
}

// Whether a block written with O_DIRECT in `dir` stays out of the page
// cache (ext4, xfs; not tmpfs, overlays of it, or file systems that
// emulate O_DIRECT through the cache).
bool DirectWritesBypassTheCache(const std::string& dir) {
  const std::string path = JoinPath(dir, "probe.bin");
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT,
                      0644);
  if (fd < 0) return false;
  void* block = std::aligned_alloc(65536, 65536);
  std::memset(block, 'p', 65536);
  const bool wrote = write(fd, block, 65536) == 65536 && fdatasync(fd) == 0;
  std::free(block);
  close(fd);
  const bool bypassed = wrote && CachedPages(path, 65536) == 0;
  unlink(path.c_str());
  return bypassed;
}

// Where the file system honours O_DIRECT, the written blocks never enter
// the page cache, those Sync writes from a part-filled buffer included:
// only the tail written through it may be resident.
TEST(EnvTest, LargeWritesGoAroundThePageCache) {
  const std::string path = TempPath("direct.bin");
  if (!DirectWritesBypassTheCache(path.substr(0, path.rfind('/')))) {
    GTEST_SKIP() << "this file system does not keep O_DIRECT writes out of "
                    "the page cache";
  }
  Env* env = Env::Default();
  std::mt19937_64 random(13);
  const size_t size = (5 << 20) + 100;  // 2 full buffers, 1 MiB, a tail
  {
    absl::StatusOr<std::unique_ptr<WritableFile>> file =
        env->CreateForLargeWrite(path);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Append(RandomBytes(size, random)).ok());
    ASSERT_TRUE((*file)->Sync().ok());
  }
  EXPECT_LE(CachedPages(path, size), 1u);
  env->Remove(path).IgnoreError();
}

// A write that fails part-way (the file-size limit standing in for a full
// disk: a short write, then EFBIG) loses nothing it counts: size() says
// which prefix the file holds, part of it still in the buffer, and once
// the limit is lifted the file takes the rest exactly. Truncate back into
// the unwritten bytes does no I/O.
TEST(EnvTest, LargeWritesResumeExactlyAfterAFailedWrite) {
  Env* env = Env::Default();
  const std::string path = TempPath("limited.bin");
  std::mt19937_64 random(17);
  const std::string bytes = RandomBytes(5 << 20, random);
  struct rlimit before;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &before), 0);
  void (*previous)(int) = signal(SIGXFSZ, SIG_IGN);
  struct rlimit limited = before;
  limited.rlim_cur = (3 << 20) + 512;  // a short write, not whole blocks
  absl::StatusOr<std::unique_ptr<WritableFile>> file =
      env->CreateForLargeWrite(path);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);
  absl::Status failed = (*file)->Append(bytes);
  if (failed.ok()) failed = (*file)->Sync();
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &before), 0);
  signal(SIGXFSZ, previous);
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(std::string(failed.message()), HasSubstr(path));
  const uint64_t held = (*file)->size();
  EXPECT_GT(held, limited.rlim_cur);  // the failed write's bytes, buffered
  ASSERT_LT(held, bytes.size());
  // Undo 100 bytes (within what the failure left unwritten), then go on.
  ASSERT_TRUE((*file)->Truncate(held - 100).ok());
  EXPECT_EQ((*file)->size(), held - 100);
  ASSERT_TRUE((*file)->Append(absl::string_view(bytes).substr(held - 100)).ok());
  ASSERT_TRUE((*file)->Sync().ok());
  absl::StatusOr<std::string> read = env->ReadFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(*read == bytes) << "read " << read->size() << " bytes";
  file->reset();
  env->Remove(path).IgnoreError();
}

// Errors name the path, and a full disk is kResourceExhausted (surfacing
// at Append or at Sync, whichever writes).
TEST(EnvTest, LargeWriteErrorsNameThePath) {
  Env* env = Env::Default();
  absl::StatusOr<std::unique_ptr<WritableFile>> missing =
      env->CreateForLargeWrite(TempPath("no/such/dir/file"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("no/such/dir/file"));
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  absl::StatusOr<std::unique_ptr<WritableFile>> full =
      env->CreateForLargeWrite("/dev/full");
  ASSERT_TRUE(full.ok()) << full.status();
  absl::Status s = (*full)->Append(std::string(3 << 20, 'x'));
  if (s.ok()) s = (*full)->Sync();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("/dev/full"));
}

}  // namespace
}  // namespace clout
