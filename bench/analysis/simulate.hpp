#pragma once
/// bench/analysis — simulated canaries for issue 18: traffic second by second (Poisson, a
/// day-shaped curve rising and falling tenfold over the run), each request's color, error and
/// latency (log-normal), judged every second by both watchdog methods exactly as the control
/// plane judges them: watchdog::evaluate over a 30 s window for `threshold`,
/// watchdog::SequentialAnalysis fed each second's counts for `sequential`.
/// Seeded and pure; no clock.

#include <cstdint>

#include "bgproxy/config/config.hpp"

namespace bgproxy::bench {

struct Scenario {
  double split = 0.1;               ///< green's share of the requests
  double blue_error_rate = 0.01;
  double green_error_factor = 1;    ///< green's error rate = blue's × this
  double green_latency_factor = 1;  ///< every green duration × this (so its p95 too)
  bool quiet = false;               ///< green gets one request a minute, whatever the split
  int seconds = 1800;
  double base_rps = 2;              ///< the quietest second's mean; the busiest is 10×
};

/// What one method did in one run.
struct Outcome {
  bool rolled_back = false;
  int rollback_second = 0;
  std::uint64_t rollback_requests = 0;  ///< green requests up to and including that second
  bool passed = false;                  ///< passed at least once
  int pass_second = 0;                  ///< the first pass
};

struct Run {
  Outcome threshold;
  Outcome sequential;
};

/// @param policy both methods' watchdog settings (method and alpha are read by sequential only)
Run simulate(const Scenario& s, const config::Watchdog& policy, std::uint64_t seed);

}  // namespace bgproxy::bench
