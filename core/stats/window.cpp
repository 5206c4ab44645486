#include "bgproxy/stats/window.hpp"

namespace bgproxy::stats {

void WindowCounts::add(const WindowCounts& o) noexcept {
  requests += o.requests;
  errors += o.errors;
  latency.merge(o.latency);
  streaming_calls += o.streaming_calls;
}

WindowCounts counts_between(const ColorStats& older, const ColorStats& newer) noexcept {
  WindowCounts c;
  for (std::size_t k = 0; k < newer.responses.size(); ++k) c.requests += newer.responses[k] - older.responses[k];
  const auto c5 = static_cast<std::size_t>(CodeClass::c5xx);
  c.errors = newer.responses[c5] - older.responses[c5];
  c.latency = newer.latency;
  c.latency.subtract(older.latency);
  c.streaming_calls = newer.streaming_calls - older.streaming_calls;
  return c;
}

ColorWindow figures_of(const WindowCounts& c, double seconds) noexcept {
  ColorWindow w;
  w.requests = c.requests;
  w.errors = c.errors;
  if (seconds > 0) w.rps = static_cast<double>(w.requests) / seconds;
  if (w.requests > 0) w.error_rate = static_cast<double>(w.errors) / static_cast<double>(w.requests);
  w.p95_seconds = c.latency.quantile(0.95);
  w.streaming_calls = c.streaming_calls;
  return w;
}

ColorWindow window_between(const ColorStats& older, const ColorStats& newer, double seconds) noexcept {
  return figures_of(counts_between(older, newer), seconds);
}

}  // namespace bgproxy::stats
