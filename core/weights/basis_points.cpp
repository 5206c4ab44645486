// Basis points: the percentage reader, writer and canary-step rule that the configuration,
// the control protocol and bgctl share.
#include "bgproxy/weights/basis_points.hpp"

#include <algorithm>

namespace bgproxy::weights {
namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_zero_digit(char c) noexcept { return c == '0'; }

std::optional<std::uint32_t> refuse(PercentProblem why, PercentProblem* problem) noexcept {
  if (problem != nullptr) *problem = why;
  return std::nullopt;
}

}  // namespace

// Compared and converted digit by digit, so any length is safe and "0.29" is 29 basis points,
// never 28.999...: leading zeros and zeros after the second decimal do not change the value.
std::optional<std::uint32_t> parse_percent(std::string_view text, PercentProblem* problem) noexcept {
  bool negative = false;
  if (!text.empty() && text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  const auto dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (whole.empty() || !std::all_of(whole.begin(), whole.end(), is_digit))
    return refuse(PercentProblem::not_number, problem);
  if (dot != std::string_view::npos && (frac.empty() || !std::all_of(frac.begin(), frac.end(), is_digit)))
    return refuse(PercentProblem::not_number, problem);

  while (whole.size() > 1 && whole.front() == '0') whole.remove_prefix(1);
  const bool frac_is_zero = std::all_of(frac.begin(), frac.end(), is_zero_digit);
  if (negative && !(whole == "0" && frac_is_zero)) return refuse(PercentProblem::out_of_range, problem);
  if (whole.size() > 3) return refuse(PercentProblem::out_of_range, problem);
  std::uint32_t units = 0;
  for (char c : whole) units = units * 10 + static_cast<std::uint32_t>(c - '0');
  if (units > 100 || (units == 100 && !frac_is_zero)) return refuse(PercentProblem::out_of_range, problem);

  if (frac.size() > 2 && !std::all_of(frac.begin() + 2, frac.end(), is_zero_digit))
    return refuse(PercentProblem::too_precise, problem);
  std::uint32_t hundredths = 0;
  if (!frac.empty()) hundredths += static_cast<std::uint32_t>(frac[0] - '0') * 10;
  if (frac.size() > 1) hundredths += static_cast<std::uint32_t>(frac[1] - '0');
  if (problem != nullptr) *problem = PercentProblem::none;
  return units * 100 + hundredths;
}

std::string format_percent(std::uint32_t bp) {
  std::string s = std::to_string(bp / 100);
  const std::uint32_t frac = bp % 100;
  if (frac != 0) {
    s += '.';
    s += static_cast<char>('0' + frac / 10);
    if (frac % 10 != 0) s += static_cast<char>('0' + frac % 10);
  }
  return s;
}

std::optional<StepsError> check_steps(std::span<const std::uint32_t> steps_bp) noexcept {
  if (steps_bp.empty()) return StepsError{StepProblem::empty, 0};
  std::uint32_t previous = 0;
  for (std::size_t i = 0; i < steps_bp.size(); ++i) {
    if (const auto p = next_step_problem(previous, steps_bp[i])) return StepsError{*p, i};
    previous = steps_bp[i];
  }
  if (steps_bp.back() != full_bp) return StepsError{StepProblem::not_ending_at_full, steps_bp.size() - 1};
  return std::nullopt;
}

}  // namespace bgproxy::weights
