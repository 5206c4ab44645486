// The sequential watchdog in the control plane (control/core/sequential_track, evidence_json,
// the bgproxy_watchdog_evidence family): what each tick feeds, when the evidence starts again,
// and how status and /metrics show it. Time is injected.
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "bgproxy/config/config.hpp"
#include "control/core/evidence_json.hpp"
#include "control/core/metrics.hpp"
#include "control/core/sequential_track.hpp"
#include "control/core/service_runtime.hpp"

namespace bgproxy::control {
namespace {

constexpr std::size_t blue = 0;
constexpr std::size_t green = 1;
constexpr std::int64_t t0 = 1'000'000;  // the rollout's start, unix ms

config::Service service() {
  config::Service s;
  s.name = "app";
  s.watchdog.method = config::WatchdogMethod::sequential;
  s.watchdog.window = std::chrono::seconds(10);
  return s;
}

ServiceState canary(std::int64_t step_started_ms) {
  ServiceState ss;
  ss.name = "app";
  ss.target = routing::Color::green;
  ss.phase = Phase::canary;
  ss.weights.green_bp = 1000;
  ss.step_started_ms = step_started_ms;
  return ss;
}

/// Adds `n` requests, `errors` of them 503, to a color's cumulative stats.
void add(std::array<stats::ColorStats, 2>& c, std::size_t color, int n, int errors) {
  for (int i = 0; i < n; ++i) c[color].record(i < errors ? 503 : 200, 0.010);
}

TEST(SequentialTrack, FeedsTheDifferenceBetweenTicksAfterTheWarmUp) {
  const auto svc = service();
  std::optional<SequentialTrack> track;
  std::array<stats::ColorStats, 2> cumulative{};
  SequentialInput in{&cumulative, {}, 10};
  add(cumulative, green, 500, 500);  // before the first tick: never fed
  sequential_tick(track, svc, canary(t0), t0 + 1000, in);
  ASSERT_TRUE(track);
  add(cumulative, green, 10, 10);  // inside the warm-up: left out
  sequential_tick(track, svc, canary(t0), t0 + 2000, in);
  EXPECT_EQ(track->analysis.evidence().target_requests, 0u);
  add(cumulative, green, 10, 0);
  add(cumulative, blue, 90, 1);
  sequential_tick(track, svc, canary(t0), t0 + 6000, in);
  const auto ev = track->analysis.evidence();
  EXPECT_EQ(ev.target_requests, 10u);
  EXPECT_EQ(ev.other_requests, 90u);
  EXPECT_EQ(ev.other_errors, 1u);
}

TEST(SequentialTrack, FiveGreenErrorsRollBackAndANewStepDoesNotForgetThem) {
  const auto svc = service();
  std::optional<SequentialTrack> track;
  std::array<stats::ColorStats, 2> cumulative{};
  SequentialInput in{&cumulative, {}, 10};
  sequential_tick(track, svc, canary(t0), t0 + 5000, in);
  add(cumulative, green, 20, 3);
  add(cumulative, blue, 180, 0);
  EXPECT_EQ(sequential_tick(track, svc, canary(t0), t0 + 6000, in).outcome, watchdog::Outcome::inconclusive);
  // The next step starts: the pass evidence starts again, the fail evidence goes on.
  sequential_tick(track, svc, canary(t0 + 6500), t0 + 7000, in);
  add(cumulative, green, 30, 2);
  add(cumulative, blue, 270, 0);
  const auto v = sequential_tick(track, svc, canary(t0 + 6500), t0 + 12000, in);
  EXPECT_EQ(v.outcome, watchdog::Outcome::fail);
  EXPECT_EQ(v.reason, "error_rate_relative evidence 791, mean of the rules 201 >= 100 (alpha 0.01): "
                      "green 5 errors of 50, blue 0 of 450");
}

TEST(SequentialTrack, ANewTargetStartsANewAnalysis) {
  const auto svc = service();
  std::optional<SequentialTrack> track;
  std::array<stats::ColorStats, 2> cumulative{};
  SequentialInput in{&cumulative, {}, 10};
  sequential_tick(track, svc, canary(t0), t0 + 5000, in);
  add(cumulative, green, 20, 3);
  sequential_tick(track, svc, canary(t0), t0 + 6000, in);
  EXPECT_GT(track->analysis.evidence().rules[0].log_bad, 0);
  auto to_blue = canary(t0);
  to_blue.target = routing::Color::blue;
  sequential_tick(track, svc, to_blue, t0 + 7000, in);
  EXPECT_EQ(track->target, routing::Color::blue);
  EXPECT_DOUBLE_EQ(track->analysis.evidence().rules[0].log_bad, 0);
}

TEST(SequentialTrack, InAFleetFeedsTheWindowEachTimeItReachesBackToTheLastFeed) {
  const auto svc = service();  // window 10 s; the windows span 9 s of ticks
  std::optional<SequentialTrack> track;
  SequentialInput in{nullptr, {}, 9};
  in.window[green].requests = 100;
  in.window[blue].requests = 900;
  sequential_tick(track, svc, canary(t0), t0, in);
  for (std::int64_t s = 1; s <= 25; ++s) sequential_tick(track, svc, canary(t0), t0 + s * 1000, in);
  // Fed at +14 s (the first window wholly after the 5 s warm-up) and +23 s: 200 green requests,
  // never the same window twice.
  EXPECT_EQ(track->analysis.evidence().target_requests, 200u);
  // A window that spans no time yet feeds nothing.
  std::optional<SequentialTrack> empty;
  in.window_seconds = 0;
  for (std::int64_t s = 0; s <= 25; ++s) sequential_tick(empty, svc, canary(t0), t0 + s * 1000, in);
  EXPECT_EQ(empty->analysis.evidence().target_requests, 0u);
}

TEST(SequentialTrack, RelativeLatencyEdgeFrozenFromTheOtherColorsWindow) {
  const auto svc = service();
  std::optional<SequentialTrack> track;
  SequentialInput in{nullptr, {}, 10};
  sequential_tick(track, svc, canary(t0), t0, in);
  EXPECT_FALSE(track->analysis.relative_edge_frozen());
  in.window[blue].requests = 1;
  in.window[blue].latency.record(0.100);
  sequential_tick(track, svc, canary(t0), t0 + 1000, in);
  ASSERT_TRUE(track->analysis.relative_edge_frozen());
  EXPECT_NEAR(watchdog::edge_seconds(track->analysis.relative_edge()), 0.152, 0.001);
}

TEST(EvidenceJson, StatusObjectAndItsLines) {
  config::Watchdog w;
  w.method = config::WatchdogMethod::sequential;
  watchdog::SequentialAnalysis a(w, std::chrono::milliseconds(0));
  a.observe(std::chrono::milliseconds(5000), watchdog::Second{{50, 5, 0, 0}, {450, 0, 0, 0}});
  const boost::json::object o = evidence_json(a.evidence());
  EXPECT_EQ(o.at("outcome").as_string(), "fail");
  const auto& rules = o.at("rules").as_array();
  ASSERT_EQ(rules.size(), 4u);
  EXPECT_EQ(rules[1].at("rule").as_string(), "error_rate_relative");
  EXPECT_NEAR(rules[1].at("bad").as_double(), 790.9, 0.1);
  EXPECT_EQ(rules[1].at("verdict").as_string(), "fail");
  EXPECT_NEAR(o.at("error_rate_difference").at("estimate").as_double(), 0.1, 1e-12);
  EXPECT_TRUE(o.at("relative_latency_edge_seconds").is_null());
  const boost::json::value v = o;
  const std::string text = evidence_lines(&v, "  ");
  EXPECT_NE(text.find("  evidence (alpha 0.01): fail, mean BAD 201 (fail at 100), pass when every rule's GOOD "
                      "reaches 100\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("    error_rate_relative         791"), std::string::npos) << text;
  EXPECT_NE(text.find("  error rate, target - other: +0.1000 (anytime 99% interval "), std::string::npos) << text;
  EXPECT_EQ(evidence_lines(nullptr, "  "), "");
}

TEST(EvidenceMetric, ExportedPerRuleAndDirectionWhileWatched) {
  config::Config cfg;
  cfg.services.push_back(service());
  State state;
  state.services.push_back(canary(t0));
  std::vector<ServiceRuntime> runtime(1);
  EXPECT_EQ(render_metrics(cfg, state, runtime, {}, nullptr, {}).find("bgproxy_watchdog_evidence"), std::string::npos);
  std::array<stats::ColorStats, 2> cumulative{};
  SequentialInput in{&cumulative, {}, 10};
  sequential_tick(runtime[0].sequential, cfg.services[0], state.services[0], t0 + 5000, in);
  add(cumulative, green, 40, 4);
  add(cumulative, blue, 360, 0);
  sequential_tick(runtime[0].sequential, cfg.services[0], state.services[0], t0 + 6000, in);
  const std::string text = render_metrics(cfg, state, runtime, {}, nullptr, {});
  EXPECT_NE(text.find("# TYPE bgproxy_watchdog_evidence gauge"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(bgproxy_watchdog_evidence{service="app",rule="error_rate_relative",direction="bad"} 164.399)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(bgproxy_watchdog_evidence{service="app",rule="latency",direction="good"} )"),
            std::string::npos);
}

}  // namespace
}  // namespace bgproxy::control
