#pragma once
/// bgproxy::control — the sequential watchdog's state of one service across ticks (SPEC §16):
/// which rollout and step it belongs to, the analysis, and what the last tick fed it. A new
/// rollout (or a new target) starts a new analysis; a new step or the bake only starts the step's
/// pass evidence again (SequentialAnalysis::start_step), so a near-fail is never wiped.
/// The counts fed are those of each second: the difference of this instance's cumulative stats
/// between two ticks. In a fleet the fleet's aggregated window is fed instead, each time it reaches
/// back to the previous feed, so that the windows fed do not overlap.
/// Pure: the caller passes the time and the stats. Thread: control.

#include <array>
#include <cstdint>
#include <optional>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "bgproxy/stats/request_stats.hpp"
#include "bgproxy/stats/window.hpp"
#include "bgproxy/watchdog/sequential.hpp"
#include "control/core/state.hpp"

namespace bgproxy::control {

struct SequentialTrack {
  watchdog::SequentialAnalysis analysis;
  routing::Color target;
  std::int64_t step_started_ms = 0;
  /// This instance's cumulative stats of the service at the last tick (per-second feeding).
  std::optional<std::array<stats::ColorStats, 2>> previous;
  /// When a fleet window was last fed (fleet feeding), unix ms.
  std::int64_t fed_window_ms = 0;
};

/// What a tick feeds: this instance's cumulative stats of the service, or (in a fleet) the
/// fleet's counts over the watchdog window. Both colors, by routing::Color.
struct SequentialInput {
  const std::array<stats::ColorStats, 2>* cumulative = nullptr;  ///< alone; null in a fleet
  std::array<stats::WindowCounts, 2> window;                     ///< the window (the fleet's in a fleet)
  double window_seconds = 0;                                     ///< the time the window spans
};

/// One tick of a service under watch: starts or follows the track, feeds the new counts, and
/// returns the verdict.
/// @param now_ms wall time, unix milliseconds (the state's step times are wall times too)
watchdog::Verdict sequential_tick(std::optional<SequentialTrack>& track, const config::Service& svc,
                                  const ServiceState& ss, std::int64_t now_ms, const SequentialInput& in);

}  // namespace bgproxy::control
