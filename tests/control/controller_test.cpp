// Controller (control/core/controller): what split/switch/rollback/server/canary do to the
// runtime state (SPEC §4, §6, §7, §8): refusals, weights, stable/target/phase, history,
// reconcile with a loaded state, service resolution and the routing table it builds.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include "bgproxy/config/config.hpp"
#include "control/core/command.hpp"
#include "control/core/state.hpp"
#include "control/core/controller.hpp"
#include "control/core/service_document.hpp"

namespace bgproxy::control {
namespace {

using routing::Color;

constexpr std::string_view kNow = "2026-11-24T21:30:00.123Z";

config::Endpoint ep(const std::string& host, std::uint16_t port) {
  return config::Endpoint{host + ":" + std::to_string(port), host, port};
}

config::Service service(const std::string& name, std::vector<config::Endpoint> blue,
                        std::vector<config::Endpoint> green, std::uint32_t initial_green_bp = 0) {
  config::Service s;
  s.name = name;
  s.blue.servers = std::move(blue);
  s.green.servers = std::move(green);
  s.initial_green_bp = initial_green_bp;
  return s;
}

/// One service "app": blue 127.0.0.1:5005, green 127.0.0.1:5006.
config::Config one_service(std::uint32_t initial_green_bp = 0) {
  config::Config cfg;
  cfg.services.push_back(service("app", {ep("127.0.0.1", 5005)}, {ep("127.0.0.1", 5006)}, initial_green_bp));
  return cfg;
}

/// "app" (blue 5005, green 5006 + 5007) and "api" (blue 6005, green 6006, initial green 30 %).
config::Config two_services() {
  config::Config cfg;
  cfg.services.push_back(
      service("app", {ep("127.0.0.1", 5005)}, {ep("127.0.0.1", 5006), ep("127.0.0.1", 5007)}));
  cfg.services.push_back(service("api", {ep("127.0.0.1", 6005)}, {ep("127.0.0.1", 6006)}, 3000));
  return cfg;
}

Command split(std::uint32_t green_bp, std::string svc = "", bool force = false) {
  Command c;
  c.kind = CommandKind::split;
  c.green_bp = green_bp;
  c.service = std::move(svc);
  c.force = force;
  return c;
}

Command switch_to(Color color, std::string svc = "", bool force = false) {
  Command c;
  c.kind = CommandKind::switch_color;
  c.color = color;
  c.service = std::move(svc);
  c.force = force;
  return c;
}

Command rollback_cmd(std::string svc = "") {
  Command c;
  c.kind = CommandKind::rollback;
  c.service = std::move(svc);
  return c;
}

Command canary_cmd(CanaryAction a, std::vector<std::uint32_t> steps_bp = {},
                   std::optional<std::chrono::milliseconds> interval = std::nullopt) {
  Command c;
  c.kind = CommandKind::canary;
  c.canary = a;
  c.steps_bp = std::move(steps_bp);
  c.interval = interval;
  return c;
}

Command server_cmd(ServerAction a, std::string address, std::string svc = "") {
  Command c;
  c.kind = CommandKind::server;
  c.server = a;
  c.address = std::move(address);
  c.service = std::move(svc);
  return c;
}

const Peer kPeer{1000, 4242};

/// Decides and commits `c`, expecting an accepted change.
Controller::Decision apply(Controller& ctl, const Command& c, const Peer& peer = kPeer, std::string_view now = kNow) {
  auto d = ctl.decide(c, peer, now);
  EXPECT_EQ(d.error, "");
  EXPECT_TRUE(d.next.has_value());
  if (d.next) ctl.commit(*d.next);
  return d;
}

// ----------------------------------------------------------------------- initial state

TEST(ControllerInitial, EveryServiceAtItsInitialWeights) {
  const auto cfg = two_services();
  const State s = Controller::initial_state(cfg);
  ASSERT_EQ(s.services.size(), 2u);
  EXPECT_EQ(s.services[0].name, "app");
  EXPECT_EQ(s.services[0].weights.green_bp, 0u);
  EXPECT_EQ(s.services[0].stable.green_bp, 0u);
  EXPECT_EQ(s.services[1].name, "api");
  EXPECT_EQ(s.services[1].weights.green_bp, 3000u);
  EXPECT_EQ(s.services[1].stable.green_bp, 3000u);
  for (const auto& ss : s.services) {
    EXPECT_EQ(ss.phase, Phase::idle);
    EXPECT_FALSE(ss.target.has_value());
    EXPECT_EQ(ss.step, 0u);
    EXPECT_TRUE(ss.servers.empty());
  }
  EXPECT_TRUE(s.history.empty());
}

// ----------------------------------------------------------------------- resolve_service

TEST(ControllerResolve, EmptyNameWithOneServiceIsThatService) {
  const auto cfg = one_service();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  std::string error;
  EXPECT_EQ(ctl.resolve_service("", error), 0);
  EXPECT_EQ(error, "");
  EXPECT_EQ(ctl.resolve_service("app", error), 0);
  EXPECT_EQ(error, "");
}

TEST(ControllerResolve, EmptyNameWithSeveralServicesIsAnError) {
  const auto cfg = two_services();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  std::string error;
  EXPECT_EQ(ctl.resolve_service("", error), -1);
  EXPECT_EQ(error, "several services are configured: name one with -s SERVICE");
}

TEST(ControllerResolve, ByNameAndUnknown) {
  const auto cfg = two_services();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  std::string error;
  EXPECT_EQ(ctl.resolve_service("api", error), 1);
  EXPECT_EQ(ctl.resolve_service("app", error), 0);
  EXPECT_EQ(error, "");
  EXPECT_EQ(ctl.resolve_service("x", error), -1);
  EXPECT_EQ(error, "unknown service \"x\"");
  error.clear();
  EXPECT_EQ(ctl.resolve_service("APP", error), -1);  // names are case-sensitive
  EXPECT_EQ(error, "unknown service \"APP\"");
}

TEST(ControllerDecide, UnknownServiceIsRefused) {
  const auto cfg = one_service();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  const auto d = ctl.decide(split(5000, "nope"), kPeer, kNow);
  EXPECT_EQ(d.error, "unknown service \"nope\"");
  EXPECT_FALSE(d.next.has_value());
  EXPECT_EQ(d.service, -1);
}

TEST(ControllerDecide, NoServiceNameWithSeveralServicesIsRefused) {
  const auto cfg = two_services();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  for (const auto& c : {split(5000), switch_to(Color::green), rollback_cmd()}) {
    const auto d = ctl.decide(c, kPeer, kNow);
    EXPECT_EQ(d.error, "several services are configured: name one with -s SERVICE");
    EXPECT_FALSE(d.next.has_value());
  }
}

TEST(ControllerDecide, ReadOnlyCommandsDecideNothing) {
  const auto cfg = two_services();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  for (auto kind : {CommandKind::status, CommandKind::health, CommandKind::history, CommandKind::reload}) {
    Command c;
    c.kind = kind;
    const auto d = ctl.decide(c, kPeer, kNow);
    EXPECT_EQ(d.error, "") << static_cast<int>(kind);
    EXPECT_FALSE(d.next.has_value());
    EXPECT_EQ(d.service, -1);
    EXPECT_FALSE(d.switched);
    EXPECT_FALSE(d.rollback);
  }
}

// ----------------------------------------------------------------------- split / switch

TEST(ControllerSplit, FromAllBlueStartsARollout) {
  const auto cfg = one_service();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  const auto d = ctl.decide(split(1250), Peer{1001, 77}, kNow);
  EXPECT_EQ(d.error, "");
  ASSERT_TRUE(d.next.has_value());
  EXPECT_EQ(d.service, 0);
  EXPECT_TRUE(d.switched);
  EXPECT_FALSE(d.rollback);
  const auto& ss = d.next->services[0];
  EXPECT_EQ(ss.weights.green_bp, 1250u);
  EXPECT_EQ(ss.stable.green_bp, 0u);
  ASSERT_TRUE(ss.target.has_value());
  EXPECT_EQ(*ss.target, Color::green);
  EXPECT_EQ(ss.phase, Phase::canary);
  EXPECT_EQ(ss.step, 0u);
  EXPECT_EQ(ss.reason, "manual");
  ASSERT_EQ(d.next->history.size(), 1u);
  const HistoryEntry want{std::string(kNow), "app", "split", {{"green", 12.5}}, 1001, 77, "manual", Weights{0},
                          Weights{1250}};
  EXPECT_EQ(d.next->history[0], want);
  // decide() is pure: the controller's own state is untouched until commit().
  EXPECT_EQ(ctl.state(), Controller::initial_state(cfg));
}

// The command is the bare verb (SPEC §7); the weight is an argument: whole percentages as
// integers, others with their decimals.
TEST(ControllerSplit, ArgsSpellTheWeight) {
  const std::vector<std::pair<std::uint32_t, boost::json::value>> cases = {
      {1234, 12.34}, {5000, 50}, {5, 0.05}, {10, 0.1}, {10000, 100}, {9999, 99.99}, {0, 0}};
  for (const auto& [bp, weight] : cases) {
    const auto cfg = one_service(bp == 0 ? 5000 : 0);
    const Controller ctl(cfg, Controller::initial_state(cfg));
    const auto d = ctl.decide(split(bp), kPeer, kNow);
    ASSERT_TRUE(d.next.has_value()) << bp;
    ASSERT_EQ(d.next->history.size(), 1u);
    EXPECT_EQ(d.next->history.back().command, "split");
    EXPECT_EQ(d.next->history.back().args, (boost::json::object{{"green", weight}})) << bp;
    EXPECT_EQ(d.next->history.back().args.at("green").kind(), weight.kind()) << bp;
  }
}

TEST(ControllerSplit, ForcedChangeSaysSoInArgs) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  ctl.set_health({true, false});  // green (id 1) down
  apply(ctl, split(1000, "", true));
  EXPECT_EQ(ctl.state().history.back().args, (boost::json::object{{"green", 10}, {"force", true}}));
  apply(ctl, switch_to(Color::green, "", true));
  EXPECT_EQ(ctl.state().history.back().command, "switch");
  EXPECT_EQ(ctl.state().history.back().args, (boost::json::object{{"color", "green"}, {"force", true}}));
}

TEST(ControllerSwitch, GreenFromAllBlue) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  const auto d = apply(ctl, switch_to(Color::green), Peer{0, 1});
  EXPECT_TRUE(d.switched);
  EXPECT_FALSE(d.rollback);
  const auto& ss = ctl.state().services[0];
  EXPECT_EQ(ss.weights.green_bp, 10000u);
  EXPECT_EQ(ss.stable.green_bp, 0u);
  EXPECT_EQ(ss.target, Color::green);
  EXPECT_EQ(ss.phase, Phase::baking);  // the raised color now bakes at 100 % (SPEC §6)
  EXPECT_EQ(ss.reason, "manual");
  const HistoryEntry want{std::string(kNow), "app", "switch", {{"color", "green"}}, 0, 1, "manual", Weights{0},
                          Weights{10000}};
  ASSERT_EQ(ctl.state().history.size(), 1u);
  EXPECT_EQ(ctl.state().history[0], want);
}

