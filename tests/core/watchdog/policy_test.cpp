#include "bgproxy/watchdog/policy.hpp"

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "bgproxy/config/config.hpp"

namespace bgproxy::watchdog {
namespace {

using namespace std::chrono_literals;

// Defaults: window 30s, min_requests 20, max_error_rate 0.05, max_p95 2s, delta 0.02, ratio 1.5.
config::Watchdog policy() { return config::Watchdog{}; }

Figures fig(std::uint64_t n, double error_rate, double p95) { return Figures{n, error_rate, p95}; }

const Figures no_other{};  // below min_requests: relative rules off
const Figures healthy_blue = fig(1000, 0.0, 0.010);

Verdict eval(const Figures& target, const Figures& other = no_other, const config::Watchdog& p = policy()) {
  return evaluate(target, other, p, "blue");
}

// -- inconclusive --------------------------------------------------------------------------------

TEST(WatchdogPolicy, BelowMinRequestsIsInconclusive) {
  const Verdict v = eval(fig(12, 0.0, 0.004));
  EXPECT_EQ(v.outcome, Outcome::inconclusive);
  EXPECT_EQ(v.reason, "inconclusive: 12 requests < min_requests 20 (window 30s)");
}

TEST(WatchdogPolicy, InconclusiveBeatsTerribleFigures) {
  for (const Figures& other : {no_other, healthy_blue}) {
    const Verdict v = eval(fig(19, 1.0, 3600.0), other);
    EXPECT_EQ(v.outcome, Outcome::inconclusive);
    EXPECT_EQ(v.reason, "inconclusive: 19 requests < min_requests 20 (window 30s)");
  }
  const Verdict none = eval(fig(0, 0, 0), healthy_blue);
  EXPECT_EQ(none.outcome, Outcome::inconclusive);
  EXPECT_EQ(none.reason, "inconclusive: 0 requests < min_requests 20 (window 30s)");
}

TEST(WatchdogPolicy, ExactlyMinRequestsIsDecided) {
  EXPECT_EQ(eval(fig(20, 0.0, 0.004)).outcome, Outcome::pass);
  EXPECT_EQ(eval(fig(20, 0.5, 0.004)).outcome, Outcome::fail);
}

TEST(WatchdogPolicy, MinRequestsZeroDecidesEvenWithoutTraffic) {
  auto p = policy();
  p.min_requests = 0;
  const Verdict v = eval(fig(0, 0, 0), no_other, p);
  EXPECT_EQ(v.outcome, Outcome::pass);
  EXPECT_EQ(v.reason, "pass: error_rate 0.000, p95 0.000s (n=0, window 30s)");
}

// -- pass ------------------------------------------------------------------------------------

TEST(WatchdogPolicy, HealthyPasses) {
  const Verdict v = eval(fig(120, 0.0, 0.004), healthy_blue);
  EXPECT_EQ(v.outcome, Outcome::pass);
  EXPECT_EQ(v.reason, "pass: error_rate 0.000, p95 0.004s (n=120, window 30s)");
}

// -- absolute error rate ---------------------------------------------------------------------

TEST(WatchdogPolicy, ErrorRateAboveMaxFails) {
  const Verdict v = eval(fig(412, 0.213, 0.004));
  EXPECT_EQ(v.outcome, Outcome::fail);
  EXPECT_EQ(v.reason, "error_rate 0.213 > 0.05 (n=412, window 30s)");
}

TEST(WatchdogPolicy, ErrorRateBoundary) {
  // 1 error in 20 is exactly 0.05: a pass (strict >).
  EXPECT_EQ(eval(fig(20, 1.0 / 20, 0.004)).outcome, Outcome::pass);
  EXPECT_EQ(eval(fig(100, 0.05, 0.004)).outcome, Outcome::pass);
  const Verdict above = eval(fig(10000, 501.0 / 10000, 0.004));
  EXPECT_EQ(above.outcome, Outcome::fail);
  EXPECT_EQ(above.reason, "error_rate 0.050 > 0.05 (n=10000, window 30s)");
}

// -- absolute p95 ----------------------------------------------------------------------------

TEST(WatchdogPolicy, P95AboveMaxFails) {
  auto p = policy();
  p.max_p95 = 1s;
  p.window = 10s;
  const Verdict v = eval(fig(80, 0.0, 1.512), no_other, p);
  EXPECT_EQ(v.outcome, Outcome::fail);
  EXPECT_EQ(v.reason, "p95 1.512s > 1s (n=80, window 10s)");
}

TEST(WatchdogPolicy, P95Boundary) {
  auto p = policy();
  p.max_p95 = 300ms;
  EXPECT_EQ(eval(fig(50, 0.0, 0.3), no_other, p).outcome, Outcome::pass);
  const Verdict above = eval(fig(50, 0.0, 0.3001), no_other, p);
  EXPECT_EQ(above.outcome, Outcome::fail);
  EXPECT_EQ(above.reason, "p95 0.300s > 0.3s (n=50, window 30s)");
  EXPECT_EQ(eval(fig(50, 0.0, 2.0)).outcome, Outcome::pass);  // default 2s
  EXPECT_EQ(eval(fig(50, 0.0, 2.001)).outcome, Outcome::fail);
}

TEST(WatchdogPolicy, ErrorRateIsReportedBeforeP95) {
  auto p = policy();
  p.max_p95 = 1s;
  const Verdict v = eval(fig(100, 0.2, 5.0), no_other, p);
  EXPECT_EQ(v.outcome, Outcome::fail);
  EXPECT_EQ(v.reason, "error_rate 0.200 > 0.05 (n=100, window 30s)");
}

// -- relative error rate ---------------------------------------------------------------------

TEST(WatchdogPolicy, ErrorRateDeltaFails) {
  auto p = policy();
  p.max_error_rate = 0.10;
  const Verdict v = eval(fig(200, 0.08, 0.010), fig(200, 0.03, 0.010), p);
  EXPECT_EQ(v.outcome, Outcome::fail);
  EXPECT_EQ(v.reason, "error_rate 0.080 exceeds blue's 0.030 by more than 0.02 (n=200, window 30s)");
}

TEST(WatchdogPolicy, ErrorRateDeltaBoundaryIsAPass) {
  auto p = policy();
  p.max_error_rate = 0.10;
  // 0.05 - 0.03 == 0.020000000000000004 in double: still exactly the threshold.
  EXPECT_EQ(eval(fig(200, 0.05, 0.010), fig(200, 0.03, 0.010), p).outcome, Outcome::pass);
  EXPECT_EQ(eval(fig(1000, 0.07, 0.010), fig(1000, 0.05, 0.010), p).outcome, Outcome::pass);
  EXPECT_EQ(eval(fig(1000, 0.09, 0.010), fig(1000, 0.07, 0.010), p).outcome, Outcome::pass);
  // As computed from counts: 10/200 vs 6/200.
  EXPECT_EQ(eval(fig(200, 10.0 / 200, 0.010), fig(200, 6.0 / 200, 0.010), p).outcome, Outcome::pass);
  // Just above.
  EXPECT_EQ(eval(fig(1000, 0.0501, 0.010), fig(1000, 0.03, 0.010), p).outcome, Outcome::fail);
  EXPECT_EQ(eval(fig(10000, 501.0 / 10000, 0.010), fig(10000, 300.0 / 10000, 0.010), p).outcome,
            Outcome::fail);
}

TEST(WatchdogPolicy, TargetBetterThanOtherNeverFailsByDelta) {
  auto p = policy();
  p.max_error_rate = 0.5;
  EXPECT_EQ(eval(fig(100, 0.0, 0.010), fig(100, 0.4, 0.010), p).outcome, Outcome::pass);
}

// Issue 5: blue at 3 % errors, green at 8 % with max_error_rate 0.10 and delta 0.02 -> rolled back
// by the delta rule; green at 4 % is not.
TEST(WatchdogPolicy, Issue5RelativeRuleExamples) {
  auto p = policy();
  p.max_error_rate = 0.10;
  p.max_error_rate_delta = 0.02;
  const Figures blue = fig(400, 0.03, 0.010);
  const Verdict bad = evaluate(fig(400, 0.08, 0.010), blue, p, "blue");
  EXPECT_EQ(bad.outcome, Outcome::fail);
  EXPECT_EQ(bad.reason, "error_rate 0.080 exceeds blue's 0.030 by more than 0.02 (n=400, window 30s)");
  const Verdict fine = evaluate(fig(400, 0.04, 0.010), blue, p, "blue");
  EXPECT_EQ(fine.outcome, Outcome::pass);
  EXPECT_EQ(fine.reason, "pass: error_rate 0.040, p95 0.010s (n=400, window 30s)");
}

// -- relative p95 ----------------------------------------------------------------------------

TEST(WatchdogPolicy, P95RatioFails) {
  const Verdict v = eval(fig(200, 0.0, 0.900), fig(200, 0.0, 0.300));
  EXPECT_EQ(v.outcome, Outcome::fail);
  EXPECT_EQ(v.reason, "p95 0.900s > 1.5 x blue's 0.300s and blue's + 50ms (n=200, window 30s)");
}

TEST(WatchdogPolicy, P95RatioNeedsBothConditions) {
  // Ratio exceeded (3x) but within +50 ms: pass.
  EXPECT_EQ(eval(fig(200, 0.0, 0.030), fig(200, 0.0, 0.010)).outcome, Outcome::pass);
  EXPECT_EQ(eval(fig(200, 0.0, 0.060), fig(200, 0.0, 0.010)).outcome, Outcome::pass);  // exactly +50ms
  EXPECT_EQ(eval(fig(200, 0.0, 0.0601), fig(200, 0.0, 0.010)).outcome, Outcome::fail);
  // More than +50 ms but within the ratio: pass.
  EXPECT_EQ(eval(fig(200, 0.0, 1.400), fig(200, 0.0, 1.000)).outcome, Outcome::pass);
  EXPECT_EQ(eval(fig(200, 0.0, 1.500), fig(200, 0.0, 1.000)).outcome, Outcome::pass);  // exactly 1.5x
  EXPECT_EQ(eval(fig(200, 0.0, 1.501), fig(200, 0.0, 1.000)).outcome, Outcome::fail);
}

TEST(WatchdogPolicy, P95RatioBoundaryIsAPassDespiteRounding) {
  // 0.3 * 1.5 == 0.44999999999999996 in double; 0.45 is exactly the threshold.
  EXPECT_EQ(eval(fig(200, 0.0, 0.45), fig(200, 0.0, 0.3)).outcome, Outcome::pass);
  EXPECT_EQ(eval(fig(200, 0.0, 0.4501), fig(200, 0.0, 0.3)).outcome, Outcome::fail);
  auto p = policy();
  p.max_p95_ratio = 3;
  // 0.1 * 3 == 0.30000000000000004; 0.1 + 0.05 well below.
  EXPECT_EQ(eval(fig(200, 0.0, 0.3), fig(200, 0.0, 0.1), p).outcome, Outcome::pass);
}

TEST(WatchdogPolicy, P95RatioAgainstAnIdleBaseline) {
  // Other color's p95 0 (no slow requests): only the +50 ms margin matters.
  EXPECT_EQ(eval(fig(200, 0.0, 0.050), fig(200, 0.0, 0.0)).outcome, Outcome::pass);
  const Verdict v = eval(fig(200, 0.0, 0.051), fig(200, 0.0, 0.0));
  EXPECT_EQ(v.outcome, Outcome::fail);
  EXPECT_EQ(v.reason, "p95 0.051s > 1.5 x blue's 0.000s and blue's + 50ms (n=200, window 30s)");
}

TEST(WatchdogPolicy, DeltaIsReportedBeforeRatio) {
  auto p = policy();
  p.max_error_rate = 0.5;
  const Verdict v = eval(fig(200, 0.2, 0.900), fig(200, 0.0, 0.300), p);
  EXPECT_EQ(v.reason, "error_rate 0.200 exceeds blue's 0.000 by more than 0.02 (n=200, window 30s)");
}

TEST(WatchdogPolicy, AbsoluteRulesComeBeforeRelativeOnes) {
  auto p = policy();
  p.max_p95 = 1s;
  const Verdict v = eval(fig(200, 0.0, 1.2), fig(200, 0.0, 0.1), p);
  EXPECT_EQ(v.reason, "p95 1.200s > 1s (n=200, window 30s)");
}

// -- relative rules need the other color's volume ----------------------------------------------

TEST(WatchdogPolicy, RelativeRulesIgnoredWhenOtherBelowMinRequests) {
  auto p = policy();
  p.max_error_rate = 0.10;
  const Figures thin_blue = fig(19, 0.0, 0.001);
  EXPECT_EQ(eval(fig(200, 0.09, 0.900), thin_blue, p).outcome, Outcome::pass);
  const Figures enough_blue = fig(20, 0.0, 0.001);
  EXPECT_EQ(eval(fig(200, 0.09, 0.010), enough_blue, p).outcome, Outcome::fail);
  EXPECT_EQ(eval(fig(200, 0.0, 0.900), enough_blue, p).outcome, Outcome::fail);
}

// -- reason text -----------------------------------------------------------------------------

TEST(WatchdogPolicy, OtherColorNameAndWindowUnits) {
  auto p = policy();
  p.window = 500ms;
  p.min_requests = 5;
  const Verdict green = evaluate(fig(100, 0.0, 0.900), fig(100, 0.0, 0.300), p, "green");
  EXPECT_EQ(green.reason, "p95 0.900s > 1.5 x green's 0.300s and green's + 50ms (n=100, window 500ms)");
  EXPECT_EQ(eval(fig(3, 0, 0), no_other, p).reason, "inconclusive: 3 requests < min_requests 5 (window 500ms)");
  p.window = 1500ms;
  EXPECT_EQ(eval(fig(3, 0, 0), no_other, p).reason, "inconclusive: 3 requests < min_requests 5 (window 1.5s)");
  p.window = 2min;
  EXPECT_EQ(eval(fig(3, 0, 0), no_other, p).reason, "inconclusive: 3 requests < min_requests 5 (window 120s)");
}

TEST(WatchdogPolicy, ThresholdsPrintedAsGiven) {
  auto p = policy();
  p.max_error_rate = 0.125;
  p.max_p95 = 1500ms;
  EXPECT_EQ(eval(fig(100, 0.5, 0.0), no_other, p).reason, "error_rate 0.500 > 0.125 (n=100, window 30s)");
  EXPECT_EQ(eval(fig(100, 0.0, 2.0), no_other, p).reason, "p95 2.000s > 1.5s (n=100, window 30s)");
  p.max_error_rate = 1;
  p.max_error_rate_delta = 0.005;
  p.max_p95_ratio = 2;
  EXPECT_EQ(eval(fig(100, 0.05, 0.0), fig(100, 0.04, 0.0), p).reason,
            "error_rate 0.050 exceeds blue's 0.040 by more than 0.005 (n=100, window 30s)");
  EXPECT_EQ(eval(fig(100, 0.0, 0.5), fig(100, 0.0, 0.2), p).reason,
            "p95 0.500s > 2 x blue's 0.200s and blue's + 50ms (n=100, window 30s)");
}


// -- rule: which rule failed, without reading the text (issue 11) ----------------------------

TEST(WatchdogPolicy, EachFailureNamesItsRule) {
  auto p = policy();
  p.max_p95 = 1s;
  const Verdict error_rate = eval(fig(412, 0.213, 0.004), no_other, p);
  EXPECT_EQ(error_rate.outcome, Outcome::fail);
  EXPECT_EQ(error_rate.rule, Rule::error_rate);
  const Verdict p95 = eval(fig(80, 0.0, 1.512), no_other, p);
  EXPECT_EQ(p95.outcome, Outcome::fail);
  EXPECT_EQ(p95.rule, Rule::p95);
  p.max_error_rate = 0.10;
  const Verdict delta = eval(fig(200, 0.08, 0.010), fig(200, 0.03, 0.010), p);
  EXPECT_EQ(delta.outcome, Outcome::fail);
  EXPECT_EQ(delta.rule, Rule::error_rate_delta);
  const Verdict ratio = eval(fig(200, 0.0, 0.900), fig(200, 0.0, 0.300), p);
  EXPECT_EQ(ratio.outcome, Outcome::fail);
  EXPECT_EQ(ratio.rule, Rule::p95_ratio);
}

// Both the absolute and the relative error-rate rules print "error_rate ..."; the rule field is
// what tells them apart (the dry run logs each failing rule once).
TEST(WatchdogPolicy, RuleFollowsTheRuleReportedWhenSeveralFail) {
  auto p = policy();
  p.max_p95 = 1s;
  EXPECT_EQ(eval(fig(100, 0.2, 5.0), healthy_blue, p).rule, Rule::error_rate);  // every rule fails
  EXPECT_EQ(eval(fig(200, 0.0, 1.2), fig(200, 0.0, 0.1), p).rule, Rule::p95);
  p.max_error_rate = 0.5;
  EXPECT_EQ(eval(fig(200, 0.2, 0.900), fig(200, 0.0, 0.300), p).rule, Rule::error_rate_delta);
}

TEST(WatchdogPolicy, PassAndInconclusiveHaveNoRule) {
  const Verdict pass = eval(fig(120, 0.0, 0.004), healthy_blue);
  EXPECT_EQ(pass.outcome, Outcome::pass);
  EXPECT_EQ(pass.rule, Rule::none);
  const Verdict thin = eval(fig(19, 1.0, 3600.0), healthy_blue);
  EXPECT_EQ(thin.outcome, Outcome::inconclusive);
  EXPECT_EQ(thin.rule, Rule::none);
  EXPECT_EQ(Verdict{}.rule, Rule::none);
}

}  // namespace
}  // namespace bgproxy::watchdog
