#include "bgproxy/stats/latency_histogram.hpp"

#include <algorithm>
#include <bit>

namespace bgproxy::stats {

namespace {

// Beyond this many µs every value lands in the last bucket anyway; clamping in double first keeps
// the conversion to an integer defined for huge or infinite inputs.
constexpr double max_micros = 0x1p62;

}  // namespace

unsigned LatencyHistogram::bucket_of(std::uint64_t micros) noexcept {
  if (micros < sub_buckets) return static_cast<unsigned>(micros);  // exact below 64 µs
  // msb >= sub_bucket_bits here; octave 1 holds [64, 128) µs with a 1 µs step, octave k a
  // 2^(k-1) µs step, so every bucket is at most 1/64 of its lower bound wide.
  const unsigned msb = static_cast<unsigned>(std::bit_width(micros)) - 1;
  const unsigned octave = msb - (sub_bucket_bits - 1);
  if (octave > octaves) return bucket_count - 1;
  const auto sub = static_cast<unsigned>(micros >> (msb - sub_bucket_bits)) - sub_buckets;
  return octave * sub_buckets + sub;
}

std::uint64_t LatencyHistogram::bucket_low(unsigned bucket) noexcept {
  bucket = std::min(bucket, bucket_count - 1);
  if (bucket < sub_buckets) return bucket;
  const unsigned octave = bucket / sub_buckets;
  const unsigned sub = bucket % sub_buckets;
  return static_cast<std::uint64_t>(sub_buckets + sub) << (octave - 1);
}

std::uint64_t LatencyHistogram::bucket_high(unsigned bucket) noexcept {
  bucket = std::min(bucket, bucket_count - 1);
  if (bucket < sub_buckets) return bucket + 1u;
  const unsigned octave = bucket / sub_buckets;
  const unsigned sub = bucket % sub_buckets;
  return static_cast<std::uint64_t>(sub_buckets + sub + 1) << (octave - 1);
}

void LatencyHistogram::record(double seconds) noexcept {
  const double us = seconds * 1e6;
  std::uint64_t micros = 0;
  if (us >= max_micros) {
    micros = static_cast<std::uint64_t>(max_micros);
  } else if (us > 0) {  // also false for NaN: counts as 0
    micros = static_cast<std::uint64_t>(us);  // truncation = rounding down for positive values
  }
  ++buckets_[bucket_of(micros)];
  ++count_;
}

void LatencyHistogram::add(unsigned bucket, std::uint64_t n) noexcept {
  if (bucket >= bucket_count) bucket = bucket_count - 1;
  buckets_[bucket] += n;
  count_ += n;
}

void LatencyHistogram::merge(const LatencyHistogram& other) noexcept {
  for (unsigned i = 0; i < bucket_count; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
}

void LatencyHistogram::subtract(const LatencyHistogram& older) noexcept {
  for (unsigned i = 0; i < bucket_count; ++i) buckets_[i] -= older.buckets_[i];
  count_ -= older.count_;
}

double LatencyHistogram::quantile(double q) const noexcept {
  if (count_ == 0) return 0;
  if (!(q > 0)) q = 0;  // NaN too
  if (q > 1) q = 1;
  const double rank = q * static_cast<double>(count_);
  std::uint64_t below = 0;  // samples in the buckets before `b`
  unsigned last = 0;        // last non-empty bucket, in case rounding leaves `rank` unreached
  for (unsigned b = 0; b < bucket_count; ++b) {
    const std::uint64_t n = buckets_[b];
    if (n == 0) continue;
    last = b;
    if (static_cast<double>(below + n) >= rank) {
      const double fraction = std::clamp((rank - static_cast<double>(below)) / static_cast<double>(n), 0.0, 1.0);
      const auto low = static_cast<double>(bucket_low(b));
      const auto high = static_cast<double>(bucket_high(b));
      return (low + fraction * (high - low)) / 1e6;
    }
    below += n;
  }
  return static_cast<double>(bucket_high(last)) / 1e6;
}

}  // namespace bgproxy::stats