TEST(ControllerSwitch, BlueFromAllGreenTargetsBlue) {
  const auto cfg = one_service(10000);
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, switch_to(Color::blue));
  const auto& ss = ctl.state().services[0];
  EXPECT_EQ(ss.weights.green_bp, 0u);
  EXPECT_EQ(ss.stable.green_bp, 10000u);
  EXPECT_EQ(ss.target, Color::blue);
  EXPECT_EQ(ss.phase, Phase::baking);  // blue is the target and has 100 %
  EXPECT_EQ(ctl.state().history.back().command, "switch");
  EXPECT_EQ(ctl.state().history.back().args, (boost::json::object{{"color", "blue"}}));
  EXPECT_EQ(ctl.state().history.back().before.green_bp, 10000u);
  EXPECT_EQ(ctl.state().history.back().after.green_bp, 0u);
}

TEST(ControllerSplit, LoweringGreenTargetsBlue) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, split(6000));
  apply(ctl, split(2000));
  const auto& ss = ctl.state().services[0];
  EXPECT_EQ(ss.weights.green_bp, 2000u);
  EXPECT_EQ(ss.target, Color::blue);
  EXPECT_EQ(ss.phase, Phase::canary);
  EXPECT_EQ(ss.stable.green_bp, 0u);  // the rollout began at all-blue
}

