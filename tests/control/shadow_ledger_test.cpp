// The control plane's shadow comparison (README "Shadow traffic", SPEC §14): ShadowLedger reads
// the workers' cumulative counters from a baseline taken when the comparison began and begins
// again when the shadow color or the `shadow:` settings change; the gate of `canary start` and
// `release` refuses a target whose mismatch rate is above watchdog.max_shadow_mismatch_rate,
// with the figures, unless forced, and changes no state when it refuses.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "bgproxy/config/config.hpp"
#include "control/core/command.hpp"
#include "control/core/controller.hpp"
#include "control/core/shadow_ledger.hpp"
#include "control/core/shadow_reply.hpp"

namespace bgproxy::control {
namespace {

using routing::Color;

config::Config one_service(std::optional<double> max_mismatch) {
  config::Config cfg;
  config::Service s;
  s.name = "app";
  s.blue.servers = {config::Endpoint{"127.0.0.1:5005", "127.0.0.1", 5005}};
  s.green.servers = {config::Endpoint{"127.0.0.1:5006", "127.0.0.1", 5006}};
  s.shadow.percent_bp = 1000;
  s.watchdog.max_shadow_mismatch_rate = max_mismatch;
  cfg.services.push_back(std::move(s));
  return cfg;
}

/// `pairs` cross-color pairs of which `differing` differ in "$.version", and as many noise pairs
/// in which it never differs.
void add_pairs(shadow::ServiceShadowStats& s, int pairs, int differing) {
  for (int i = 0; i < pairs; ++i) {
    shadow::PairResult p;
    p.compared = {"status", "$.version"};
    if (i < differing) p.differences.push_back({"$.version", "\"1\"", "\"2\""});
    s.record(p, false, "/v", 0.001, 0.002);
    s.count(1, shadow::Result::compared);
    shadow::PairResult noise;
    noise.compared = {"status", "$.version"};
    s.record(noise, true, "/v", 0.001, 0.001);
  }
}

stats::RequestStats with_shadow(const shadow::ServiceShadowStats& s) {
  stats::RequestStats r(1, 2);
  r.services[0].shadow = s;
  return r;
}

std::vector<routing::ServiceRoute> routes_toward(Color c) {
  std::vector<routing::ServiceRoute> r(1);
  r[0].shadow_color = c;
  return r;
}

TEST(ShadowLedger, TheFirstComparisonCountsEverythingSinceTheStart) {
  const auto cfg = one_service(std::nullopt);
  shadow::ServiceShadowStats cumulative;
  add_pairs(cumulative, 30, 30);  // mirrored before the first collection: counted
  ShadowLedger ledger;
  EXPECT_EQ(ledger.view(0).since, "");
  ledger.observe(cfg, routes_toward(Color::green), with_shadow(cumulative), "2026-12-04T10:00:00.000Z");
  EXPECT_EQ(ledger.view(0).since, "2026-12-04T10:00:00.000Z");
  EXPECT_EQ(ledger.view(0).report.pairs, 30u);

  add_pairs(cumulative, 50, 10);
  ledger.observe(cfg, routes_toward(Color::green), with_shadow(cumulative), "2026-12-04T10:00:01.000Z");
  const auto& v = ledger.view(0);
  EXPECT_EQ(v.since, "2026-12-04T10:00:00.000Z");
  EXPECT_EQ(v.color, Color::green);
  EXPECT_EQ(v.counts.requests[1][0], 80u);
  EXPECT_EQ(v.report.pairs, 80u);
  EXPECT_DOUBLE_EQ(v.report.mismatch_rate, 0.5);
  EXPECT_EQ(v.report.reported_fields, (std::vector<std::string>{"$.version"}));
}

TEST(ShadowLedger, BeginsAgainWhenTheShadowColorOrTheSettingsChange) {
  auto cfg = one_service(std::nullopt);
  shadow::ServiceShadowStats cumulative;
  ShadowLedger ledger;
  ledger.observe(cfg, routes_toward(Color::green), with_shadow(cumulative), "t0");
  add_pairs(cumulative, 25, 25);
  ledger.observe(cfg, routes_toward(Color::green), with_shadow(cumulative), "t1");
  EXPECT_EQ(ledger.view(0).report.pairs, 25u);

  // Promoted: shadows now go to blue; green's figures are not blue's.
  ledger.observe(cfg, routes_toward(Color::blue), with_shadow(cumulative), "t2");
  EXPECT_EQ(ledger.view(0).since, "t2");
  EXPECT_EQ(ledger.view(0).color, Color::blue);
  EXPECT_EQ(ledger.view(0).report.pairs, 0u);
  add_pairs(cumulative, 5, 0);
  ledger.observe(cfg, routes_toward(Color::blue), with_shadow(cumulative), "t3");
  EXPECT_EQ(ledger.view(0).report.pairs, 5u);

  // A reload that ignores another field compares under other rules: from now on.
  cfg.services[0].shadow.compare.ignore = {"$.version"};
  ledger.observe(cfg, routes_toward(Color::blue), with_shadow(cumulative), "t4");
  EXPECT_EQ(ledger.view(0).since, "t4");
  EXPECT_EQ(ledger.view(0).report.pairs, 0u);
  EXPECT_EQ(ledger.view(0).settings.compare.ignore, (std::vector<std::string>{"$.version"}));
}

TEST(ShadowLedger, GatesOnlyWhereSomethingWasCompared) {
  const auto cfg = one_service(std::nullopt);
  shadow::ServiceShadowStats cumulative;
  ShadowLedger ledger;
  ledger.observe(cfg, routes_toward(Color::green), with_shadow(cumulative), "t0");
  auto gates = shadow_gates(ledger, 1);
  ASSERT_EQ(gates.size(), 1u);
  EXPECT_FALSE(gates[0].has_value());
  add_pairs(cumulative, 50, 20);
  ledger.observe(cfg, routes_toward(Color::green), with_shadow(cumulative), "t1");
  gates = shadow_gates(ledger, 1);
  ASSERT_TRUE(gates[0].has_value());
  EXPECT_EQ(gates[0]->color, Color::green);
  EXPECT_EQ(gates[0]->pairs, 50u);
  EXPECT_DOUBLE_EQ(gates[0]->mismatch_rate, 0.4);
  EXPECT_EQ(gates[0]->fields, "$.version");
}

TEST(ShadowReply, EveryFigureWithTheReportedFieldsSamplesFirst) {
  auto cfg = one_service(std::nullopt);
  shadow::ServiceShadowStats cumulative;
  for (int i = 0; i < 30; ++i) {
    shadow::PairResult p;  // $.id differs in every pair of either kind: noise; $.version only across colors
    p.compared = {"status", "$.version", "$.id"};
    p.differences = {{"$.id", std::to_string(i), std::to_string(i + 1)}, {"$.version", "1", "2"}};
    cumulative.record(p, false, "/v/" + std::to_string(i), 0.001, 0.003);
    cumulative.count(1, shadow::Result::compared);
    shadow::PairResult noise;
    noise.compared = {"status", "$.version", "$.id"};
    noise.differences = {{"$.id", "7", "8"}};
    cumulative.record(noise, true, "/n", 0.001, 0.001);
    cumulative.count(0, shadow::Result::compared);
  }
  cumulative.count(1, shadow::Result::dropped);
  ShadowLedger ledger;
  ledger.observe(cfg, routes_toward(Color::green), with_shadow(cumulative), "2026-12-04T10:00:00.000Z");

  const auto answer = boost::json::parse(shadow_reply(cfg, ledger, -1));
  ASSERT_TRUE(answer.at("ok").as_bool());
  const auto& svc = answer.at("services").at(0).as_object();
  EXPECT_EQ(svc.at("service"), "app");
  EXPECT_EQ(svc.at("percent").to_number<double>(), 10.0);
  EXPECT_EQ(svc.at("color"), "green");
  EXPECT_EQ(svc.at("since"), "2026-12-04T10:00:00.000Z");
  EXPECT_EQ(svc.at("requests").at("green").at("compared").to_number<int>(), 30);
  EXPECT_EQ(svc.at("requests").at("green").at("dropped").to_number<int>(), 1);
  EXPECT_EQ(svc.at("requests").at("blue").at("compared").to_number<int>(), 30);
  EXPECT_EQ(svc.at("pairs").to_number<int>(), 30);
  EXPECT_EQ(svc.at("mismatch_rate").to_number<double>(), 1.0);
  EXPECT_EQ(boost::json::serialize(svc.at("reported_fields")), R"(["$.version"])");
  const auto& first_field = svc.at("fields").at(0);
  EXPECT_EQ(first_field.at("field"), "$.version");
  EXPECT_EQ(first_field.at("reported"), true);
  const auto& samples = svc.at("samples").as_array();
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].at("field"), "$.version");  // reported: first, though recorded after $.id
  EXPECT_EQ(samples[0].at("path"), "/v/29");
  EXPECT_EQ(samples[1].at("field"), "$.id");
  EXPECT_EQ(svc.at("latency").at("slower").to_number<int>(), 30);
  EXPECT_EQ(svc.at("latency").at("significant"), true);

