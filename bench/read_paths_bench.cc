// How fast can a snapshot file's bytes be checked and made columns? The
// ways of reading a file already in the page cache, each timed on its own
// (medians of --runs), so that the snapshot-open figure of bench/README.md
// can be split into what the reader does and what this machine charges
// for memory touched for the first time.
//
//   bazel run --config=opt //bench:read_paths_bench -- --file=SNAPSHOT [--runs=5]
//
// 1. map + XXH3: a fresh read-only mapping, hashed (the reader's check);
// 2. XXH3 again over the same mapping (its pages now mapped);
// 3. pread + XXH3: 1 MiB pieces into one reused buffer, hashed as a stream;
// 4. copy into fresh column memory (the reader's copy of each column);
// 5. copy into column memory touched before (the copy without first touch);
// 6. pread the whole file into fresh column memory (huge pages), then XXH3
//    over it: what Env::MapFile does.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "engine/columns.h"

ABSL_FLAG(std::string, file, "", "a file to read (a snapshot), warm in the page cache");
ABSL_FLAG(int, runs, 5, "runs of each way; the median is reported");

namespace {

double Seconds(const std::function<void()>& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

double Median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  return xs[xs.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string path = absl::GetFlag(FLAGS_file);
  const int runs = std::max(1, absl::GetFlag(FLAGS_runs));
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
    std::fprintf(stderr, "read_paths_bench: cannot read --file=%s\n", path.c_str());
    return 2;
  }
  const size_t size = static_cast<size_t>(st.st_size);
  volatile uint64_t sink = 0;
  std::vector<double> mapped, remapped, streamed, fresh_copy, warm_copy, loaded;
  clout::Column<char> reused(size);
  std::memset(reused.data(), 1, size);
  for (int r = 0; r < runs; ++r) {
    void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) return 2;
    const char* bytes = static_cast<const char*>(map);
    mapped.push_back(Seconds([&] { sink = sink + XXH3_64bits(bytes, size); }));
    remapped.push_back(Seconds([&] { sink = sink + XXH3_64bits(bytes, size); }));
    fresh_copy.push_back(Seconds([&] {
      clout::Column<char> column(size);
      std::memcpy(column.data(), bytes, size);
      sink = sink + static_cast<uint64_t>(column[size / 2]);
    }));
    warm_copy.push_back(Seconds([&] {
      std::memcpy(reused.data(), bytes, size);
      sink = sink + static_cast<uint64_t>(reused[size / 2]);
    }));
    munmap(map, size);
    loaded.push_back(Seconds([&] {
      clout::Column<char> column(size);
      for (size_t at = 0; at < size;) {
        const ssize_t n = pread(fd, column.data() + at,
                                std::min<size_t>(size - at, size_t{8} << 20),
                                static_cast<off_t>(at));
        if (n <= 0) break;
        at += static_cast<size_t>(n);
      }
      sink = sink + XXH3_64bits(column.data(), size);
    }));
    streamed.push_back(Seconds([&] {
      std::vector<char> buffer(size_t{1} << 20);
      XXH3_state_t* state = XXH3_createState();
      XXH3_64bits_reset(state);
      for (size_t at = 0; at < size;) {
        const ssize_t n = pread(fd, buffer.data(), buffer.size(),
                                static_cast<off_t>(at));
        if (n <= 0) break;
        XXH3_64bits_update(state, buffer.data(), static_cast<size_t>(n));
        at += static_cast<size_t>(n);
      }
      sink = sink + XXH3_64bits_digest(state);
      XXH3_freeState(state);
    }));
  }
  close(fd);
  const double mb = static_cast<double>(size) / 1e6;
  std::printf("%-54s %8s %8s\n", "way (medians)", "seconds", "MB/s");
  auto row = [&](const char* name, const std::vector<double>& xs) {
    std::printf("%-54s %8.3f %8.0f\n", name, Median(xs), mb / Median(xs));
  };
  std::printf("file: %s, %.1f MB, %d runs\n", path.c_str(), mb, runs);
  row("1. fresh mapping + XXH3 (the reader's check)", mapped);
  row("2. XXH3 again over the same mapping", remapped);
  row("3. pread 1 MiB pieces + XXH3 (no new memory)", streamed);
  row("4. copy into fresh column memory (the reader's copy)", fresh_copy);
  row("5. copy into column memory touched before", warm_copy);
  row("6. pread into fresh column memory + XXH3 (MapFile)", loaded);
  return 0;
}
