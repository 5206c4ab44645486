#pragma once
/// bgproxy::stats — a log-linear latency histogram: mergeable across workers,
/// subtractable between two cumulative snapshots (sliding windows), and precise
/// to about 1 % in its quantiles (HdrHistogram's layout: 64 linear sub-buckets
/// per power of two of microseconds). Recording is a few integer operations.
/// Thread: one owner; copies are free to move between threads.

#include <array>
#include <cstdint>

namespace bgproxy::stats {

class LatencyHistogram {
 public:
  static constexpr unsigned sub_bucket_bits = 6;                 ///< 64 sub-buckets per octave
  static constexpr unsigned sub_buckets = 1u << sub_bucket_bits;
  static constexpr unsigned octaves = 28;                        ///< 1 µs .. 2^(28+6) µs ≈ 4.8 h
  static constexpr unsigned bucket_count = (octaves + 1) * sub_buckets;

  /// Records one duration; negative durations count as 0, huge ones land in the last bucket.
  void record(double seconds) noexcept;
  void merge(const LatencyHistogram& other) noexcept;
  /// this -= older, bucket by bucket; `older` must be an earlier snapshot of the same counters.
  void subtract(const LatencyHistogram& older) noexcept;

  std::uint64_t count() const noexcept { return count_; }
  /// One bucket's count, and adding to it: how a histogram travels between fleet members
  /// (README "Running a fleet") as its non-empty buckets.
  std::uint64_t bucket(unsigned i) const noexcept { return i < bucket_count ? buckets_[i] : 0; }
  void add(unsigned bucket, std::uint64_t n) noexcept;
  /// The q-quantile (0 ≤ q ≤ 1) in seconds, interpolated linearly inside its bucket; 0 when empty.
  double quantile(double q) const noexcept;

  /// Bucket of a duration in whole microseconds, and that bucket's [low, high) bounds in µs.
  static unsigned bucket_of(std::uint64_t micros) noexcept;
  static std::uint64_t bucket_low(unsigned bucket) noexcept;
  static std::uint64_t bucket_high(unsigned bucket) noexcept;

 private:
  std::array<std::uint64_t, bucket_count> buckets_{};
  std::uint64_t count_ = 0;
};

}  // namespace bgproxy::stats
