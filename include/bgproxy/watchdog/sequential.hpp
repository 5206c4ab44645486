#pragma once
/// bgproxy::watchdog — the sequential watchdog (SPEC §16, `watchdog.method: sequential`): per rule,
/// an e-process for "the target is worse than its limit" (bad) and one for "it is within it"
/// (good), fed once per second with the counts of both colors. A rule passes when its good
/// evidence reaches 1/alpha. The verdict fails when the mean of the four rules' bad evidence
/// reaches 1/alpha (the rule with the most is named) and passes only when every rule passes.
/// The mean of e-processes is itself one while the target is healthy, so looking every second
/// keeps the false-rollback rate ≤ alpha over the whole rollout for the four rules together
/// (Ville's inequality); a pass needs every rule's own evidence, so a false pass stays ≤ alpha too
/// (an intersection-union test). The bad evidence is kept for the whole rollout and never started
/// again to dodge a near-fail; the good evidence starts again at each canary step, which has to
/// earn its own pass.
///
/// Rules and their nulls (the bad evidence is an e-process when the target is within them):
/// - error_rate: errors among the target's requests, Wald's SPRT of p0 = max_error_rate / 2
///   against p1 = max_error_rate;
/// - error_rate_relative: where errors land, target against the other color (RatioMixture),
///   bad: ratio > 1, good: ratio < 2;
/// - latency: requests slower than an edge frozen on the histogram bucket boundary at or above
///   max_p95, SPRT of a 2.5 % share against 5 % (the p95 is above the edge when more than 5 %
///   are);
/// - latency_relative: requests slower than an edge frozen from the other color's p95 (its
///   p95 × max_p95_ratio and + 50 ms, the larger), compared like errors; only seconds after the
///   freeze are tested against it. Choosing the edge from the data under test would void the
///   guarantee.
/// A relative rule learns only from events (errors, slow requests): without any, it has nothing
/// to say either way, and it then passes once its absolute rule has passed and its bad evidence
/// is not above 1.
/// No I/O; the caller passes the time.
/// Thread: one owner.

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "bgproxy/config/config.hpp"
#include "bgproxy/stats/window.hpp"
#include "bgproxy/watchdog/e_process.hpp"
#include "bgproxy/watchdog/policy.hpp"

namespace bgproxy::watchdog {

/// One color's counts in one second.
struct SecondCounts {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  std::uint64_t slow = 0;           ///< requests slower than the latency edge
  std::uint64_t slow_relative = 0;  ///< requests slower than the relative latency edge
};

struct Second {
  SecondCounts target;
  SecondCounts other;
};

enum class SequentialRule : std::uint8_t { error_rate, error_rate_relative, latency, latency_relative };
inline constexpr std::array<const char*, 4> sequential_rule_names{"error_rate", "error_rate_relative", "latency",
                                                                  "latency_relative"};

struct RuleEvidence {
  double log_bad = 0;   ///< ln E_bad (over the rollout)
  double log_good = 0;  ///< ln E_good (over the current step)
  Outcome outcome = Outcome::inconclusive;
};

/// An anytime-valid confidence sequence for the target's error rate minus the other color's
/// (mSPRT normal mixture): estimate ± sqrt(V(V+τ²)/τ² · (2 ln(1/α) + ln((V+τ²)/V))).
struct ConfidenceSequence {
  bool known = false;  ///< both colors have had requests
  double estimate = 0;
  double low = 0;
  double high = 0;
};

struct Evidence {
  double alpha = 0.01;
  std::array<RuleEvidence, 4> rules;  ///< by SequentialRule
  double log_bad = 0;                 ///< ln of the mean of the rules' bad evidence: fail at ln(1/alpha)
  Outcome outcome = Outcome::inconclusive;
  ConfidenceSequence error_rate_difference;
  double latency_edge_seconds = 0;
  double relative_edge_seconds = 0;  ///< 0 until frozen
  std::uint64_t target_requests = 0, target_errors = 0;  ///< over the rollout, warm-ups left out
  std::uint64_t other_requests = 0, other_errors = 0;
  std::uint64_t step_requests = 0;  ///< the target's, in the current step
};

/// The bucket of stats::LatencyHistogram whose lower bound is the first at or above `seconds`.
unsigned edge_bucket(double seconds) noexcept;
/// That bucket's lower bound in seconds.
double edge_seconds(unsigned bucket) noexcept;
/// One color's counts in a second from its counts over that second (histogram included).
SecondCounts second_counts(const stats::WindowCounts& c, unsigned latency_edge, unsigned relative_edge) noexcept;

class SequentialAnalysis {
 public:
  /// Seconds left out after each step begins: connections to the new share are being set up
  /// and caches warmed, which says little about the steady state.
  static constexpr std::chrono::milliseconds warm_up{5000};
  static constexpr double relative_margin_seconds = 0.050;

  /// @param now the rollout's start: its first step begins
  SequentialAnalysis(const config::Watchdog& policy, std::chrono::milliseconds now);

  /// A new canary step (or the bake): the good evidence starts again, after a warm-up.
  void start_step(std::chrono::milliseconds now);
  /// Freezes the relative latency edge from the other color's p95 (first call only; a p95 of 0,
  /// no data, freezes nothing).
  void freeze_relative_edge(double other_p95_seconds) noexcept;
  bool relative_edge_frozen() const noexcept { return relative_edge_ != 0; }
  unsigned latency_edge() const noexcept { return latency_edge_; }
  unsigned relative_edge() const noexcept { return relative_edge_; }

  /// When the current warm-up ends: seconds before it are left out.
  std::chrono::milliseconds counting_from() const noexcept { return counting_from_; }
  /// One second's counts; a second inside a warm-up is left out.
  void observe(std::chrono::milliseconds now, const Second& s);

  Evidence evidence() const;
  /// The verdict, with the rule a failure broke as the threshold method names it (error_rate,
  /// error_rate_delta, p95, p95_ratio), and a reason with the evidence, e.g.
  /// "error_rate_relative evidence 791, mean of the rules 201 >= 100 (alpha 0.01): green 5 errors of
  /// 50, blue 0 of 450".
  Verdict verdict(std::string_view target_name, std::string_view other_name) const;

 private:
  double alpha_;
  double tau_;  ///< the confidence sequence's mixing scale
  std::chrono::milliseconds counting_from_;
  unsigned latency_edge_;
  unsigned relative_edge_ = 0;
  double max_p95_ratio_;
  // The bad evidence, over the rollout.
  Sprt errors_bad_, slow_bad_;
  RatioMixture errors_relative_bad_, slow_relative_bad_;
  // The good evidence, over the current step.
  Sprt errors_good_, slow_good_;
  RatioMixture errors_relative_good_, slow_relative_good_;
  std::uint64_t target_requests_ = 0, target_errors_ = 0, other_requests_ = 0, other_errors_ = 0;
  std::uint64_t target_slow_relative_ = 0, other_slow_relative_ = 0, target_slow_ = 0;
  std::uint64_t step_requests_ = 0;
};

}  // namespace bgproxy::watchdog
