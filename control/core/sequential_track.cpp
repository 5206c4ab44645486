#include "control/core/sequential_track.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace bgproxy::control {

namespace {

using std::chrono::milliseconds;

bool went_back(const stats::ColorStats& older, const stats::ColorStats& newer) {
  std::uint64_t before = 0, after = 0;
  for (std::size_t i = 0; i < older.responses.size(); ++i) {
    before += older.responses[i];
    after += newer.responses[i];
  }
  return after < before;
}

}  // namespace

watchdog::Verdict sequential_tick(std::optional<SequentialTrack>& track, const config::Service& svc,
                                  const ServiceState& ss, std::int64_t now_ms, const SequentialInput& in) {
  const routing::Color target = *ss.target;
  const std::int64_t step_start = ss.step_started_ms != 0 ? ss.step_started_ms : now_ms;
  if (!track || track->target != target) {
    track.emplace(SequentialTrack{watchdog::SequentialAnalysis(svc.watchdog, milliseconds(step_start)), target,
                                  ss.step_started_ms, std::nullopt, now_ms});
  } else if (track->step_started_ms != ss.step_started_ms) {
    track->analysis.start_step(milliseconds(step_start));
    track->step_started_ms = ss.step_started_ms;
  }
  auto& t = *track;
  const auto ti = static_cast<std::size_t>(target);
  const auto oi = static_cast<std::size_t>(routing::other(target));

  // The relative latency edge comes from the other color's figures only, and only seconds after
  // it is frozen are tested against it.
  if (!t.analysis.relative_edge_frozen() && in.window[oi].requests > 0) {
    t.analysis.freeze_relative_edge(stats::figures_of(in.window[oi], in.window_seconds).p95_seconds);
  }

  const auto counts = [&t](const stats::WindowCounts& c) {
    return watchdog::second_counts(c, t.analysis.latency_edge(), t.analysis.relative_edge());
  };
  if (in.cumulative) {
    const auto& now = *in.cumulative;
    if (t.previous && !went_back((*t.previous)[ti], now[ti]) && !went_back((*t.previous)[oi], now[oi])) {
      const watchdog::Second s{counts(stats::counts_between((*t.previous)[ti], now[ti])),
                               counts(stats::counts_between((*t.previous)[oi], now[oi]))};
      t.analysis.observe(milliseconds(now_ms), s);
    }
    t.previous = now;
  } else if (const auto span_ms = std::llround(in.window_seconds * 1000);
             span_ms > 0 && now_ms - span_ms >= std::max(t.fed_window_ms, t.analysis.counting_from().count())) {
    // The window reaches back to the previous feed (or the warm-up's end): no request is counted
    // twice, none after the warm-up is left out (a window spans whole ticks, often a little less
    // than its configured length), and none of the warm-up is counted.
    t.analysis.observe(milliseconds(now_ms), watchdog::Second{counts(in.window[ti]), counts(in.window[oi])});
    t.fed_window_ms = now_ms;
  }
  return t.analysis.verdict(routing::color_name(target), routing::color_name(routing::other(target)));
}

}  // namespace bgproxy::control