TEST(ControllerSplit, NoChangeReturnsNothingAndRecordsNothing) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  for (const auto& c : {split(0), switch_to(Color::blue)}) {
    const auto d = ctl.decide(c, kPeer, kNow);
    EXPECT_EQ(d.error, "");
    EXPECT_FALSE(d.next.has_value());
    EXPECT_EQ(d.service, 0);
    EXPECT_FALSE(d.switched);
  }
  apply(ctl, split(4000));
  const auto d = ctl.decide(split(4000), kPeer, kNow);
  EXPECT_EQ(d.error, "");
  EXPECT_FALSE(d.next.has_value());
  EXPECT_EQ(ctl.state().history.size(), 1u);
}

TEST(ControllerSplit, NamedServiceChangesOnlyThatOne) {
  const auto cfg = two_services();
  Controller ctl(cfg, Controller::initial_state(cfg));
  const auto d = apply(ctl, split(5000, "api"));
  EXPECT_EQ(d.service, 1);
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, 0u);
  EXPECT_EQ(ctl.state().services[1].weights.green_bp, 5000u);
  // 30 % is not an endpoint: the stable weights stay the initial ones.
  EXPECT_EQ(ctl.state().services[1].stable.green_bp, 3000u);
  EXPECT_EQ(ctl.state().history.back().service, "api");
  EXPECT_EQ(ctl.state().history.back().before.green_bp, 3000u);
}

// ----------------------------------------------------------------------- usable target

TEST(ControllerSplit, TargetWithoutUsableServerIsRefusedUnlessForced) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, server_cmd(ServerAction::disable, "127.0.0.1:5006"));
  const auto before = ctl.state();
  for (const auto& c : {split(1000), switch_to(Color::green)}) {
    const auto d = ctl.decide(c, kPeer, kNow);
    EXPECT_EQ(d.error, "green has no healthy server (use --force to override)");
    EXPECT_FALSE(d.next.has_value());
  }
  EXPECT_EQ(ctl.state(), before);
  const auto d = apply(ctl, split(1000, "", true));
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, 1000u);
  EXPECT_EQ(ctl.state().services[0].target, Color::green);
  EXPECT_TRUE(d.switched);
}

