#pragma once
/// bgproxy::control — the rollout loop's decision for one service on one tick
/// (README "Canary and automatic rollback"): roll back on a failing verdict, advance a canary step once its
/// interval has passed with a passing verdict, promote after the bake time.
/// Pure: the caller passes the verdict and the wall time.
/// Thread: control.

#include <cstdint>
#include <optional>
#include <string>

#include "bgproxy/config/config.hpp"
#include "control/core/state.hpp"
#include "bgproxy/watchdog/policy.hpp"

namespace bgproxy::control {

struct RolloutStep {
  enum class Kind : std::uint8_t { hold, advance, promote, rollback };
  Kind kind = Kind::hold;
  std::string reason;  ///< for the history and the log: "watchdog: ...", "canary: ..."
};

/// True while the watchdog watches the service: a target with a share in (0, 100),
/// or baking after it reached 100.
bool under_watch(const ServiceState& ss) noexcept;

/// The target color's share in basis points (0 without a target).
std::uint32_t target_share(const ServiceState& ss) noexcept;

/// Green weight (basis points) that gives `target` the share `share_bp`.
std::uint32_t green_for(routing::Color target, std::uint32_t share_bp) noexcept;

/// @param verdict nullopt when the service's watchdog is disabled
/// @param now_ms wall time, unix milliseconds
RolloutStep next_step(const config::Service& svc, const ServiceState& ss,
                      const std::optional<watchdog::Verdict>& verdict, std::int64_t now_ms);

}  // namespace bgproxy::control
