#pragma once
/// bgproxy::shadow — what a service's cumulative shadow counters say (SPEC §14): per field, how
/// often the colors' answers differed next to how often one color's answers differ from
/// themselves (the noise floor), which fields stand clearly above it, the service's mismatch
/// rate, and the paired latency (median, p95 and a sign test of shadow minus primary).
/// Pure: read from a merged ServiceShadowStats, no clock.
/// Thread: any.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bgproxy/shadow/shadow_stats.hpp"

namespace bgproxy::shadow {

/// A field is reported only with at least this many cross-color comparisons.
inline constexpr std::uint64_t min_reported_compared = 20;
/// Diffy's thresholds: the cross-color rate must exceed the noise rate by 20 % of it and by
/// 0.03 percentage points.
inline constexpr double reported_relative_margin = 0.20;
inline constexpr double reported_absolute_margin = 0.0003;
/// The sign test calls a latency difference clear below this two-sided p.
inline constexpr double latency_significance = 0.01;

struct FieldReport {
  std::string field;
  std::uint64_t compared = 0;
  std::uint64_t differing = 0;
  double mismatch_rate = 0;  ///< differing / compared
  std::uint64_t noise_compared = 0;
  std::uint64_t noise_differing = 0;
  double noise_rate = 0;  ///< noise_differing / noise_compared; 0 without noise pairs
  /// A real difference, not noise: compared >= min_reported_compared, and mismatch_rate >
  /// noise_rate × (1 + reported_relative_margin) and > noise_rate + reported_absolute_margin. A
  /// field never seen in a noise pair has noise 0, so any difference of it counts once it was
  /// compared often enough.
  bool reported = false;
};

struct LatencyReport {
  std::uint64_t pairs = 0;   ///< cross-color pairs
  std::uint64_t slower = 0;  ///< the shadow slower
  std::uint64_t faster = 0;  ///< the shadow faster (ties are neither)
  /// Of shadow - primary, seconds, read from the log2 buckets (within a bucket, linearly).
  double median_seconds = 0;
  double p95_seconds = 0;
  /// The sign test over the untied pairs: two-sided p of "slower as likely as faster"
  /// (exact binomial up to 1,000 pairs, normal approximation with continuity correction above).
  double p_value = 1;
  bool significant = false;  ///< p_value < latency_significance
  /// "green slower in 68 % of 4,120 pairs" when significant, else "no clear difference (green
  /// slower in 52 % of 300 pairs)"; "no pairs" before the first. Pairs counted are the untied ones.
  std::string verdict;
};

struct Report {
  std::uint64_t pairs = 0;  ///< compared cross-color pairs
  std::vector<FieldReport> fields;  ///< reported ones first, then by mismatch rate, then name
  std::vector<std::string> reported_fields;  ///< names of the reported fields, in that order
  /// The service's mismatch rate: the highest mismatch rate of a reported field (0 when none is
  /// reported). The share of pairs with any reported field differing would need per-pair
  /// knowledge of a report made afterwards; the highest field rate is its lower bound and is
  /// what the gate (watchdog.max_shadow_mismatch_rate) compares.
  double mismatch_rate = 0;
  LatencyReport latency;
};

/// @param shadow_color the name of the color the shadows went to, for the latency verdict
Report report(const ServiceShadowStats& stats, std::string_view shadow_color);

/// The two-sided sign-test p of `k` of `n` untied pairs going one way.
double sign_test_p(std::uint64_t k, std::uint64_t n) noexcept;

}  // namespace bgproxy::shadow
