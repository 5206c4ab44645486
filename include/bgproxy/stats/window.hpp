#pragma once
/// bgproxy::stats — figures of one color over a time window, computed from two
/// cumulative snapshots of its counters (the older one `seconds` before).
/// Thread: any. Pure.

#include "bgproxy/stats/request_stats.hpp"

namespace bgproxy::stats {

struct ColorWindow {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;  ///< 5xx answers (proxy-generated 502/503/504 included)
  double rps = 0;
  double error_rate = 0;     ///< errors / requests; 0 without requests
  double p95_seconds = 0;    ///< from the log-linear latency histogram; 0 without requests
  std::uint64_t streaming_calls = 0;  ///< gRPC streaming calls among `requests`, not in p95
};

/// What a window's figures are made of, in a form that adds up: the windows of several fleet
/// members (README "Running a fleet") sum to the fleet's, bucket by bucket.
struct WindowCounts {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;  ///< 5xx answers
  LatencyHistogram latency;
  std::uint64_t streaming_calls = 0;  ///< gRPC streaming calls, counted in `requests` only
  void add(const WindowCounts& o) noexcept;
};

/// @param older, newer cumulative stats of one color
WindowCounts counts_between(const ColorStats& older, const ColorStats& newer) noexcept;
/// @param seconds the window's length (for rps)
ColorWindow figures_of(const WindowCounts& c, double seconds) noexcept;

/// @param older, newer cumulative stats of one color; newer taken `seconds` after older
ColorWindow window_between(const ColorStats& older, const ColorStats& newer, double seconds) noexcept;

}  // namespace bgproxy::stats
