// Sort keys of the Get Influencers page order, as unsigned integers: a
// smaller key comes first. Internal to the engine (the executor's scans and
// sorts); pure functions, thread-safe.
#ifndef CLOUT_ENGINE_ORDER_KEY_H_
#define CLOUT_ENGINE_ORDER_KEY_H_

#include <bit>
#include <cstdint>

namespace clout {

// Returns a key whose unsigned order is Java's Double.compare order
// (-0.0 before 0.0, NaN after +inf), as Lucene sorts doubles.
inline uint64_t OrderKey(double value) {
  uint64_t bits = std::bit_cast<uint64_t>(value);
  return (bits >> 63) ? ~bits : (bits | (uint64_t{1} << 63));
}

// Returns a key whose unsigned order is the signed order of `value`.
inline uint64_t OrderKey(int64_t value) {
  return static_cast<uint64_t>(value) ^ (uint64_t{1} << 63);
}

// Returns the page-order key of a stored double, `flip` all ones for a
// descending sort (else zero): a missing value (any NaN, whatever its sign
// or payload) takes the largest key, UINT64_MAX, in both directions (sorted
// last, as Elasticsearch's missing `_last`), which no value reaches (+inf
// ascending and -inf descending give 0xFFF0...).
inline uint64_t DoubleOrderKey(double value, uint64_t flip) {
  // Integer-only and branch-free, so that a scan's key loop stays
  // vectorised: NaN is an all-ones exponent with a non-zero mantissa.
  const uint64_t bits = std::bit_cast<uint64_t>(value);
  const uint64_t missing =
      uint64_t{0} - static_cast<uint64_t>((bits << 1) > (uint64_t{0x7FF} << 53));
  return (OrderKey(value) ^ flip) | missing;
}

}  // namespace clout

#endif  // CLOUT_ENGINE_ORDER_KEY_H_
