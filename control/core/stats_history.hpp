#pragma once
/// bgproxy::control — the merged request stats the control thread collects once a second, kept
/// as far back as the longest watchdog window reaches, and the per-color figures over each
/// service's window that the watchdog, `bgctl status` and /metrics read.
/// Pure: the caller says when each snapshot was taken. Thread: control.

#include <array>
#include <chrono>
#include <deque>
#include <utility>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "bgproxy/stats/request_stats.hpp"
#include "bgproxy/stats/window.hpp"
#include "control/core/service_runtime.hpp"

namespace bgproxy::control {

/// Per service, per color (blue, green) figures over the watchdog window.
using WindowFigures = std::vector<std::array<stats::ColorWindow, 2>>;

/// One service's window as counts that add up across fleet members.
struct ServiceWindow {
  std::array<stats::WindowCounts, 2> colors;  ///< by routing::Color
  double seconds = 0;                         ///< how long the window is (for rps)
};

/// The figures of windows (each service's, or a fleet's sums).
WindowFigures figures_of(const std::vector<ServiceWindow>& windows);

class StatsHistory {
 public:
  using Clock = std::chrono::steady_clock;

  /// Appends the snapshot taken at `at` and drops the oldest ones no service's window reaches
  /// back to; the two newest always stay, so there is a window as soon as there are two.
  void push(Clock::time_point at, stats::RequestStats snapshot, const config::Config& cfg);

  /// Per service of `cfg`: each color's figures between the oldest snapshot inside the
  /// service's watchdog window and the newest. Empty before the first snapshot; zeros for a
  /// service the snapshots do not cover.
  WindowFigures window_figures(const config::Config& cfg) const { return figures_of(windows(cfg)); }
  /// The same windows as counts. Empty before the first snapshot.
  std::vector<ServiceWindow> windows(const config::Config& cfg) const;
  /// Per service of `cfg`: the counts between the two newest snapshots (the last collection's
  /// second, for the admin page's charts). Empty before the second snapshot.
  std::vector<ServiceWindow> newest_step(const config::Config& cfg) const;

  /// The latest snapshot, or null before the first.
  const stats::RequestStats* newest() const noexcept {
    return snapshots_.empty() ? nullptr : &snapshots_.back().second;
  }

  /// A reload: every snapshot's per-service stats follow their service (a new one starts from
  /// zero, so its window fills from now on). Per-server stats are dropped: server ids change,
  /// and windows read services only.
  void renumber(const ServiceRenumbering& renumbering);

 private:
  std::deque<std::pair<Clock::time_point, stats::RequestStats>> snapshots_;  ///< oldest first
};

}  // namespace bgproxy::control
