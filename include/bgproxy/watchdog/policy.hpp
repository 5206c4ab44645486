#pragma once
/// bgproxy::watchdog — the pure verdict on a rollout target's health (README "Canary and
/// automatic rollback"): compare the target color's window figures with the thresholds and
/// with the other color. No I/O, no clock.
/// Thread: any.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "bgproxy/config/config.hpp"

namespace bgproxy::watchdog {

/// A color's figures over the window.
struct Figures {
  std::uint64_t requests = 0;
  double error_rate = 0;    ///< (5xx answers + upstream failures) / requests
  double p95_seconds = 0;
};

enum class Outcome : std::uint8_t { inconclusive, pass, fail };

/// The rule a failing verdict broke, so that callers can tell failures apart without
/// reading the reason text, which is for people and may change.
enum class Rule : std::uint8_t {
  none,              ///< the verdict did not fail (pass or inconclusive)
  error_rate,        ///< error rate > max_error_rate
  p95,               ///< p95 > max_p95
  error_rate_delta,  ///< error rate exceeds the other color's by more than max_error_rate_delta
  p95_ratio,         ///< p95 > the other color's p95 × max_p95_ratio and its p95 + 50 ms
};

struct Verdict {
  Outcome outcome = Outcome::inconclusive;
  Rule rule = Rule::none;  ///< set exactly when outcome is fail
  /// One line with the figures, e.g. "error_rate 0.213 > 0.05 (n=412, window 30s)",
  /// "p95 1.512s > 1s (n=80, window 10s)",
  /// "error_rate 0.080 exceeds blue's 0.030 by more than 0.02 (n=200, window 30s)",
  /// "p95 0.900s > 1.5 x blue's 0.300s and blue's + 50ms (n=200, window 30s)",
  /// "pass: error_rate 0.000, p95 0.004s (n=120, window 30s)",
  /// "inconclusive: 12 requests < min_requests 20 (window 30s)".
  std::string reason;
};

/// @param target figures of the rollout target color
/// @param other figures of the other color (its rules apply only when it has min_requests)
/// @param other_name "blue" or "green", for the reason text
Verdict evaluate(const Figures& target, const Figures& other, const config::Watchdog& policy,
                 std::string_view other_name);

}  // namespace bgproxy::watchdog
