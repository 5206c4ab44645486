#include "bgproxy/watchdog/e_process.hpp"

#include <algorithm>
#include <cmath>

namespace bgproxy::watchdog {

Sprt::Sprt(double p0, double p1) noexcept
    : per_event_(std::log(p1 / p0)), per_non_event_(std::log((1 - p1) / (1 - p0))) {}

void Sprt::observe(std::uint64_t events, std::uint64_t trials) noexcept {
  events = std::min(events, trials);
  log_lambda_ += static_cast<double>(events) * per_event_ + static_cast<double>(trials - events) * per_non_event_;
}

RatioMixture::RatioMixture(double r0, Direction direction) noexcept : r0_(r0) {
  for (std::size_t k = 0; k < grid.size(); ++k) r_[k] = direction == Direction::up ? r0 * grid[k] : r0 / grid[k];
}

void RatioMixture::observe(double rho, std::uint64_t target_events, std::uint64_t other_events) noexcept {
  // A second in which one color had every request (or none) says nothing about where events go.
  if (!(rho > 0 && rho < 1) || target_events + other_events == 0) return;
  const auto q = [rho](double r) { return rho * r / (rho * r + 1 - rho); };
  const double q0 = q(r0_);
  const auto et = static_cast<double>(target_events);
  const auto eo = static_cast<double>(other_events);
  for (std::size_t k = 0; k < grid.size(); ++k) {
    const double qk = q(r_[k]);
    log_l_[k] += et * std::log(qk / q0) + eo * std::log((1 - qk) / (1 - q0));
  }
}

double RatioMixture::log_e() const noexcept {
  const double top = *std::max_element(log_l_.begin(), log_l_.end());
  double sum = 0;
  for (const double l : log_l_) sum += std::exp(l - top);
  return top + std::log(sum / static_cast<double>(grid.size()));
}

}  // namespace bgproxy::watchdog
