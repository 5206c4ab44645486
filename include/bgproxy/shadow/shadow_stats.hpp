#pragma once
/// bgproxy::shadow — per-worker counters of mirrored requests (SPEC §14), merged like the request
/// stats (stats::ServiceStats holds one per service): what became of each shadow, the fields
/// compared and how often they differed — between colors, and between two answers of the same
/// color (the noise floor) — a few sample differences, and the paired latency (shadow minus
/// primary, the same request on both). Plain data; recorded by one worker, merged on the
/// control thread.
/// Thread: one owner.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "bgproxy/shadow/compare.hpp"

namespace bgproxy::shadow {

/// What became of a shadow (bgproxy_shadow_requests_total{result}): its answer compared; dropped
/// (max_in_flight full); failed (no answer: connect, reset, timeout, protocol); skipped (eligible
/// by method and share but not mirrored: a body over max_body_bytes, no usable server).
enum class Result : std::uint8_t { compared = 0, dropped, failed, skipped };
inline constexpr std::array<const char*, 4> result_names{"compared", "dropped", "failed", "skipped"};

/// How often one field was compared and differed.
struct FieldCounts {
  std::uint64_t compared = 0;  ///< across colors
  std::uint64_t differing = 0;
  std::uint64_t noise_compared = 0;  ///< same color twice
  std::uint64_t noise_differing = 0;
};

/// Samples kept per service: the newest of each field, of the fields that differed last.
inline constexpr std::size_t max_samples = 8;

/// Distinct fields a worker counts per service (a JSON array gives a path per index). Beyond it a
/// new field's counts go to `other_field`, so memory and metric labels stay bounded (merged: per
/// worker); totals are kept.
inline constexpr std::size_t max_fields = 256;
inline constexpr std::string_view other_field = "(other)";

/// The request target kept in a sample, at most this many bytes.
inline constexpr std::size_t max_sample_path = 80;

/// The paired-latency buckets: bucket i holds differences of [2^i, 2^(i+1)) nanoseconds; a
/// difference under 1 ns is a tie.
inline constexpr std::size_t latency_bucket_count = 64;
/// @return the bucket of a difference of `seconds` (> 0)
std::size_t latency_bucket(double seconds) noexcept;
/// @return the lower bound of bucket `i`, in seconds
double latency_bucket_floor(std::size_t i) noexcept;

struct Sample {
  std::string path;  ///< the request target, cut short
  Difference difference;
  friend bool operator==(const Sample&, const Sample&) = default;
};

struct ServiceShadowStats {
  std::array<std::array<std::uint64_t, 4>, 2> requests{};  ///< [shadow's routing::Color][Result]
  std::map<std::string, FieldCounts> fields;               ///< by Difference::field
  std::vector<Sample> samples;                             ///< cross-color differences, one per field, newest last
  /// Paired latency of cross-color pairs: how many, how many with the shadow slower / faster
  /// (the sign test's counts; ties are neither), and the differences (shadow - primary) in a
  /// signed log histogram for their median and p95.
  std::uint64_t pairs = 0;
  std::uint64_t shadow_slower = 0;
  std::uint64_t shadow_faster = 0;
  std::array<std::uint64_t, latency_bucket_count> slower_buckets{};  ///< shadow - primary > 0, by log2 bucket
  std::array<std::uint64_t, latency_bucket_count> faster_buckets{};  ///< primary - shadow > 0, by log2 bucket

  void count(std::uint8_t shadow_color, Result r) noexcept { ++requests[shadow_color][static_cast<int>(r)]; }
  /// A compared pair: the field counts (noise or cross-color), and for a cross-color pair the
  /// samples of its differences and its paired latency.
  /// @param same_color both answers came from one color (a noise-floor pair)
  /// @param target the request target, for samples
  void record(const PairResult& pair, bool same_color, std::string_view target, double primary_seconds,
              double shadow_seconds);
  /// Adds `o`'s counts (fields uncapped: each worker capped its own); samples: `o`'s are taken
  /// as the newer. Associative.
  void merge(const ServiceShadowStats& o);
};

/// What `now` counted after `base`, an earlier reading of the same cumulative counters (the
/// control plane's comparison restarts from a baseline when the shadow color or settings change).
/// A count below its base (`now` collected before `base`, arriving late) reads as 0. Samples:
/// those of `now` that `base` does not hold.
ServiceShadowStats since(const ServiceShadowStats& now, const ServiceShadowStats& base);

}  // namespace bgproxy::shadow