TEST(ControllerSplit, DrainingServerIsNotUsableEither) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, server_cmd(ServerAction::drain, "127.0.0.1:5006"));
  const auto d = ctl.decide(switch_to(Color::green), kPeer, kNow);
  EXPECT_EQ(d.error, "green has no healthy server (use --force to override)");
  EXPECT_FALSE(d.next.has_value());
  apply(ctl, server_cmd(ServerAction::enable, "127.0.0.1:5006"));
  apply(ctl, switch_to(Color::green));
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, 10000u);
}

TEST(ControllerSplit, BlueTargetNeedsAUsableBlueServer) {
  const auto cfg = one_service(10000);
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, server_cmd(ServerAction::disable, "127.0.0.1:5005"));
  const auto d = ctl.decide(split(9000), kPeer, kNow);
  EXPECT_EQ(d.error, "blue has no healthy server (use --force to override)");
  EXPECT_FALSE(d.next.has_value());
  apply(ctl, switch_to(Color::blue, "", true));
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, 0u);
}

TEST(ControllerSplit, OneUsableServerOfSeveralIsEnough) {
  const auto cfg = two_services();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, server_cmd(ServerAction::disable, "127.0.0.1:5006", "app"));
  apply(ctl, split(5000, "app"));
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, 5000u);
  apply(ctl, server_cmd(ServerAction::drain, "127.0.0.1:5007", "app"));
  const auto d = ctl.decide(split(6000, "app"), kPeer, kNow);
  EXPECT_EQ(d.error, "green has no healthy server (use --force to override)");
}

TEST(ControllerSplit, LoweringAnUnusableColorIsAllowed) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, split(5000));
  apply(ctl, server_cmd(ServerAction::disable, "127.0.0.1:5006"));
  apply(ctl, split(1000));  // moves traffic toward blue, which can serve
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, 1000u);
  EXPECT_EQ(ctl.state().services[0].target, Color::blue);
}

TEST(ControllerSplit, NoChangeIsNotRefusedEvenWhenTheColorIsUnusable) {
  const auto cfg = one_service(10000);
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, server_cmd(ServerAction::disable, "127.0.0.1:5006"));
  const auto d = ctl.decide(switch_to(Color::green), kPeer, kNow);
  EXPECT_EQ(d.error, "");
  EXPECT_FALSE(d.next.has_value());
}

// ----------------------------------------------------------------------- stable / rollback

TEST(ControllerRollback, ReturnsToWhereTheRolloutBegan) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, split(1000));
  apply(ctl, split(3000));
  apply(ctl, split(6000));
  EXPECT_EQ(ctl.state().services[0].stable.green_bp, 0u);
  const auto d = apply(ctl, rollback_cmd(), Peer{7, 8}, "2026-11-24T21:31:00.000Z");
  EXPECT_TRUE(d.rollback);
  EXPECT_TRUE(d.switched);
  EXPECT_EQ(d.service, 0);
  const auto& ss = ctl.state().services[0];
  EXPECT_EQ(ss.weights.green_bp, 0u);
  EXPECT_EQ(ss.stable.green_bp, 0u);
  EXPECT_EQ(ss.phase, Phase::rolled_back);
  EXPECT_EQ(ss.reason, "manual");
  EXPECT_EQ(ss.step, 0u);
  ASSERT_EQ(ctl.state().history.size(), 4u);
  const HistoryEntry want{"2026-11-24T21:31:00.000Z", "app", "rollback", {}, 7, 8, "manual", Weights{6000}, Weights{0}};
  EXPECT_EQ(ctl.state().history.back(), want);
}

TEST(ControllerRollback, DrainIsRecordedInTheHistory) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, switch_to(Color::green));
  auto c = rollback_cmd();
  c.drain = true;
  apply(ctl, c);
  EXPECT_EQ(ctl.state().history.back().command, "rollback");
  EXPECT_EQ(ctl.state().history.back().args, (boost::json::object{{"drain", true}}));
  EXPECT_EQ(unweighted_color(ctl.state().services[0].weights), Color::green);
  EXPECT_EQ(unweighted_color(Weights{10000}), Color::blue);
  EXPECT_EQ(unweighted_color(Weights{2500}), std::nullopt);
}

TEST(ControllerRollback, AtStableIsANoOp) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  auto d = ctl.decide(rollback_cmd(), kPeer, kNow);
  EXPECT_EQ(d.error, "");
  EXPECT_FALSE(d.next.has_value());
  EXPECT_FALSE(d.rollback);
  EXPECT_FALSE(d.switched);
  EXPECT_EQ(d.service, 0);
  apply(ctl, split(2500));
  apply(ctl, rollback_cmd());
  d = ctl.decide(rollback_cmd(), kPeer, kNow);  // a second rollback changes nothing
  EXPECT_FALSE(d.next.has_value());
  EXPECT_FALSE(d.rollback);
  EXPECT_EQ(ctl.state().history.size(), 2u);
  EXPECT_EQ(ctl.state().services[0].phase, Phase::rolled_back);
}

TEST(ControllerRollback, AfterASwitchReturnsToThePreviousColor) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, switch_to(Color::green));
  apply(ctl, rollback_cmd());
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, 0u);
  EXPECT_EQ(ctl.state().services[0].phase, Phase::rolled_back);
}

