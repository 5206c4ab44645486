// Where shadows go (SPEC §14): the routing table names the color with no traffic, and while both
// colors have some, the rollout target (control/core/controller's table, routing::build_table).
#include <gtest/gtest.h>

#include "bgproxy/config/config.hpp"
#include "control/core/command.hpp"
#include "control/core/controller.hpp"

namespace bgproxy::control {
namespace {

using routing::Color;

config::Config one_service(std::uint32_t initial_green_bp) {
  config::Config cfg;
  config::Service s;
  s.name = "app";
  s.blue.servers = {config::Endpoint{"127.0.0.1:5005", "127.0.0.1", 5005}};
  s.green.servers = {config::Endpoint{"127.0.0.1:5006", "127.0.0.1", 5006}};
  s.initial_green_bp = initial_green_bp;
  s.shadow.percent_bp = 2500;
  cfg.services.push_back(std::move(s));
  return cfg;
}

Color shadow_color(const Controller& c) { return c.table(1).services[0].shadow_color; }

TEST(ShadowColor, TheColorWithNoTrafficThenTheRolloutTarget) {
  const auto all_blue = one_service(0);
  EXPECT_EQ(shadow_color(Controller(all_blue, Controller::initial_state(all_blue))), Color::green);
  EXPECT_EQ(Controller(all_blue, Controller::initial_state(all_blue)).table(1).services[0].shadow.percent_bp, 2500u);
  const auto all_green = one_service(10000);
  EXPECT_EQ(shadow_color(Controller(all_green, Controller::initial_state(all_green))), Color::blue);

  // From all green, a canary toward blue at 50/50: no color is idle, blue is the target.
  Controller ctl(all_green, Controller::initial_state(all_green));
  Command start;
  start.kind = CommandKind::canary;
  start.canary = CanaryAction::start;
  start.steps_bp = {5000, 10000};
  const auto d = ctl.decide(start, Peer{}, "2026-12-03T21:30:00.000Z");
  ASSERT_TRUE(d.next.has_value());
  ctl.commit(*d.next);
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, 5000u);
  EXPECT_EQ(shadow_color(ctl), Color::blue);
}

}  // namespace
}  // namespace bgproxy::control
