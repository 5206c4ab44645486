#pragma once
/// bgproxy::weights — basis points, the one unit of green weights and canary steps
/// (10000 = 100 %): reading a percentage, writing one, and the canary-step rule.
/// The configuration, the control protocol and bgctl all go through here, so they accept,
/// refuse and print the same numbers.
/// Thread: any (pure functions).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace bgproxy::weights {

/// 100 % in basis points.
inline constexpr std::uint32_t full_bp = 10000;

/// Why a text is not a percentage.
enum class PercentProblem : std::uint8_t {
  none,
  not_number,    ///< not decimal digits with an optional fraction ("-" allowed in front)
  out_of_range,  ///< below 0 or above 100
  too_precise,   ///< a non-zero digit after the second decimal
};

/// Parses a percentage in [0, 100] with at most two decimals into basis points, exactly (digit
/// by digit, no binary floating point): "12.5" -> 1250, "33.33" -> 3333, "050" -> 5000.
/// The rule is the number's value, not its spelling, as for a YAML or JSON number: "10.250" is
/// 10.25 and "-0" is 0. "+5", ".5", "5.", "1e2", "5%" and surrounding spaces are not numbers.
/// @param problem set to why the text was refused (or `none`), when not null
/// @return basis points in [0, 10000], or nullopt
std::optional<std::uint32_t> parse_percent(std::string_view text, PercentProblem* problem = nullptr) noexcept;

/// Basis points as the shortest exact percentage: 1000 -> "10", 1250 -> "12.5",
/// 3333 -> "33.33", 5 -> "0.05". parse_percent() reads it back to the same value.
std::string format_percent(std::uint32_t bp);

/// Basis points as a percentage value (1250 -> 12.5), for JSON answers and metrics.
constexpr double to_percent(std::uint32_t bp) noexcept { return bp / 100.0; }

/// Which part of the canary-step rule a list breaks. The rule: at least one step, each above 0
/// and above the one before (a step that does not raise the weight would hold for nothing),
/// the last one 100 % (a rollout ends with the target taking everything).
enum class StepProblem : std::uint8_t { empty, zero, not_rising, not_ending_at_full };

struct StepsError {
  StepProblem problem = StepProblem::empty;
  std::size_t index = 0;  ///< the offending step (the last one for not_ending_at_full)
};

/// The problem of `step_bp` as the step after `previous_bp` (0 before the first step), for
/// readers that stop at their first bad item; check_steps() applies it to every step.
constexpr std::optional<StepProblem> next_step_problem(std::uint32_t previous_bp, std::uint32_t step_bp) noexcept {
  if (step_bp == 0) return StepProblem::zero;
  if (step_bp <= previous_bp) return StepProblem::not_rising;
  return std::nullopt;
}

/// Checks a list of canary steps in basis points.
/// @return the first problem in list order (a step's own problem before the end rule), or nullopt
std::optional<StepsError> check_steps(std::span<const std::uint32_t> steps_bp) noexcept;

}  // namespace bgproxy::weights
