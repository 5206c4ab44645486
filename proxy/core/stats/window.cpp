#include "bgproxy/stats/window.hpp"

namespace bgproxy::stats {

double histogram_quantile(const std::array<std::uint64_t, duration_bounds.size() + 1>& buckets, double q) noexcept {
  std::uint64_t total = 0;
  for (auto b : buckets) total += b;
  if (total == 0) return 0;
  const double rank = q * static_cast<double>(total);
  double below = 0;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const double here = static_cast<double>(buckets[i]);
    if (below + here >= rank && here > 0) {
      // The overflow bucket has no upper bound: report its lower bound.
      if (i == duration_bounds.size()) return duration_bounds.back();
      const double low = i == 0 ? 0.0 : duration_bounds[i - 1];
      const double high = duration_bounds[i];
      return low + (high - low) * ((rank - below) / here);
    }
    below += here;
  }
  return duration_bounds.back();
}

ColorWindow window_between(const ColorStats& older, const ColorStats& newer, double seconds) noexcept {
  ColorWindow w;
  std::array<std::uint64_t, duration_bounds.size() + 1> delta{};
  for (std::size_t i = 0; i < delta.size(); ++i) delta[i] = newer.duration_buckets[i] - older.duration_buckets[i];
  for (std::size_t k = 0; k < newer.responses.size(); ++k) w.requests += newer.responses[k] - older.responses[k];
  const auto c5 = static_cast<std::size_t>(CodeClass::c5xx);
  w.errors = newer.responses[c5] - older.responses[c5];
  if (seconds > 0) w.rps = static_cast<double>(w.requests) / seconds;
  if (w.requests > 0) w.error_rate = static_cast<double>(w.errors) / static_cast<double>(w.requests);
  w.p95_seconds = histogram_quantile(delta, 0.95);
  return w;
}

}  // namespace bgproxy::stats