TEST(ControllerRollback, ANewRolloutFromAllGreenRecordsAllGreenAsStable) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, split(5000));
  apply(ctl, switch_to(Color::green));  // 50 → 100: not a new rollout, stable stays 0
  EXPECT_EQ(ctl.state().services[0].stable.green_bp, 0u);
  apply(ctl, split(7000));  // 100 → 70: a new rollout from all-green
  EXPECT_EQ(ctl.state().services[0].stable.green_bp, 10000u);
  EXPECT_EQ(ctl.state().services[0].target, Color::blue);
  apply(ctl, rollback_cmd());
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, 10000u);
  EXPECT_EQ(ctl.state().history.back().before.green_bp, 7000u);
  EXPECT_EQ(ctl.state().history.back().after.green_bp, 10000u);
}

TEST(ControllerRollback, FromInitialMidwayWeights) {
  const auto cfg = two_services();  // api starts at 30 %
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, split(8000, "api"));
  apply(ctl, rollback_cmd("api"));
  EXPECT_EQ(ctl.state().services[1].weights.green_bp, 3000u);
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, 0u);
}

TEST(ControllerRollback, PhaseLeavesRolledBackOnTheNextChange) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, split(2000));
  apply(ctl, rollback_cmd());
  apply(ctl, split(1000));
  EXPECT_EQ(ctl.state().services[0].phase, Phase::canary);
  EXPECT_EQ(ctl.state().services[0].stable.green_bp, 0u);
}

// ----------------------------------------------------------------------- server admin

TEST(ControllerServer, DisableRecordsAndKeepsWeights) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, split(2000));
  const auto d = apply(ctl, server_cmd(ServerAction::disable, "127.0.0.1:5006"), Peer{5, 6});
  EXPECT_FALSE(d.switched);
  EXPECT_FALSE(d.rollback);
  EXPECT_EQ(d.service, 0);
  const auto& ss = ctl.state().services[0];
  ASSERT_EQ(ss.servers.size(), 1u);
  EXPECT_EQ(ss.servers.at("127.0.0.1:5006"), AdminState::disabled);
  EXPECT_EQ(ss.weights.green_bp, 2000u);
  EXPECT_EQ(ss.phase, Phase::canary);
  const HistoryEntry want{std::string(kNow), "app", "server", {{"action", "disable"}, {"address", "127.0.0.1:5006"}},
                          5, 6, "manual", Weights{2000}, Weights{2000}};
  EXPECT_EQ(ctl.state().history.back(), want);
}

TEST(ControllerServer, DrainAndEnable) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, server_cmd(ServerAction::drain, "127.0.0.1:5005"));
  EXPECT_EQ(ctl.state().services[0].servers.at("127.0.0.1:5005"), AdminState::draining);
  EXPECT_EQ(ctl.state().history.back().command, "server");
  EXPECT_EQ(ctl.state().history.back().args,
            (boost::json::object{{"action", "drain"}, {"address", "127.0.0.1:5005"}}));
  apply(ctl, server_cmd(ServerAction::enable, "127.0.0.1:5005"));
  EXPECT_TRUE(ctl.state().services[0].servers.empty());  // enabled = absent
  EXPECT_EQ(ctl.state().history.back().command, "server");
  EXPECT_EQ(ctl.state().history.back().args,
            (boost::json::object{{"action", "enable"}, {"address", "127.0.0.1:5005"}}));
  EXPECT_EQ(ctl.state().history.size(), 2u);
}

TEST(ControllerServer, SameStateAgainIsANoOp) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  auto d = ctl.decide(server_cmd(ServerAction::enable, "127.0.0.1:5006"), kPeer, kNow);
  EXPECT_EQ(d.error, "");
  EXPECT_FALSE(d.next.has_value());
  apply(ctl, server_cmd(ServerAction::disable, "127.0.0.1:5006"));
  d = ctl.decide(server_cmd(ServerAction::disable, "127.0.0.1:5006"), kPeer, kNow);
  EXPECT_EQ(d.error, "");
  EXPECT_FALSE(d.next.has_value());
  EXPECT_EQ(ctl.state().history.size(), 1u);
}

TEST(ControllerServer, UnknownServerIsRefused) {
  const auto cfg = two_services();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  // 6006 belongs to "api", not to "app".
  const auto d = ctl.decide(server_cmd(ServerAction::disable, "127.0.0.1:6006", "app"), kPeer, kNow);
  EXPECT_EQ(d.error, "unknown server \"127.0.0.1:6006\" in service app");
  EXPECT_FALSE(d.next.has_value());
  EXPECT_EQ(d.service, 0);
  const auto d2 = ctl.decide(server_cmd(ServerAction::disable, "localhost:5006", "app"), kPeer, kNow);
  EXPECT_EQ(d2.error, "unknown server \"localhost:5006\" in service app");
}

// ----------------------------------------------------------------------- history

