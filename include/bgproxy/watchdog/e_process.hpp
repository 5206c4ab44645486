#pragma once
/// bgproxy::watchdog — the two kinds of e-process the sequential watchdog (SPEC §16) is made of.
/// An e-process E_t ≥ 0 has E[E_t] ≤ 1 under its null at every stopping time, so by Ville's
/// inequality P(∃t: E_t ≥ 1/α) ≤ α: it may be looked at every second for as long as one likes.
/// Both keep ln E, which stays finite where E itself would overflow. Pure.
/// Thread: one owner.

#include <array>
#include <cstdint>

namespace bgproxy::watchdog {

/// Wald's sequential probability ratio for a share of events among trials (errors among
/// requests, or requests slower than an edge): Λ = Σ e·ln(p1/p0) + (n − e)·ln((1−p1)/(1−p0)).
/// exp(Λ) is an e-process under every share p ≤ p0 ("bad" evidence: the share is above p0), and
/// exp(−Λ) under every p ≥ p1 ("good" evidence: it is below p1).
class Sprt {
 public:
  /// @param p0, p1 with 0 < p0 < p1 < 1
  Sprt(double p0, double p1) noexcept;
  void observe(std::uint64_t events, std::uint64_t trials) noexcept;
  double log_lambda() const noexcept { return log_lambda_; }
  void reset() noexcept { log_lambda_ = 0; }

 private:
  double per_event_;
  double per_non_event_;
  double log_lambda_ = 0;
};

/// Lindon & Malek (NeurIPS 2022): whether the target's events are more (or less) frequent than the
/// other color's by a ratio, from the counts alone. Under a ratio r an event of a second in which
/// the target had the share ρ of the requests is the target's with probability
/// q(r) = ρr / (ρr + 1 − ρ); each second adds e_t·ln(q(r_k)/q(r0)) + e_o·ln((1−q(r_k))/(1−q(r0)))
/// to the log likelihood ratio of each alternative r_k of a grid, and E = mean_k exp(logL_k).
/// Only where the events came from matters, so traffic that rises and falls cancels out.
/// Upward (alternatives r0·{1.25, 1.5, 2, 3, 5, 10}): an e-process under every r ≤ r0.
/// Downward (alternatives r0/{...}): an e-process under every r ≥ r0.
class RatioMixture {
 public:
  static constexpr std::array<double, 6> grid{1.25, 1.5, 2, 3, 5, 10};
  enum class Direction : std::uint8_t { up, down };

  RatioMixture(double r0, Direction direction) noexcept;
  /// @param rho the target's share of the second's requests, in (0, 1); other values add nothing
  void observe(double rho, std::uint64_t target_events, std::uint64_t other_events) noexcept;
  /// ln of the mixture (log-sum-exp over the grid).
  double log_e() const noexcept;

 private:
  double r0_;
  std::array<double, grid.size()> r_{};
  std::array<double, grid.size()> log_l_{};
};

}  // namespace bgproxy::watchdog
