// The POSIX Env on a real directory: the large-write file (O_DIRECT in
// aligned blocks, a tail through the page cache) against plain appends.
#include "storage/env.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdlib>
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

// Where the file system takes O_DIRECT (ext4, xfs: not tmpfs), the
// written blocks never enter the page cache: only the tail written through
// it may be resident.
TEST(EnvTest, LargeWritesGoAroundThePageCache) {
  const std::string path = TempPath("direct.bin");
  struct statfs fs;
  ASSERT_EQ(statfs(path.substr(0, path.rfind('/')).c_str(), &fs), 0);
  constexpr long kTmpfs = 0x01021994;
  if (fs.f_type == kTmpfs) GTEST_SKIP() << "tmpfs has no O_DIRECT to check";
  Env* env = Env::Default();
  std::mt19937_64 random(13);
  const size_t size = (4 << 20) + 100;
  {
    absl::StatusOr<std::unique_ptr<WritableFile>> file =
        env->CreateForLargeWrite(path);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE((*file)->Append(RandomBytes(size, random)).ok());
    ASSERT_TRUE((*file)->Sync().ok());
  }
  const int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(map, MAP_FAILED);
  const size_t pages = (size + 4095) / 4096;
  std::vector<unsigned char> resident(pages);
  ASSERT_EQ(mincore(map, size, resident.data()), 0);
  size_t cached = 0;
  for (unsigned char page : resident) cached += page & 1;
  EXPECT_LE(cached, 1u) << "of " << pages << " pages";
  munmap(map, size);
  close(fd);
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
