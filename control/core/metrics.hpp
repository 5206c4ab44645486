#pragma once
/// bgproxy::control — the control plane's metric families on the admin listener's /metrics
/// (README "Metrics"): switches and rollbacks per service, server health and active checks,
/// the watchdog's figures over its window, and the rollout phase.
/// Pure: a function of what it is given. Thread: control.

#include <cstdint>
#include <string>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "bgproxy/health/tracker.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "control/core/service_runtime.hpp"
#include "control/core/state.hpp"
#include "control/core/fleet_view.hpp"
#include "control/core/stats_history.hpp"

namespace bgproxy::control {

/// Prometheus text of bgproxy_switches_total, bgproxy_rollbacks_total, bgproxy_server_up,
/// bgproxy_health_checks_total, bgproxy_watchdog_error_rate, bgproxy_watchdog_p95_seconds and
/// bgproxy_rollout_phase.
/// @param state, runtime, figures per service, indexed like cfg.services (figures may be empty
/// before the first window: zeros)
/// @param servers every server, by id
/// @param health null when no health is tracked: every server reads down and no check counts
/// @param fleet in a fleet (README "Running a fleet"): also bgproxy_cluster_connected,
/// bgproxy_cluster_revision, bgproxy_cluster_members and bgproxy_cluster_conflicts_total
std::string render_metrics(const config::Config& cfg, const State& state, const std::vector<ServiceRuntime>& runtime,
                           const std::vector<routing::ServerInfo>& servers, const health::Tracker* health,
                           const WindowFigures& figures, const FleetView* fleet = nullptr);

/// Webhook notifications (README "Notifications"), as bgproxy_notifications_total{result}.
struct NotificationCounts {
  std::uint64_t sent = 0;     ///< delivered: the receiver answered 2xx
  std::uint64_t failed = 0;   ///< given up after every attempt
  std::uint64_t dropped = 0;  ///< never sent: the receiver's queue was full, or bgproxy stopped
  std::uint64_t retried = 0;  ///< attempts after a failed one
};
std::string render_notification_metrics(const NotificationCounts& c);

/// Shadow traffic (README "Shadow traffic"), cumulative since the process started:
/// bgproxy_shadow_requests_total{service,color,result} (color: where the shadow went) and
/// bgproxy_shadow_mismatches_total{service,field} (cross-color pairs whose field differed; noise
/// fields count here too: `bgctl shadow` tells them apart). Only services with `shadow:` mirrored
/// at some point, so a proxy without shadow traffic adds no series.
/// @param newest the latest collection (its services indexed like cfg.services), or null
std::string render_shadow_metrics(const config::Config& cfg, const stats::RequestStats* newest);

}  // namespace bgproxy::control
