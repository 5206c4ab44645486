#pragma once
/// bgproxy::control — runtime state that survives restarts (the state file): per
/// service weights, rollout phase, server admin states, and the change history.
/// The model and its JSON form are pure; a StateStore (state_store.hpp) keeps it.
/// Thread: control.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include "bgproxy/routing/routing_table.hpp"

namespace bgproxy::control {

enum class Phase : std::uint8_t { idle, canary, baking, promoted, rolled_back, paused };
std::string_view phase_name(Phase p) noexcept;
std::optional<Phase> parse_phase(std::string_view name) noexcept;

enum class AdminState : std::uint8_t { enabled, disabled, draining };

struct Weights {
  std::uint32_t green_bp = 0;  ///< blue = 10000 - green_bp
  friend bool operator==(const Weights&, const Weights&) = default;
};

/// The color these weights send nothing to (blue 100 % → green); nullopt when both get traffic.
std::optional<routing::Color> unweighted_color(const Weights& w) noexcept;

struct HistoryEntry {
  std::string time;     ///< RFC 3339 UTC with milliseconds: "2026-11-24T21:30:00.123Z"
  std::string service;
  /// The bare verb, so that scripts can filter on it (README "bgctl walkthrough"): "split",
  /// "switch", "rollback", "canary" (also for the rollout loop's advance and promote), "server".
  std::string command;
  /// What the verb was given: {"green":10}, {"color":"green"}, {} for rollback,
  /// {"action":"start","target":"green","steps":[10,50,100],"interval_seconds":60},
  /// {"action":"disable","address":"127.0.0.1:5006"}; "force":true when forced.
  boost::json::object args;
  std::uint32_t uid = 0;
  std::int32_t pid = 0;
  std::string reason = "manual";  ///< manual | watchdog: ... | health: ... | canary: ...
  Weights before;
  Weights after;
  /// In a fleet (README "Running a fleet"): the instance that made the change; empty otherwise.
  std::string instance = {};
  /// Made on this instance alone while the cluster store was out of reach (`bgctl --local`, or a
  /// watchdog rollback during a partition).
  bool local = false;
  friend bool operator==(const HistoryEntry&, const HistoryEntry&) = default;
};

struct ServiceState {
  std::string name;
  Weights weights;
  Weights stable;  ///< where `rollback` returns to: the weights before the current rollout began
  std::optional<routing::Color> target;  ///< the color whose weight was last raised
  Phase phase = Phase::idle;
  std::uint32_t step = 0;  ///< canary step index
  std::string reason;      ///< why the phase is what it is (e.g. the rollback reason)
  std::map<std::string, AdminState> servers;  ///< by address as written; absent = enabled
  /// The running canary (`bgctl canary start`): target weights per step, in basis points of
  /// the target color; empty when the rollout is a manual split or switch.
  std::vector<std::uint32_t> canary_steps_bp;
  std::int64_t canary_interval_ms = 0;
  /// Unix time (ms) the current canary step or bake began; 0 when none. Wall time, so a
  /// restart resumes a step where it was.
  std::int64_t step_started_ms = 0;
  friend bool operator==(const ServiceState&, const ServiceState&) = default;
};

struct State {
  std::vector<ServiceState> services;
  std::deque<HistoryEntry> history;  ///< oldest first, at most max_history entries
  static constexpr std::size_t max_history = 1000;
  friend bool operator==(const State&, const State&) = default;

  /// Appends and drops the oldest beyond max_history.
  void record(HistoryEntry e);
  ServiceState* find(std::string_view service) noexcept;
};

/// A percentage for a history entry's args: whole ones as integers (10), others as they are (12.5).
boost::json::value percent_arg(std::uint32_t bp);

/// A history entry's command as written before issue 11: verb and arguments in one text, no args.
struct HistoryCommand {
  std::string command;
  boost::json::object args;
};
/// Splits such a text into the bare verb and its args: "split green 10" → split {"green":10},
/// "switch blue" → switch {"color":"blue"}, "canary start green 10,50,100" → canary
/// {"action":"start","target":"green","steps":[10,50,100]}, "canary pause|resume|abort|advance"
/// → canary {"action":...}, "promote" → canary {"action":"promote"}, "server drain ADDRESS" →
/// server {"action":"drain","address":ADDRESS}. Any other text (as "rollback") stays the command,
/// with no args. from_json applies it to every history entry without "args".
HistoryCommand parse_legacy_command(std::string_view text);

/// {"version":1,"services":[...],"history":[...]} — field names as the control answers use them.
std::string to_json(const State& s);
boost::system::result<State, std::string> from_json(std::string_view text);

}  // namespace bgproxy::control