  // Off: no color; a service asked by index is the only one answered.
  cfg.services[0].shadow.percent_bp = 0;
  ledger.observe(cfg, routes_toward(Color::green), with_shadow(cumulative), "2026-12-04T10:00:01.000Z");
  const auto off = boost::json::parse(shadow_reply(cfg, ledger, 0));
  EXPECT_TRUE(off.at("services").at(0).at("color").is_null());
  EXPECT_EQ(off.at("services").as_array().size(), 1u);
}

Command canary_start(bool force) {
  Command c;
  c.kind = CommandKind::canary;
  c.canary = CanaryAction::start;
  c.steps_bp = {1000, 10000};
  c.force = force;
  return c;
}

Command release(bool force) {
  Command c;
  c.kind = CommandKind::release;
  c.force = force;
  return c;
}

TEST(ShadowGate, RefusesCanaryStartAndReleaseAboveTheRateWithTheFiguresUnlessForced) {
  const auto cfg = one_service(0.05);
  Controller ctl(cfg, Controller::initial_state(cfg));
  ctl.set_shadow_gates({ShadowGate{Color::green, 200, 0.1234, "$.version, status"}});
  const auto before = ctl.state().services[0].weights.green_bp;

  const std::string expected =
      "the shadow mismatch rate of green is 0.1234 over 200 pairs ($.version, status), above "
      "watchdog.max_shadow_mismatch_rate 0.05 (bgctl shadow shows samples; --force starts anyway)";
  auto d = ctl.decide(canary_start(false), Peer{}, "2026-12-04T10:00:00.000Z");
  EXPECT_EQ(d.error, expected);
  EXPECT_FALSE(d.next.has_value());
  d = ctl.release(release(false), 0, Peer{}, "2026-12-04T10:00:00.000Z", 0, {});
  EXPECT_EQ(d.error, expected);
  EXPECT_FALSE(d.next.has_value());
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, before);

  d = ctl.decide(canary_start(true), Peer{}, "2026-12-04T10:00:00.000Z");
  EXPECT_EQ(d.error, "");
  ASSERT_TRUE(d.next.has_value());
  EXPECT_EQ(d.next->services[0].weights.green_bp, 1000u);
  d = ctl.release(release(true), 0, Peer{}, "2026-12-04T10:00:00.000Z", 0, {});
  EXPECT_EQ(d.error, "");
  EXPECT_TRUE(d.next.has_value());
}

