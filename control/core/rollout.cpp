#include "control/core/rollout.hpp"

#include "bgproxy/weights/basis_points.hpp"

namespace bgproxy::control {

std::uint32_t target_share(const ServiceState& ss) noexcept {
  if (!ss.target) return 0;
  return *ss.target == routing::Color::green ? ss.weights.green_bp : weights::full_bp - ss.weights.green_bp;
}

std::uint32_t green_for(routing::Color target, std::uint32_t share_bp) noexcept {
  return target == routing::Color::green ? share_bp : weights::full_bp - share_bp;
}

bool under_watch(const ServiceState& ss) noexcept {
  if (!ss.target) return false;
  switch (ss.phase) {
    case Phase::canary:
    case Phase::paused:
      return target_share(ss) > 0;
    case Phase::baking:
      return true;
    case Phase::idle:
    case Phase::promoted:
    case Phase::rolled_back:
      return false;
  }
  return false;
}

RolloutStep next_step(const config::Service& svc, const ServiceState& ss,
                      const std::optional<watchdog::Verdict>& verdict, std::int64_t now_ms) {
  RolloutStep step;
  if (!under_watch(ss)) return step;
  if (verdict && verdict->outcome == watchdog::Outcome::fail) {
    step.kind = RolloutStep::Kind::rollback;
    step.reason = "watchdog: " + verdict->reason;
    return step;
  }
  const auto elapsed = now_ms - ss.step_started_ms;
  switch (ss.phase) {
    case Phase::canary: {
      if (ss.canary_steps_bp.empty() || elapsed < ss.canary_interval_ms) return step;
      // No traffic, no progress: only a passing verdict with enough requests advances.
      if (verdict && verdict->outcome != watchdog::Outcome::pass) return step;
      step.kind = RolloutStep::Kind::advance;
      step.reason = "canary: step " + std::to_string(ss.step + 2) + " of " +
                    std::to_string(ss.canary_steps_bp.size()) +
                    (verdict ? " after " + verdict->reason : std::string(" (watchdog off)"));
      return step;
    }
    case Phase::baking:
      if (elapsed < svc.watchdog.bake_time.count()) return step;
      step.kind = RolloutStep::Kind::promote;
      step.reason = "canary: promoted after baking " + std::to_string(svc.watchdog.bake_time.count() / 1000) + "s";
      return step;
    case Phase::paused:
    case Phase::idle:
    case Phase::promoted:
    case Phase::rolled_back:
      return step;
  }
  return step;
}

}  // namespace bgproxy::control
