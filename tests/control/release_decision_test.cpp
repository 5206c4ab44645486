// Controller::release and release_target (control/core/controller): `bgctl release` (SPEC §15)
// starts the canary of `canary start` toward the color with no traffic, refuses a target with
// traffic, an unhealthy one or a running canary, and is recorded as "release" with its smoke
// results.
#include <chrono>
#include <string>
#include <string_view>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "bgproxy/config/config.hpp"
#include "control/core/command.hpp"
#include "control/core/controller.hpp"

namespace bgproxy::control {
namespace {

using routing::Color;

constexpr std::string_view kNow = "2026-12-03T21:30:00.123Z";
const Peer kPeer{1000, 4242};

/// "app": blue 127.0.0.1:5005, green 127.0.0.1:5006.
config::Config one_service(std::uint32_t initial_green_bp = 0) {
  config::Config cfg;
  config::Service s;
  s.name = "app";
  s.blue.servers = {config::Endpoint{"127.0.0.1:5005", "127.0.0.1", 5005}};
  s.green.servers = {config::Endpoint{"127.0.0.1:5006", "127.0.0.1", 5006}};
  s.initial_green_bp = initial_green_bp;
  cfg.services.push_back(std::move(s));
  return cfg;
}

Command release_cmd(std::optional<Color> to = std::nullopt) {
  Command c;
  c.kind = CommandKind::release;
  c.release_to = to;
  return c;
}

TEST(ControllerRelease, StartsTheCanaryOfTheIdleColorAndRecordsReleaseWithItsSmokeResults) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  boost::json::array smoke{boost::json::object{{"path", "/health"}, {"status", 200}}};
  auto c = release_cmd();
  c.steps_bp = {1000, 10000};
  c.interval = std::chrono::seconds(5);
  const auto d = ctl.release(c, 0, kPeer, kNow, 1000, smoke);
  ASSERT_EQ(d.error, "");
  ASSERT_TRUE(d.next.has_value());
  EXPECT_TRUE(d.switched);
  const auto& ss = d.next->services[0];
  EXPECT_EQ(ss.weights.green_bp, 1000u);
  EXPECT_EQ(ss.target, Color::green);
  EXPECT_EQ(ss.phase, Phase::canary);
  EXPECT_EQ(ss.canary_steps_bp, (std::vector<std::uint32_t>{1000, 10000}));
  EXPECT_EQ(ss.canary_interval_ms, 5000);
  const auto& entry = d.next->history.back();
  EXPECT_EQ(entry.command, "release");
  EXPECT_EQ(entry.args, (boost::json::object{{"smoke", smoke},
                                             {"target", "green"},
                                             {"steps", {10, 100}},
                                             {"interval_seconds", 5}}));
  EXPECT_EQ(entry.before.green_bp, 0u);
  EXPECT_EQ(entry.after.green_bp, 1000u);
}

TEST(ControllerRelease, FromAllGreenTheIdleColorIsBlue) {
  const auto cfg = one_service(10000);
  const Controller ctl(cfg, Controller::initial_state(cfg));
  std::string error;
  EXPECT_EQ(ctl.release_target(release_cmd(), 0, error), Color::blue);
  EXPECT_EQ(error, "");
  const auto d = ctl.decide(release_cmd(), kPeer, kNow);
  ASSERT_TRUE(d.next.has_value());
  EXPECT_EQ(d.next->services[0].weights.green_bp, 9000u);  // blue's first step: 10 %
  EXPECT_EQ(d.next->history.back().args.at("target"), "blue");
  EXPECT_FALSE(d.next->history.back().args.contains("smoke"));
}

TEST(ControllerRelease, ATargetWithTrafficIsRefused) {
  const auto cfg = one_service();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  const auto d = ctl.decide(release_cmd(Color::blue), kPeer, kNow);
  EXPECT_EQ(d.error,
            "a release moves traffic to a color that has none, and app is at blue 100% / green 0% (finish or roll "
            "back the rollout first)");
  EXPECT_FALSE(d.next.has_value());

  const auto split_cfg = one_service(3000);
  const Controller split(split_cfg, Controller::initial_state(split_cfg));
  std::string error;
  EXPECT_FALSE(split.release_target(release_cmd(), 0, error).has_value());
  EXPECT_EQ(error,
            "a release moves traffic to a color that has none, and app is at blue 70% / green 30% (finish or roll "
            "back the rollout first)");
}

TEST(ControllerRelease, AnUnhealthyTargetIsRefused) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  ctl.set_health({true, false});  // green's only server is down
  const auto d = ctl.decide(release_cmd(Color::green), kPeer, kNow);
  EXPECT_EQ(d.error, "green has no healthy server");
  EXPECT_FALSE(d.next.has_value());
}

TEST(ControllerRelease, ARunningCanaryIsRefused) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  Command start;
  start.kind = CommandKind::canary;
  start.canary = CanaryAction::start;
  auto started = ctl.decide(start, kPeer, kNow);
  ASSERT_TRUE(started.next.has_value());
  ctl.commit(*started.next);
  // Green has 10 % now, so it is not idle either; the canary is the reason given.
  const auto d = ctl.decide(release_cmd(), kPeer, kNow);
  EXPECT_EQ(d.error, "a canary is already running for app (pause, resume or abort it)");
}

}  // namespace
}  // namespace bgproxy::control