TEST(ShadowGate, LetsTheCanaryStartWithinTheRateWithoutALimitOrForTheOtherColor) {
  const auto limited = one_service(0.05);
  Controller within(limited, Controller::initial_state(limited));
  within.set_shadow_gates({ShadowGate{Color::green, 200, 0.05, ""}});  // at the limit is not above it
  EXPECT_TRUE(within.decide(canary_start(false), Peer{}, "t").next.has_value());

  Controller other_color(limited, Controller::initial_state(limited));
  other_color.set_shadow_gates({ShadowGate{Color::blue, 200, 0.9, "body"}});  // compared blue, not the target
  EXPECT_TRUE(other_color.decide(canary_start(false), Peer{}, "t").next.has_value());

  const auto unlimited = one_service(std::nullopt);
  Controller off(unlimited, Controller::initial_state(unlimited));
  off.set_shadow_gates({ShadowGate{Color::green, 200, 0.9, "body"}});
  EXPECT_TRUE(off.decide(canary_start(false), Peer{}, "t").next.has_value());

  Controller nothing_compared(limited, Controller::initial_state(limited));
  nothing_compared.set_shadow_gates({std::nullopt});
  EXPECT_TRUE(nothing_compared.decide(canary_start(false), Peer{}, "t").next.has_value());
}

}  // namespace
}  // namespace bgproxy::control
