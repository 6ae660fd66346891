#include "engine/snapshot.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace clout {

absl::string_view StringArena::Store(absl::string_view s) {
  if (s.size() > left_) {
    // Large strings get a block of their own so small ones keep packing.
    size_t size = std::max(kBlockSize, s.size());
    blocks_.push_back(std::make_unique<char[]>(size));
    bytes_reserved_ += size;
    cursor_ = blocks_.back().get();
    left_ = size;
  }
  if (!s.empty()) std::memcpy(cursor_, s.data(), s.size());
  absl::string_view stored(cursor_, s.size());
  cursor_ += s.size();
  left_ -= s.size();
  return stored;
}

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugeThreshold = size_t{1} << 20;
}  // namespace

// One definition for every T: the template's static members forward here.
void* AllocateColumnBlock(size_t bytes) {
  if (bytes < kHugeThreshold) return ::operator new(bytes);
  size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, rounded);
  if (p == nullptr) throw std::bad_alloc();
  madvise(p, rounded, MADV_HUGEPAGE);  // a hint; failure is harmless
  return p;
}

void FreeColumnBlock(void* p, size_t bytes) {
  if (bytes < kHugeThreshold) {
    ::operator delete(p);
  } else {
    std::free(p);
  }
}

void InfluencerColumns::Reserve(size_t n) {
  timestamp.reserve(n);
  influencer_score.reserve(n);
  initial_influencer_score.reserve(n);
  probability.reserve(n);
  bucket_span_code.reserve(n);
  is_interim.reserve(n);
  field_name_code.reserve(n);
  field_value_code.reserve(n);
  version.reserve(n);
}

}  // namespace clout