// Every entry of a canary, by hand or by the rollout loop, is the verb "canary" with its action
// in args (SPEC §7), so that a script filtering on command == "canary" sees the whole canary.
TEST(ControllerHistory, CanaryEntriesAreTheVerbCanaryWithTheirAction) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  using boost::json::object;
  apply(ctl, canary_cmd(CanaryAction::start, {500, 2550, 10000}, std::chrono::milliseconds(1500)));
  const HistoryEntry start{std::string(kNow),
                           "app",
                           "canary",
                           {{"action", "start"}, {"target", "green"}, {"steps", {5, 25.5, 100}}, {"interval_seconds", 1.5}},
                           kPeer.uid,
                           kPeer.pid,
                           "manual",
                           Weights{0},
                           Weights{500}};
  EXPECT_EQ(ctl.state().history.back(), start);
  apply(ctl, canary_cmd(CanaryAction::pause));
  EXPECT_EQ(ctl.state().history.back().command, "canary");
  EXPECT_EQ(ctl.state().history.back().args, (object{{"action", "pause"}}));
  apply(ctl, canary_cmd(CanaryAction::resume));
  EXPECT_EQ(ctl.state().history.back().command, "canary");
  EXPECT_EQ(ctl.state().history.back().args, (object{{"action", "resume"}}));

  const RolloutStep advance{RolloutStep::Kind::advance, "canary: step 2 of 3 after pass: ..."};
  auto d = ctl.apply_rollout(0, advance, Peer{0, 99}, kNow, 5000);
  ASSERT_TRUE(d.next.has_value());
  ctl.commit(*d.next);
  const HistoryEntry advanced{std::string(kNow), "app", "canary", {{"action", "advance"}}, 0, 99, advance.reason,
                              Weights{500}, Weights{2550}};
  EXPECT_EQ(ctl.state().history.back(), advanced);

  d = apply(ctl, canary_cmd(CanaryAction::abort));
  EXPECT_TRUE(d.rollback);
  const HistoryEntry aborted{std::string(kNow), "app", "canary", {{"action", "abort"}}, kPeer.uid, kPeer.pid,
                             "manual", Weights{2550}, Weights{0}};
  EXPECT_EQ(ctl.state().history.back(), aborted);
  EXPECT_EQ(ctl.state().history.size(), 5u);
}

TEST(ControllerHistory, CanaryStartRecordsTheConfiguredStepsAndWholeSecondsAsIntegers) {
  const auto cfg = one_service(10000);  // all green: the canary moves traffic to blue
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, canary_cmd(CanaryAction::start));
  const auto& args = ctl.state().history.back().args;
  EXPECT_EQ(args, (boost::json::object{
                      {"action", "start"}, {"target", "blue"}, {"steps", {10, 50, 100}}, {"interval_seconds", 60}}));
  EXPECT_TRUE(args.at("interval_seconds").is_int64());
}

TEST(ControllerHistory, WatchdogRollbackIsRollbackAndPromoteIsCanary) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, split(5000));
  const RolloutStep failed{RolloutStep::Kind::rollback, "watchdog: error_rate 0.213 > 0.05 (n=412, window 30s)"};
  auto d = ctl.apply_rollout(0, failed, Peer{0, 99}, kNow, 1000);
  ASSERT_TRUE(d.next.has_value());
  EXPECT_TRUE(d.rollback);
  ctl.commit(*d.next);
  const HistoryEntry rolled_back{std::string(kNow), "app", "rollback", {}, 0, 99, failed.reason, Weights{5000},
                                 Weights{0}};
  EXPECT_EQ(ctl.state().history.back(), rolled_back);

  apply(ctl, switch_to(Color::green));  // baking at 100 %
  const RolloutStep promote{RolloutStep::Kind::promote, "canary: promoted after baking 300s"};
  d = ctl.apply_rollout(0, promote, Peer{0, 99}, kNow, 2000);
  ASSERT_TRUE(d.next.has_value());
  ctl.commit(*d.next);
  const HistoryEntry promoted{std::string(kNow), "app", "canary", {{"action", "promote"}}, 0, 99, promote.reason,
                              Weights{10000}, Weights{10000}};
  EXPECT_EQ(ctl.state().history.back(), promoted);
}

TEST(ControllerHistory, KeepsTheNewestThousand) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  for (std::uint32_t i = 1; i <= State::max_history + 5; ++i) apply(ctl, split(i % 2 == 1 ? 5000 : 2500));
  ASSERT_EQ(ctl.state().history.size(), State::max_history);
  // Change 1 was 0 → 50, then 50 → 25 → 50 ...; the oldest kept is change 6 (even: 50 → 25).
  EXPECT_EQ(ctl.state().history.front().before.green_bp, 5000u);
  EXPECT_EQ(ctl.state().history.front().after.green_bp, 2500u);
  EXPECT_EQ(ctl.state().history.back().after.green_bp, 5000u);  // change 1005 (odd)
}

