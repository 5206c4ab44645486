#include "bgproxy/stats/window.hpp"

namespace bgproxy::stats {

ColorWindow window_between(const ColorStats& older, const ColorStats& newer, double seconds) noexcept {
  ColorWindow w;
  for (std::size_t k = 0; k < newer.responses.size(); ++k) w.requests += newer.responses[k] - older.responses[k];
  const auto c5 = static_cast<std::size_t>(CodeClass::c5xx);
  w.errors = newer.responses[c5] - older.responses[c5];
  if (seconds > 0) w.rps = static_cast<double>(w.requests) / seconds;
  if (w.requests > 0) w.error_rate = static_cast<double>(w.errors) / static_cast<double>(w.requests);
  auto latency = newer.latency;
  latency.subtract(older.latency);
  w.p95_seconds = latency.quantile(0.95);
  return w;
}

}  // namespace bgproxy::stats
