#pragma once
/// The JSON answers of the control socket (`bgctl --json`, README "bgctl walkthrough"), one line each.
/// Pure. Thread: control.

#include <string>
#include <optional>
#include <string_view>
#include <vector>

#include "bgproxy/health/tracker.hpp"
#include "bgproxy/stats/request_stats.hpp"
#include "control/core/controller.hpp"
#include "control/core/fleet_view.hpp"
#include "bgproxy/watchdog/sequential.hpp"
#include "control/core/shadow_ledger.hpp"
#include "control/core/stats_history.hpp"

namespace bgproxy::control {

using Evidences = std::vector<std::optional<watchdog::Evidence>>;

/// @param service -1 for every service
/// @param figures may be empty (no traffic figures yet)
/// @param health null when no service runs health checks (every server counts as up)
/// @param verdicts the watchdog's last verdict per service ("" when it is not watching)
/// @param fleet in a fleet: the answer's "fleet" object (README "Running a fleet")
/// @param evidences the sequential watchdog's evidence per service (SPEC §16), or null
/// @param shadows the shadow comparisons (SPEC §14): each service's "shadow" summary, or null
std::string status_reply(const Controller& c, int service, const WindowFigures& figures,
                         const health::Tracker* health, const std::vector<std::string>* verdicts = nullptr,
                         const FleetView* fleet = nullptr, const Evidences* evidences = nullptr,
                         const ShadowLedger* shadows = nullptr);
/// @param servers the latest merged per-server stats, by server id (what the pools learned), or
/// null before the first collection
std::string health_reply(const Controller& c, int service, const health::Tracker* health,
                         health::Clock::time_point now, const std::vector<stats::ServerStats>* servers = nullptr);
/// @param service empty for every service
std::string history_reply(const State& s, std::string_view service, std::size_t limit);
/// {"ok":true,"state":{<the service's status object>}}
std::string change_reply(const Controller& c, int service, const WindowFigures& figures,
                         const health::Tracker* health, const std::vector<std::string>* verdicts = nullptr);
std::string ok_reply(std::string_view message);
std::string error_reply(std::string_view message);

}  // namespace bgproxy::control