// The one-line summary a fleet logs for a change (control/core/service_document), of real entries.
TEST(FleetChangeSummary, OfTheControllersEntries) {
  const auto cfg = two_services();
  Controller ctl(cfg, Controller::initial_state(cfg));
  auto summary_after = [&](const Command& c) {
    apply(ctl, c);
    return change_summary(ctl.state().history.back());
  };
  EXPECT_EQ(summary_after(split(3000, "app")), "split green 30");
  EXPECT_EQ(summary_after(rollback_cmd("app")), "rollback");
  EXPECT_EQ(summary_after(switch_to(Color::green, "app")), "switch green");
  EXPECT_EQ(summary_after(server_cmd(ServerAction::drain, "127.0.0.1:5006", "app")), "server drain 127.0.0.1:5006");
}

// ----------------------------------------------------------------------- reconcile

TEST(ControllerReconcile, KeepsKnownServicesStartsNewOnesDropsStaleServers) {
  const auto cfg = two_services();
  State loaded;
  ServiceState app;
  app.name = "app";
  app.weights = Weights{4000};
  app.stable = Weights{0};
  app.target = Color::green;
  app.phase = Phase::canary;
  app.step = 1;
  app.reason = "manual";
  app.servers = {{"127.0.0.1:5006", AdminState::disabled},
                 {"127.0.0.1:5007", AdminState::draining},
                 {"10.0.0.9:80", AdminState::disabled}};  // no longer configured
  ServiceState gone;
  gone.name = "gone";
  gone.weights = Weights{10000};
  loaded.services = {gone, app};
  loaded.history.push_back(
      HistoryEntry{"2026-01-01T00:00:00.000Z", "gone", "switch", {{"color", "green"}}, 0, 1, "manual", Weights{0},
                   Weights{10000}});
  loaded.history.push_back(HistoryEntry{"2026-01-01T00:00:01.000Z", "app", "split", {{"green", 40}}, 0, 2, "manual",
                                        Weights{0}, Weights{4000}});

  const State s = Controller::reconcile(cfg, loaded);
  ASSERT_EQ(s.services.size(), 2u);
  // Config order, not the loaded order.
  EXPECT_EQ(s.services[0].name, "app");
  EXPECT_EQ(s.services[0].weights.green_bp, 4000u);
  EXPECT_EQ(s.services[0].stable.green_bp, 0u);
  EXPECT_EQ(s.services[0].target, Color::green);
  EXPECT_EQ(s.services[0].phase, Phase::canary);
  EXPECT_EQ(s.services[0].step, 1u);
  EXPECT_EQ(s.services[0].reason, "manual");
  const std::map<std::string, AdminState> want_servers = {{"127.0.0.1:5006", AdminState::disabled},
                                                          {"127.0.0.1:5007", AdminState::draining}};
  EXPECT_EQ(s.services[0].servers, want_servers);
  // "api" was not in the file: it starts from `initial`.
  EXPECT_EQ(s.services[1].name, "api");
  EXPECT_EQ(s.services[1].weights.green_bp, 3000u);
  EXPECT_EQ(s.services[1].stable.green_bp, 3000u);
  EXPECT_EQ(s.services[1].phase, Phase::idle);
  EXPECT_FALSE(s.services[1].target.has_value());
  // The history is kept whole, even entries of services no longer configured.
  EXPECT_EQ(s.history, loaded.history);
}

TEST(ControllerReconcile, EmptyLoadedStateIsTheInitialState) {
  const auto cfg = two_services();
  EXPECT_EQ(Controller::reconcile(cfg, State{}), Controller::initial_state(cfg));
}

TEST(ControllerReconcile, ReconciledStateDrivesDecisions) {
  const auto cfg = one_service();
  State loaded = Controller::initial_state(cfg);
  loaded.services[0].weights = Weights{5000};
  loaded.services[0].servers = {{"127.0.0.1:5006", AdminState::disabled}};
  Controller ctl(cfg, Controller::reconcile(cfg, loaded));
  const auto d = ctl.decide(split(6000), kPeer, kNow);
  EXPECT_EQ(d.error, "green has no healthy server (use --force to override)");
  apply(ctl, rollback_cmd());
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, 0u);
}

// ----------------------------------------------------------------------- table

