#pragma once
/// bgproxy::control — what a control command does to the runtime state: the
/// checks that may refuse it, the new weights, rollout target and history entry.
/// Pure (no I/O, no clock: the caller passes the time); the server persists a
/// decision's new state, publishes the routing table built from it, then commits.
/// Thread: control.

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "bgproxy/config/config.hpp"
#include "control/core/command.hpp"
#include "control/core/state.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "control/core/rollout.hpp"

namespace bgproxy::control {

/// A service's shadow comparison as the gate of `canary start` and `release` reads it
/// (watchdog.max_shadow_mismatch_rate, README "Shadow traffic").
struct ShadowGate {
  routing::Color color = routing::Color::green;  ///< the color the shadows went to
  std::uint64_t pairs = 0;                       ///< compared cross-color pairs
  double mismatch_rate = 0;
  std::string fields;  ///< the reported fields, comma-separated
};

/// Who sent a command (SO_PEERCRED of the control-socket peer).
struct Peer {
  std::uint32_t uid = 0;
  std::int32_t pid = 0;
};

class Controller {
 public:
  /// @param cfg must outlive the controller (a reload replaces both together)
  /// @param state already reconciled with `cfg`
  Controller(const config::Config& cfg, State state);

  /// Every service at its `initial` weights, no history.
  static State initial_state(const config::Config& cfg);
  /// Keeps what `loaded` says about services still configured (by name), starts
  /// the others from `initial`, and drops admin states of servers no longer configured.
  static State reconcile(const config::Config& cfg, const State& loaded);

  struct Decision {
    std::string error;          ///< non-empty: refused, nothing changes
    std::optional<State> next;  ///< a change: persist, publish, then commit()
    int service = -1;           ///< the service the command addressed, if any
    bool rollback = false;      ///< the change is a rollback (bgproxy_rollbacks_total)
    bool switched = false;      ///< the weights changed (bgproxy_switches_total)
  };

  /// @param now RFC 3339 UTC time for the history entry
  /// @param now_ms the same instant in unix milliseconds (canary step and bake timing)
  Decision decide(const Command& c, const Peer& peer, std::string_view now, std::int64_t now_ms = 0) const;

  /// Applies what the rollout loop decided for `service` (advance, promote, rollback).
  Decision apply_rollout(int service, const RolloutStep& step, const Peer& peer, std::string_view now,
                         std::int64_t now_ms) const;
  /// `release` (README "Release in one command"): the canary of `canary start` toward the color
  /// `release_target` names, recorded as "release" with what the smoke test answered.
  /// decide() gives the same verdict with no smoke results, before the smoke test runs.
  /// @param smoke per path {"path","status"}, for the history
  Decision release(const Command& c, int service, const Peer& peer, std::string_view now, std::int64_t now_ms,
                   boost::json::array smoke) const;
  /// The color a release would move traffic to: `c.release_to` or the idle one, which must have
  /// no traffic, a usable server, and no canary running. nullopt with `error` set otherwise.
  std::optional<routing::Color> release_target(const Command& c, int service, std::string& error) const;
  void commit(State s) { state_ = std::move(s); }
  /// Health by server id (routing::enumerate_servers order); absent = healthy.
  void set_health(std::vector<bool> up) { healthy_ = std::move(up); }
  /// The shadow comparisons by service (absent or nullopt: none to gate on).
  void set_shadow_gates(std::vector<std::optional<ShadowGate>> gates) { shadow_gates_ = std::move(gates); }
  const State& state() const noexcept { return state_; }

  /// The routing snapshot for the current state: weights, servers enabled unless
  /// an operator disabled or is draining them, healthy as set_health() said.
  routing::RoutingTable table(std::uint64_t version) const;

  /// @return the service index, or -1 with `error` set ("unknown service \"x\"", or a
  /// name is needed because there are several)
  int resolve_service(std::string_view name, std::string& error) const;

  const config::Config& config() const noexcept { return *cfg_; }

 private:
  Decision set_weight(const Command& c, int service, std::uint32_t green_bp, const Peer& peer,
                      std::string_view now, std::int64_t now_ms) const;
  /// @param command, args the history entry's: "rollback" {} or "canary" {"action":"abort"}
  Decision rollback(int service, const Peer& peer, std::string_view now, std::string_view reason,
                    std::string_view command, boost::json::object args) const;
  /// The canary of `canary start` and `release`: the state and its history entry `command` with
  /// `args` followed by the target, steps and interval.
  Decision start_canary(int service, routing::Color target, const Command& c, const Peer& peer, std::string_view now,
                        std::int64_t now_ms, std::string command, boost::json::object args) const;
  Decision canary(const Command& c, int service, const Peer& peer, std::string_view now,
                  std::int64_t now_ms) const;
  Decision set_server(const Command& c, int service, const Peer& peer, std::string_view now) const;
  bool color_has_usable_server(int service, routing::Color color) const;
  /// Why traffic may not move to `target` yet: its shadow mismatch rate is above the service's
  /// watchdog.max_shadow_mismatch_rate (empty: it may, or `force`).
  std::string shadow_gate_error(int service, routing::Color target, bool force) const;

  const config::Config* cfg_;  ///< a pointer so a reload can assign a whole new controller
  State state_;
  std::vector<bool> healthy_;
  std::vector<std::optional<ShadowGate>> shadow_gates_;
};

/// Server state as `bgctl health` names it: "up", "down", "draining" or "disabled".
std::string_view server_state_name(AdminState admin, bool healthy) noexcept;

}  // namespace bgproxy::control
