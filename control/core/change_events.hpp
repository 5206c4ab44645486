#pragma once
/// bgproxy::control — the change feed's events (README "Change feed"), built from what the
/// control plane already knows: a committed change's history entry, a health transition, a
/// watchdog verdict. Pure: the caller passes the time and who it is.
/// Thread: control.

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/array.hpp>

#include "bgproxy/routing/routing_table.hpp"
#include "bgproxy/watchdog/policy.hpp"
#include "control/core/event_feed.hpp"
#include "control/core/state.hpp"

namespace bgproxy::control {

/// {"blue":70.0,"green":30.0}
boost::json::object weights_object(const Weights& w);

/// The event of a committed change, from its history entry and the service's state after it:
/// rollback (a rollback or canary abort), canary_step (the rollout loop advanced), promoted
/// (it finished baking), switch (any other change of the weights); none when the weights did
/// not move (canary pause, a server command: see server_event).
/// @param instance who made the change; @param here made by this instance (Event::here)
std::vector<Event> change_events(const HistoryEntry& entry, const ServiceState& after, std::string_view instance,
                                 bool here);

/// health: a server's state changed (a check, or an operator's server command).
/// @param state up, down, draining or disabled
Event health_event(std::string time, std::string service, std::string instance, routing::Color color,
                   std::string address, std::string_view state, std::string reason);

/// verdict: the watchdog's outcome for a service changed; `reason` is the verdict's figures.
Event verdict_event(std::string time, std::string service, std::string instance, watchdog::Outcome outcome,
                    std::string reason);

/// release: a release started (`bgctl release`), with its target, steps (percent) and what each
/// smoke request answered.
Event release_event(std::string time, std::string service, std::string instance, routing::Color color,
                    boost::json::array steps, boost::json::array smoke);

std::string_view outcome_name(watchdog::Outcome o) noexcept;

}  // namespace bgproxy::control