TEST(ControllerTable, WeightsAndEnabledServers) {
  const auto cfg = two_services();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, split(2550, "app"));
  apply(ctl, server_cmd(ServerAction::disable, "127.0.0.1:5006", "app"));
  apply(ctl, server_cmd(ServerAction::drain, "127.0.0.1:6005", "api"));
  const auto t = ctl.table(42);
  EXPECT_EQ(t.version, 42u);
  ASSERT_EQ(t.services.size(), 2u);
  EXPECT_EQ(t.services[0].name, "app");
  EXPECT_EQ(t.services[0].green_bp, 2550u);
  EXPECT_EQ(t.services[1].name, "api");
  EXPECT_EQ(t.services[1].green_bp, 3000u);

  const auto& app_blue = t.services[0].pool(Color::blue);
  const auto& app_green = t.services[0].pool(Color::green);
  ASSERT_EQ(app_blue.size(), 1u);
  ASSERT_EQ(app_green.size(), 2u);
  EXPECT_TRUE(app_blue[0].enabled);
  EXPECT_TRUE(app_blue[0].usable());
  EXPECT_FALSE(app_green[0].enabled);  // 5006 disabled
  EXPECT_FALSE(app_green[0].usable());
  EXPECT_TRUE(app_green[0].healthy);   // disabling says nothing about health
  EXPECT_TRUE(app_green[1].enabled);   // 5007
  EXPECT_TRUE(app_green[1].usable());
  // Ids: blue then green of every service, in order.
  EXPECT_EQ(app_blue[0].id, 0u);
  EXPECT_EQ(app_green[0].id, 1u);
  EXPECT_EQ(app_green[1].id, 2u);
  const auto& api_blue = t.services[1].pool(Color::blue);
  const auto& api_green = t.services[1].pool(Color::green);
  ASSERT_EQ(api_blue.size(), 1u);
  ASSERT_EQ(api_green.size(), 1u);
  EXPECT_FALSE(api_blue[0].enabled);  // 6005 draining
  EXPECT_FALSE(api_blue[0].usable());
  EXPECT_TRUE(api_green[0].usable());
  EXPECT_EQ(api_blue[0].id, 3u);
  EXPECT_EQ(api_green[0].id, 4u);
}

TEST(ControllerTable, EveryServerUsableInitially) {
  const auto cfg = one_service(10000);
  const Controller ctl(cfg, Controller::initial_state(cfg));
  const auto t = ctl.table(1);
  ASSERT_EQ(t.services.size(), 1u);
  EXPECT_EQ(t.services[0].green_bp, 10000u);
  for (auto c : {Color::blue, Color::green}) {
    ASSERT_EQ(t.services[0].pool(c).size(), 1u);
    EXPECT_TRUE(t.services[0].pool(c)[0].enabled);
    EXPECT_TRUE(t.services[0].pool(c)[0].healthy);
    EXPECT_TRUE(t.services[0].pool(c)[0].usable());
  }
}

TEST(ControllerTable, HealthBySeverId) {
  const auto cfg = two_services();
  Controller ctl(cfg, Controller::initial_state(cfg));
  ctl.set_health({true, false, true, false});  // id 4 (api green) absent: healthy
  const auto t = ctl.table(2);
  EXPECT_TRUE(t.services[0].pool(Color::blue)[0].healthy);
  EXPECT_FALSE(t.services[0].pool(Color::green)[0].healthy);
  EXPECT_TRUE(t.services[0].pool(Color::green)[0].enabled);
  EXPECT_FALSE(t.services[0].pool(Color::green)[0].usable());
  EXPECT_TRUE(t.services[0].pool(Color::green)[1].usable());
  EXPECT_FALSE(t.services[1].pool(Color::blue)[0].usable());
  EXPECT_TRUE(t.services[1].pool(Color::green)[0].usable());
}

// ----------------------------------------------------------------------- health

TEST(ControllerHealth, TargetWithOnlyDownServersIsRefusedUnlessForced) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  ctl.set_health({true, false});  // blue 5005 up, green 5006 down
  auto d = ctl.decide(switch_to(Color::green), kPeer, kNow);
  EXPECT_EQ(d.error, "green has no healthy server (use --force to override)");
  EXPECT_FALSE(d.next.has_value());
  d = ctl.decide(split(100), kPeer, kNow);
  EXPECT_EQ(d.error, "green has no healthy server (use --force to override)");
  apply(ctl, split(100, "", true));
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, 100u);
  ctl.set_health({true, true});
  apply(ctl, switch_to(Color::green));
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, 10000u);
}

TEST(ControllerHealth, DownBlueBlocksAMoveTowardBlue) {
  const auto cfg = one_service(10000);
  Controller ctl(cfg, Controller::initial_state(cfg));
  ctl.set_health({false, true});
  const auto d = ctl.decide(switch_to(Color::blue), kPeer, kNow);
  EXPECT_EQ(d.error, "blue has no healthy server (use --force to override)");
}

TEST(ControllerHealth, RollbackIsNeverRefused) {
  const auto cfg = one_service();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, split(5000));
  ctl.set_health({false, false});
  apply(ctl, rollback_cmd());
  EXPECT_EQ(ctl.state().services[0].weights.green_bp, 0u);
}

// ----------------------------------------------------------------------- names

TEST(ServerStateName, AsSpecNamesThem) {
  EXPECT_EQ(server_state_name(AdminState::enabled, true), "up");
  EXPECT_EQ(server_state_name(AdminState::enabled, false), "down");
  EXPECT_EQ(server_state_name(AdminState::disabled, true), "disabled");
  EXPECT_EQ(server_state_name(AdminState::disabled, false), "disabled");
  EXPECT_EQ(server_state_name(AdminState::draining, true), "draining");
  EXPECT_EQ(server_state_name(AdminState::draining, false), "draining");
}

}  // namespace
}  // namespace bgproxy::control
