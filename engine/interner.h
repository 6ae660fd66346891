// StringInterner: dense codes for distinct strings, for the loader's hot
// path (one lookup per influencer field name and value loaded).
//
// An open-addressing table of 16-byte slots (where the string's bytes are,
// its code, size and 16 bits of its hash) beside a vector of string views
// the caller owns: a lookup reads one slot and the bytes, and short strings
// hash and compare with a few word loads and no library calls.
//
// Not thread-safe: one interner per thread (a batch is single-threaded).
#ifndef CLOUT_ENGINE_INTERNER_H_
#define CLOUT_ENGINE_INTERNER_H_

#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/string_view.h"

namespace clout {

// A 64-bit hash of `n` bytes at `p`. Reads only those bytes. Pure.
inline uint64_t HashBytes(const char* p, size_t n) {
  constexpr uint64_t kMul0 = 0x9E3779B97F4A7C15ULL;
  constexpr uint64_t kMul1 = 0xC2B2AE3D27D4EB4FULL;
  auto load8 = [](const char* q) {
    uint64_t v;
    std::memcpy(&v, q, 8);
    return v;
  };
  auto mix = [](uint64_t a, uint64_t b) {
    const unsigned __int128 m = static_cast<unsigned __int128>(a) * b;
    return static_cast<uint64_t>(m) ^ static_cast<uint64_t>(m >> 64);
  };
  uint64_t a = 0;
  uint64_t b = 0;
  if (n >= 8) {
    uint64_t h = n * kMul0;
    size_t i = 0;
    for (; i + 16 < n; i += 8) h = mix(h ^ load8(p + i), kMul1);
    a = load8(p + i);
    b = load8(p + n - 8);
    return mix(a ^ h ^ kMul0, b ^ kMul1);
  }
  if (n >= 4) {
    uint32_t x, y;
    std::memcpy(&x, p, 4);
    std::memcpy(&y, p + n - 4, 4);
    a = x;
    b = y;
  } else if (n > 0) {
    a = static_cast<unsigned char>(p[0]) |
        static_cast<uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8 |
        static_cast<uint64_t>(static_cast<unsigned char>(p[n - 1])) << 16;
  }
  return mix(a ^ kMul0, b ^ kMul1 ^ n);
}

// True if the first and the last sizeof(Word) of `n` bytes at `a` and `b`
// match (all of them when sizeof(Word) <= n <= 2 * sizeof(Word)).
template <typename Word>
bool EndsEqual(const char* a, const char* b, size_t n) {
  Word a0, a1, b0, b1;
  std::memcpy(&a0, a, sizeof(Word));
  std::memcpy(&b0, b, sizeof(Word));
  std::memcpy(&a1, a + n - sizeof(Word), sizeof(Word));
  std::memcpy(&b1, b + n - sizeof(Word), sizeof(Word));
  return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

// a == b, comparing strings of 4 to 16 bytes with two word loads each.
inline bool BytesEqual(absl::string_view a, absl::string_view b) {
  const size_t n = a.size();
  if (n != b.size()) return false;
  if (n == 0) return true;  // (an empty view's data may be null)
  if (n >= 8 && n <= 16) return EndsEqual<uint64_t>(a.data(), b.data(), n);
  if (n >= 4 && n < 8) return EndsEqual<uint32_t>(a.data(), b.data(), n);
  return std::memcmp(a.data(), b.data(), n) == 0;
}

class StringInterner {
 public:
  StringInterner() { slots_.assign(16, Slot()); }

  // The code of `s`: its index in `strings`, the vector this interner
  // indexes (every string in it was added through Intern()). If `s` is
  // new, appends `store(s)` (a view of a copy the caller keeps alive) to
  // `strings` and returns its index.
  template <typename Store>
  uint32_t Intern(absl::string_view s, std::vector<absl::string_view>& strings,
                  Store&& store) {
    const uint64_t hash = HashBytes(s.data(), s.size());
    const uint16_t tag = Tag(hash);
    const uint16_t size = Size16(s.size());
    size_t i = hash & mask();
    while (true) {
      const Slot& slot = slots_[i];
      if (slot.data == nullptr) break;
      // The slot holds where the bytes are: a hit reads the slot and the
      // bytes, not the strings vector (one dependent miss fewer).
      if (slot.tag == tag && slot.size == size &&
          (size == kLongSize
               ? BytesEqual(strings[slot.code], s)
               : BytesEqual(absl::string_view(slot.data, size), s))) {
        return slot.code;
      }
      i = (i + 1) & mask();
    }
    const uint32_t code = static_cast<uint32_t>(strings.size());
    const absl::string_view stored = store(s);
    strings.push_back(stored);
    slots_[i] = Slot{Data(stored), code, tag, size};
    if (4 * strings.size() > 3 * slots_.size()) Grow(strings);
    return code;
  }

  // Starts loading the slot where a lookup of `s` begins, so that an
  // Intern(s, ...) soon after finds it in cache. No observable effect.
  void Prefetch(absl::string_view s) const {
    __builtin_prefetch(&slots_[HashBytes(s.data(), s.size()) & mask()]);
  }

  // Bytes the table holds.
  size_t MemoryUsage() const { return slots_.capacity() * sizeof(Slot); }

 private:
  static constexpr uint16_t kLongSize = 0xFFFF;  // this size or more
  struct Slot {
    const char* data = nullptr;  // null: empty
    uint32_t code = 0;
    uint16_t tag = 0;   // 16 bits of the hash the index does not use
    uint16_t size = 0;  // the size, or kLongSize
  };
  static uint16_t Tag(uint64_t hash) { return static_cast<uint16_t>(hash >> 48); }
  static uint16_t Size16(size_t n) {
    return n >= kLongSize ? kLongSize : static_cast<uint16_t>(n);
  }
  // Never null, so that an empty string's slot is not empty.
  static const char* Data(absl::string_view s) {
    return s.data() != nullptr ? s.data() : "";
  }
  size_t mask() const { return slots_.size() - 1; }

  // Doubles the table (rehashing from the strings).
  void Grow(const std::vector<absl::string_view>& strings) {
    slots_.assign(slots_.size() * 2, Slot());
    for (size_t code = 0; code < strings.size(); ++code) {
      const absl::string_view s = strings[code];
      const uint64_t hash = HashBytes(s.data(), s.size());
      size_t i = hash & mask();
      while (slots_[i].data != nullptr) i = (i + 1) & mask();
      slots_[i] = Slot{Data(s), static_cast<uint32_t>(code), Tag(hash),
                       Size16(s.size())};
    }
  }

  std::vector<Slot> slots_;
};

}  // namespace clout

#endif  // CLOUT_ENGINE_INTERNER_H_
