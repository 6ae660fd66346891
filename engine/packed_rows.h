// PackedRows: a list of row numbers (or ranks, or positions) of one job in
// 2, 3 or 4 bytes each, the fewest that hold the job's row count (internal
// to the engine: the TimeIndex keeps its time order and block ranks so).
#ifndef CLOUT_ENGINE_PACKED_ROWS_H_
#define CLOUT_ENGINE_PACKED_ROWS_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "engine/columns.h"

namespace clout {

// A read-only view of PackedRows from some entry on: view[i] is the entry
// `i` places after it. Valid while the PackedRows it came from lives and
// is not resized. Thread-safe (reads only).
class PackedRowsView {
 public:
  PackedRowsView() = default;

  // The entry `i` places on. One unaligned 4-byte load, masked (the list
  // keeps spare bytes past its last entry for it). Requires the view's
  // list to have an entry there (a default view has none).
  uint32_t operator[](size_t i) const {
    static_assert(std::endian::native == std::endian::little);
    uint32_t word;
    std::memcpy(&word, data_ + i * width_, sizeof(word));
    return word & mask_;
  }
  // The number of the first `n` entries that are below `value`, when those
  // entries ascend. Requires n >= 1. A binary search without branches on
  // the data (about log2(n) dependent loads).
  size_t CountBelow(size_t n, uint32_t value) const {
    size_t base = 0;
    while (n > 1) {
      const size_t half = n / 2;
      base = (*this)[base + half - 1] < value ? base + half : base;
      n -= half;
    }
    return base + ((*this)[base] < value ? 1 : 0);
  }

  // f(std::integral_constant<size_t, width>()): code that reads through
  // At<W>() then has the width as a constant (address arithmetic without a
  // multiply by a variable). Returns what f returns.
  template <typename F>
  decltype(auto) WithWidth(F&& f) const {
    switch (width_) {
      case 2:
        return f(std::integral_constant<size_t, 2>());
      case 3:
        return f(std::integral_constant<size_t, 3>());
      default:
        return f(std::integral_constant<size_t, 4>());
    }
  }
  // The entry `i` places on, for code that knows the width: requires
  // W == the list's width.
  template <size_t W>
  uint32_t At(size_t i) const {
    static_assert(std::endian::native == std::endian::little);
    uint32_t word;
    std::memcpy(&word, data_ + i * W, sizeof(word));
    return W == 4 ? word : word & ((uint32_t{1} << (8 * W)) - 1);
  }

  // The view `i` entries further on (at most to just past the last).
  PackedRowsView Skip(size_t i) const {
    PackedRowsView v = *this;
    v.data_ += i * width_;
    return v;
  }

 private:
  friend class PackedRows;
  const uint8_t* data_ = nullptr;
  size_t width_ = 4;
  uint32_t mask_ = UINT32_MAX;
};

// Entries below `limit` (a job's row count), each in the fewest of 2, 3
// or 4 bytes that hold every such value. Large, so on huge pages like the
// columns. Not thread-safe to write; once filled, any number of threads
// may read it.
class PackedRows {
 public:
  // The bytes per entry of a list whose entries are below `limit`: 2 up
  // to 2^16, 3 up to 2^24, else 4.
  static constexpr size_t WidthFor(size_t limit) {
    return limit <= (size_t{1} << 16)   ? 2
           : limit <= (size_t{1} << 24) ? 3
                                        : 4;
  }

  // Makes the list `n` entries, for entries below `limit`, every byte
  // `fill`: each entry 0 by default, all_ones() with 0xFF.
  void Assign(size_t n, size_t limit, uint8_t fill = 0) {
    width_ = WidthFor(limit);
    mask_ = width_ == 4 ? UINT32_MAX : (uint32_t{1} << (8 * width_)) - 1;
    size_ = n;
    // Zeroed (a pass of a few milliseconds at 10M rows, against a build
    // of hundreds), so that Set's whole-word store never reads unset bytes:
    // the value constructor, since Column<uint8_t>(n) or resize(n) leave
    // bytes unset (ColumnAllocator).
    Column<uint8_t> bytes(n * width_ + (sizeof(uint32_t) - width_), fill);
    bytes_.swap(bytes);
  }

  // Sets entry `i`. Requires i < size() and `value` below the limit
  // Assign was given (unchecked: the bytes past the width are dropped).
  // One 4-byte load and store: the bytes past the entry keep their value.
  void Set(size_t i, uint32_t value) {
    uint8_t* at = &bytes_[i * width_];
    uint32_t word;
    std::memcpy(&word, at, sizeof(word));
    word = (word & ~mask_) | (value & mask_);
    std::memcpy(at, &word, sizeof(word));
  }
  uint32_t operator[](size_t i) const { return view()[i]; }
  PackedRowsView view() const {
    PackedRowsView v;
    v.data_ = bytes_.data();
    v.width_ = width_;
    v.mask_ = mask_;
    return v;
  }
  // The entries as a plain list (tests, and callers wanting one).
  std::vector<uint32_t> ToVector() const {
    std::vector<uint32_t> out(size_);
    for (size_t i = 0; i < size_; ++i) out[i] = (*this)[i];
    return out;
  }

  // A hint with no observable effect: start loading entry `i` (both ends
  // of the 4 bytes a read takes, which may cross a cache line).
  void Prefetch(size_t i) const {
    __builtin_prefetch(&bytes_[i * width_]);
    __builtin_prefetch(&bytes_[i * width_ + 3]);
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t width() const { return width_; }
  // The value whose bytes are all set: the greatest an entry can hold.
  uint32_t all_ones() const { return mask_; }
  // Heap bytes held.
  size_t bytes() const { return bytes_.capacity(); }

 private:
  size_t size_ = 0;
  size_t width_ = 4;
  uint32_t mask_ = UINT32_MAX;
  Column<uint8_t> bytes_;
};

}  // namespace clout

#endif  // CLOUT_ENGINE_PACKED_ROWS_H_
