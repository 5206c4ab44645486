// Control-socket answers (control/core/replies, SPEC §7): status, health, history,
// change, ok and error lines, parsed back with boost::json and checked field by field; and what
// a fleet adds to them (README "Running a fleet", SPEC §12).
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "bgproxy/config/config.hpp"
#include "control/core/command.hpp"
#include "control/core/state.hpp"
#include "bgproxy/health/tracker.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "control/core/controller.hpp"
#include "control/core/fleet_view.hpp"
#include "control/core/replies.hpp"

namespace bgproxy::control {
namespace {

namespace json = boost::json;
using routing::Color;

config::Endpoint ep(const std::string& host, std::uint16_t port) {
  return config::Endpoint{host + ":" + std::to_string(port), host, port};
}

config::Service service(const std::string& name, std::vector<config::Endpoint> blue,
                        std::vector<config::Endpoint> green, std::uint32_t initial_green_bp) {
  config::Service s;
  s.name = name;
  s.blue.servers = std::move(blue);
  s.green.servers = std::move(green);
  s.initial_green_bp = initial_green_bp;
  return s;
}

/// "app": blue 5005, green 5006 + 5007; "api": blue 6005, green 6006, health checks off, initial 100 % green.
config::Config two_services() {
  config::Config cfg;
  cfg.services.push_back(
      service("app", {ep("127.0.0.1", 5005)}, {ep("127.0.0.1", 5006), ep("127.0.0.1", 5007)}, 0));
  cfg.services.push_back(service("api", {ep("127.0.0.1", 6005)}, {ep("127.0.0.1", 6006)}, 10000));
  cfg.services[1].health_check.enabled = false;
  return cfg;
}

void apply(Controller& ctl, const Command& c) {
  auto d = ctl.decide(c, Peer{0, 1}, "2026-11-24T21:30:00.000Z");
  ASSERT_EQ(d.error, "");
  ASSERT_TRUE(d.next.has_value());
  ctl.commit(*d.next);
}

Command split(std::uint32_t bp, std::string svc) {
  Command c;
  c.kind = CommandKind::split;
  c.green_bp = bp;
  c.service = std::move(svc);
  return c;
}

Command server_cmd(ServerAction a, std::string address, std::string svc) {
  Command c;
  c.kind = CommandKind::server;
  c.server = a;
  c.address = std::move(address);
  c.service = std::move(svc);
  return c;
}

json::object parse(const std::string& line) {
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  json::error_code ec;
  auto v = json::parse(line, ec);
  EXPECT_FALSE(ec) << ec.message() << ": " << line;
  EXPECT_TRUE(v.is_object()) << line;
  return v.is_object() ? v.get_object() : json::object{};
}

/// A number as a double, whatever JSON kind it was parsed into.
double num(const json::value& v) {
  EXPECT_TRUE(v.is_number()) << json::serialize(v);
  return v.is_number() ? v.to_number<double>() : -1;
}

// ----------------------------------------------------------------------- status

TEST(StatusReply, EveryServiceWithoutFigures) {
  const auto cfg = two_services();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, split(3000, "app"));
  apply(ctl, server_cmd(ServerAction::disable, "127.0.0.1:5007", "app"));
  apply(ctl, server_cmd(ServerAction::drain, "127.0.0.1:6005", "api"));

  const std::string line = status_reply(ctl, -1, {}, nullptr);
  const auto o = parse(line);
  EXPECT_EQ(o.at("ok"), true);
  const auto& services = o.at("services").as_array();
  ASSERT_EQ(services.size(), 2u);

  const auto& app = services[0].as_object();
  EXPECT_EQ(app.at("name"), "app");
  EXPECT_EQ(num(app.at("weights").at("blue")), 70.0);
  EXPECT_EQ(num(app.at("weights").at("green")), 30.0);
  EXPECT_EQ(num(app.at("stable").at("blue")), 100.0);
  EXPECT_EQ(num(app.at("stable").at("green")), 0.0);
  EXPECT_EQ(app.at("target"), "green");
  EXPECT_EQ(app.at("phase"), "canary");
  EXPECT_EQ(num(app.at("step")), 0.0);
  EXPECT_EQ(app.at("reason"), "manual");
  const auto& blue = app.at("colors").at("blue").as_object();
  const auto& green = app.at("colors").at("green").as_object();
  ASSERT_EQ(blue.at("servers").as_array().size(), 1u);
  EXPECT_EQ(blue.at("servers").at(0).at("address"), "127.0.0.1:5005");
  EXPECT_EQ(blue.at("servers").at(0).at("state"), "up");
  ASSERT_EQ(green.at("servers").as_array().size(), 2u);
  EXPECT_EQ(green.at("servers").at(0).at("address"), "127.0.0.1:5006");
  EXPECT_EQ(green.at("servers").at(0).at("state"), "up");
  EXPECT_EQ(green.at("servers").at(1).at("address"), "127.0.0.1:5007");
  EXPECT_EQ(green.at("servers").at(1).at("state"), "disabled");
  // No figures yet: no traffic fields.
  EXPECT_FALSE(blue.contains("rps"));
  EXPECT_FALSE(green.contains("requests"));

  const auto& api = services[1].as_object();
  EXPECT_EQ(api.at("name"), "api");
  EXPECT_EQ(num(api.at("weights").at("blue")), 0.0);
  EXPECT_EQ(num(api.at("weights").at("green")), 100.0);
  EXPECT_TRUE(api.at("target").is_null());
  EXPECT_EQ(api.at("phase"), "idle");
  EXPECT_EQ(api.at("colors").at("blue").at("servers").at(0).at("state"), "draining");
  EXPECT_EQ(api.at("colors").at("green").at("servers").at(0).at("state"), "up");

  // Weights are written the plain way (SPEC §7 example), not in exponent form.
  EXPECT_NE(line.find(R"("weights":{"blue":70.0,"green":30.0})"), std::string::npos) << line;
}

TEST(StatusReply, OneServiceWithFigures) {
  const auto cfg = two_services();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  WindowFigures figures(2);
  figures[1][0] = stats::ColorWindow{375, 0, 12.5, 0.0, 0.004};
  figures[1][1] = stats::ColorWindow{412, 88, 13.734, 0.213, 2.5};
  const auto o = parse(status_reply(ctl, 1, figures, nullptr));
  const auto& services = o.at("services").as_array();
  ASSERT_EQ(services.size(), 1u);
  const auto& api = services[0].as_object();
  EXPECT_EQ(api.at("name"), "api");
  const auto& blue = api.at("colors").at("blue");
  EXPECT_EQ(num(blue.at("rps")), 12.5);
  EXPECT_EQ(blue.at("requests").to_number<std::uint64_t>(), 375u);
  EXPECT_EQ(num(blue.at("error_rate")), 0.0);
  EXPECT_EQ(num(blue.at("p95_seconds")), 0.004);
  const auto& green = api.at("colors").at("green");
  EXPECT_EQ(num(green.at("rps")), 13.73);  // rounded to two decimals
  EXPECT_EQ(green.at("requests").to_number<std::uint64_t>(), 412u);
  EXPECT_EQ(num(green.at("error_rate")), 0.213);
  EXPECT_EQ(num(green.at("p95_seconds")), 2.5);
}

TEST(StatusReply, AGrpcServiceTellsItsStreamingCallsOthersDoNot) {
  auto cfg = two_services();
  cfg.services[1].grpc = true;
  const Controller ctl(cfg, Controller::initial_state(cfg));
  WindowFigures figures(2);
  figures[0][0] = stats::ColorWindow{10, 0, 1.0, 0.0, 0.004, 0};
  figures[1][1] = stats::ColorWindow{12, 0, 1.2, 0.0, 0.004, 5};
  const auto o = parse(status_reply(ctl, -1, figures, nullptr));
  const auto& services = o.at("services").as_array();
  ASSERT_EQ(services.size(), 2u);
  EXPECT_FALSE(services[0].at("colors").at("blue").as_object().contains("streaming_calls"));
  EXPECT_EQ(services[1].at("colors").at("green").at("streaming_calls").to_number<std::uint64_t>(), 5u);
  EXPECT_EQ(services[1].at("colors").at("blue").at("streaming_calls").to_number<std::uint64_t>(), 0u);
}

TEST(StatusReply, FiguresOfOtherServicesAreNotMixedIn) {
  const auto cfg = two_services();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  WindowFigures figures(1);  // only for service 0
  figures[0][1] = stats::ColorWindow{10, 1, 0.5, 0.1, 0.01};
  const auto o = parse(status_reply(ctl, -1, figures, nullptr));
  const auto& services = o.at("services").as_array();
  ASSERT_EQ(services.size(), 2u);
  EXPECT_EQ(services[0].at("colors").at("green").at("requests").to_number<std::uint64_t>(), 10u);
  EXPECT_EQ(num(services[0].at("colors").at("blue").at("rps")), 0.0);
  EXPECT_FALSE(services[1].at("colors").at("green").as_object().contains("requests"));
}

// ----------------------------------------------------------------------- health

TEST(HealthReply, ServersOfEveryColor) {
  const auto cfg = two_services();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, server_cmd(ServerAction::drain, "127.0.0.1:5006", "app"));
  const auto o = parse(health_reply(ctl, -1, nullptr, health::Clock::time_point{}));
  EXPECT_EQ(o.at("ok"), true);
  const auto& services = o.at("services").as_array();
  ASSERT_EQ(services.size(), 2u);
  const auto& app = services[0].as_object();
  EXPECT_EQ(app.at("name"), "app");
  EXPECT_EQ(app.at("health_check"), true);
  const auto& servers = app.at("servers").as_array();
  ASSERT_EQ(servers.size(), 3u);
  const std::vector<std::pair<std::string, std::string>> want = {
      {"blue", "127.0.0.1:5005"}, {"green", "127.0.0.1:5006"}, {"green", "127.0.0.1:5007"}};
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(servers[i].at("color"), want[i].first.c_str());
    EXPECT_EQ(servers[i].at("address"), want[i].second.c_str());
    EXPECT_EQ(servers[i].at("consecutive_failures").to_number<int>(), 0);
    EXPECT_EQ(servers[i].at("consecutive_successes").to_number<int>(), 0);
    EXPECT_TRUE(servers[i].at("last_check").is_null());
  }
  EXPECT_EQ(servers[0].at("state"), "up");
  EXPECT_EQ(servers[1].at("state"), "draining");
  EXPECT_EQ(servers[2].at("state"), "up");
  EXPECT_EQ(services[1].at("health_check"), false);
}

TEST(HealthReply, OneService) {
  const auto cfg = two_services();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  const auto o = parse(health_reply(ctl, 1, nullptr, health::Clock::time_point{}));
  const auto& services = o.at("services").as_array();
  ASSERT_EQ(services.size(), 1u);
  EXPECT_EQ(services[0].at("name"), "api");
  EXPECT_EQ(services[0].at("servers").as_array().size(), 2u);
}

TEST(HealthReply, Issue19LearnedIdleAgeShownPerServerWhenLearned) {
  const auto cfg = two_services();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  std::vector<stats::ServerStats> servers(5);
  servers[1].learned_idle_us = 240000;  // app green 127.0.0.1:5006
  const auto o = parse(health_reply(ctl, 0, nullptr, health::Clock::time_point{}, &servers));
  const auto& list = o.at("services").at(0).at("servers").as_array();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_FALSE(list[0].as_object().contains("learned_idle_seconds"));
  EXPECT_EQ(list[1].at("address"), "127.0.0.1:5006");
  EXPECT_EQ(num(list[1].at("learned_idle_seconds")), 0.24);
  EXPECT_FALSE(list[2].as_object().contains("learned_idle_seconds"));
}

TEST(HealthReply, WithTrackerShowsChecks) {
  using namespace std::chrono_literals;
  const auto cfg = two_services();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, server_cmd(ServerAction::disable, "127.0.0.1:5007", "app"));
  const health::Clock::time_point t0{};
  health::Tracker tracker(cfg, routing::enumerate_servers(cfg), t0);
  // id 0 = app blue 5005: up after rise = 2 successes at t0 + 1s.
  tracker.record_check(0, health::CheckResult{true, 200, 0.002, ""}, t0 + 500ms);
  tracker.record_check(0, health::CheckResult{true, 200, 0.002, ""}, t0 + 1s);
  // id 1 = app green 5006: three failures, never up.
  for (int i = 0; i < 3; ++i) tracker.record_check(1, health::CheckResult{false, 503, 0.001, "status 503"}, t0 + 1s);

  const auto o = parse(health_reply(ctl, -1, &tracker, t0 + 10s));
  const auto& app = o.at("services").at(0).as_object();
  const auto& servers = app.at("servers").as_array();
  ASSERT_EQ(servers.size(), 3u);
  const auto& s0 = servers[0].as_object();
  EXPECT_EQ(s0.at("state"), "up");
  EXPECT_EQ(s0.at("consecutive_successes").to_number<int>(), 2);
  EXPECT_EQ(s0.at("consecutive_failures").to_number<int>(), 0);
  EXPECT_EQ(num(s0.at("since_seconds")), 9.0);
  EXPECT_EQ(s0.at("last_check").at("ok"), true);
  EXPECT_EQ(s0.at("last_check").at("status").to_number<int>(), 200);
  EXPECT_EQ(num(s0.at("last_check").at("latency_seconds")), 0.002);
  EXPECT_FALSE(s0.at("last_check").as_object().contains("error"));
  const auto& s1 = servers[1].as_object();
  EXPECT_EQ(s1.at("state"), "down");
  EXPECT_EQ(s1.at("consecutive_failures").to_number<int>(), 3);
  EXPECT_EQ(num(s1.at("since_seconds")), 10.0);
  EXPECT_EQ(s1.at("last_check").at("ok"), false);
  EXPECT_EQ(s1.at("last_check").at("status").to_number<int>(), 503);
  EXPECT_EQ(s1.at("last_check").at("error"), "status 503");
  const auto& s2 = servers[2].as_object();
  EXPECT_EQ(s2.at("state"), "disabled");  // the operator's word wins over health
  EXPECT_TRUE(s2.at("last_check").is_null());
  // api has health_check: off — always up, no check details.
  const auto& api = o.at("services").at(1).as_object();
  EXPECT_EQ(api.at("health_check"), false);
  for (const auto& srv : api.at("servers").as_array()) {
    EXPECT_EQ(srv.at("state"), "up");
    EXPECT_TRUE(srv.at("last_check").is_null());
    EXPECT_FALSE(srv.as_object().contains("since_seconds"));
  }
}

TEST(StatusReply, WithTrackerShowsDownServers) {
  const auto cfg = two_services();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  const health::Clock::time_point t0{};
  health::Tracker tracker(cfg, routing::enumerate_servers(cfg), t0);  // checked servers start down
  tracker.record_check(2, health::CheckResult{true, 200, 0.001, ""}, t0);
  tracker.record_check(2, health::CheckResult{true, 200, 0.001, ""}, t0);
  const auto o = parse(status_reply(ctl, -1, {}, &tracker));
  const auto& app = o.at("services").at(0);
  EXPECT_EQ(app.at("colors").at("blue").at("servers").at(0).at("state"), "down");
  EXPECT_EQ(app.at("colors").at("green").at("servers").at(0).at("state"), "down");
  EXPECT_EQ(app.at("colors").at("green").at("servers").at(1).at("state"), "up");  // id 2
  const auto& api = o.at("services").at(1);
  EXPECT_EQ(api.at("colors").at("blue").at("servers").at(0).at("state"), "up");
  EXPECT_EQ(api.at("colors").at("green").at("servers").at(0).at("state"), "up");
}

// ----------------------------------------------------------------------- status in a fleet

/// Instance "a" of three, connected, routing by revision 42.
FleetView fleet_of_three() {
  FleetView f;
  f.connected = true;
  f.instance = "a";
  f.revision = 42;
  f.members = {{"a", "127.0.0.1:9901", 42, true}, {"b", "127.0.0.1:9902", 42, true}, {"c", "127.0.0.1:9903", 40, false}};
  f.service_revisions = {42, 17};
  f.conflicts = {0, 3};
  return f;
}

TEST(FleetStatusReply, FleetObjectAndServiceRevisions) {
  const auto cfg = two_services();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  const FleetView fleet = fleet_of_three();
  const auto o = parse(status_reply(ctl, -1, {}, nullptr, nullptr, &fleet));
  EXPECT_EQ(o.at("ok"), true);
  const auto& services = o.at("services").as_array();
  ASSERT_EQ(services.size(), 2u);
  EXPECT_EQ(services[0].at("name"), "app");
  EXPECT_EQ(services[0].at("revision").to_number<std::int64_t>(), 42);
  EXPECT_EQ(services[1].at("name"), "api");
  EXPECT_EQ(services[1].at("revision").to_number<std::int64_t>(), 17);

  const auto& f = o.at("fleet").as_object();
  EXPECT_EQ(f.at("connected"), true);
  EXPECT_EQ(f.at("instance"), "a");
  EXPECT_EQ(f.at("revision").to_number<std::int64_t>(), 42);
  const auto& members = f.at("members").as_array();
  ASSERT_EQ(members.size(), 3u);
  const std::vector<std::string> names = {"a", "b", "c"};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& m = members[i].as_object();
    EXPECT_EQ(m.size(), 4u);
    EXPECT_EQ(m.at("instance"), names[i].c_str());
    EXPECT_EQ(m.at("address"), ("127.0.0.1:990" + std::to_string(i + 1)).c_str());
    EXPECT_EQ(m.at("revision").to_number<std::int64_t>(), i == 2 ? 40 : 42);
    EXPECT_EQ(m.at("connected"), i != 2);
  }
  EXPECT_EQ(f.size(), 4u);  // connected, instance, revision, members
}

TEST(FleetStatusReply, OneServiceGetsItsOwnRevision) {
  const auto cfg = two_services();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  const FleetView fleet = fleet_of_three();
  const auto o = parse(status_reply(ctl, 1, {}, nullptr, nullptr, &fleet));
  const auto& services = o.at("services").as_array();
  ASSERT_EQ(services.size(), 1u);
  EXPECT_EQ(services[0].at("name"), "api");
  EXPECT_EQ(services[0].at("revision").to_number<std::int64_t>(), 17);
  EXPECT_EQ(o.at("fleet").at("members").as_array().size(), 3u);
}

TEST(FleetStatusReply, DisconnectedWithoutMembersOrRevisionsYet) {
  const auto cfg = two_services();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  FleetView fleet;
  fleet.instance = "host:9901";
  fleet.service_revisions = {5};  // none yet for "api"
  const auto o = parse(status_reply(ctl, -1, {}, nullptr, nullptr, &fleet));
  const auto& f = o.at("fleet").as_object();
  EXPECT_EQ(f.at("connected"), false);
  EXPECT_EQ(f.at("instance"), "host:9901");
  EXPECT_EQ(f.at("revision").to_number<std::int64_t>(), 0);
  EXPECT_TRUE(f.at("members").as_array().empty());
  EXPECT_EQ(o.at("services").at(0).at("revision").to_number<std::int64_t>(), 5);
  EXPECT_FALSE(o.at("services").at(1).as_object().contains("revision"));
}

TEST(FleetStatusReply, WithoutAFleetNoFleetFields) {
  const auto cfg = two_services();
  const Controller ctl(cfg, Controller::initial_state(cfg));
  for (const std::string& line : {status_reply(ctl, -1, {}, nullptr), status_reply(ctl, -1, {}, nullptr, nullptr, nullptr)}) {
    const auto o = parse(line);
    EXPECT_FALSE(o.contains("fleet")) << line;
    for (const auto& s : o.at("services").as_array()) EXPECT_FALSE(s.as_object().contains("revision")) << line;
  }
}

// ----------------------------------------------------------------------- history

State five_entries() {
  State s;
  const char* services[] = {"app", "api", "app", "app", "api"};
  for (int i = 0; i < 5; ++i) {
    s.record(HistoryEntry{"2026-11-24T21:30:0" + std::to_string(i) + ".000Z", services[i], "split",
                          {{"green", 10 * (i + 1)}}, static_cast<std::uint32_t>(i), 100 + i, "manual", Weights{static_cast<std::uint32_t>(1000 * i)},
                          Weights{static_cast<std::uint32_t>(1000 * (i + 1))}});
  }
  return s;
}

std::vector<std::string> times_of(const json::object& o) {
  std::vector<std::string> out;
  for (const auto& e : o.at("history").as_array()) out.emplace_back(e.at("time").as_string());
  return out;
}

TEST(HistoryReply, EntryFields) {
  State s;
  s.record(HistoryEntry{"2026-11-24T21:30:00.123Z", "app", "split", {{"green", 50}}, 0, 4242, "manual", Weights{0},
                        Weights{5000}});
  const std::string line = history_reply(s, "", 20);
  const auto o = parse(line);
  EXPECT_EQ(o.at("ok"), true);
  const auto& h = o.at("history").as_array();
  ASSERT_EQ(h.size(), 1u);
  const auto& e = h[0].as_object();
  EXPECT_EQ(e.at("time"), "2026-11-24T21:30:00.123Z");
  EXPECT_EQ(e.at("service"), "app");
  EXPECT_EQ(e.at("command"), "split");
  EXPECT_EQ(e.at("args"), (json::object{{"green", 50}}));
  EXPECT_EQ(e.at("by").at("uid").to_number<std::uint32_t>(), 0u);
  EXPECT_EQ(e.at("by").at("pid").to_number<std::int32_t>(), 4242);
  EXPECT_EQ(e.at("reason"), "manual");
  EXPECT_EQ(num(e.at("before").at("blue")), 100.0);
  EXPECT_EQ(num(e.at("before").at("green")), 0.0);
  EXPECT_EQ(num(e.at("after").at("blue")), 50.0);
  EXPECT_EQ(num(e.at("after").at("green")), 50.0);
  EXPECT_NE(line.find(R"("before":{"blue":100.0,"green":0.0},"after":{"blue":50.0,"green":50.0})"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find(R"("command":"split","args":{"green":50},)"), std::string::npos) << line;
}

TEST(HistoryReply, ArgsOfEveryVerb) {
  State s;
  s.record(HistoryEntry{"t", "app", "switch", {{"color", "green"}, {"force", true}}, 0, 1, "manual", Weights{0},
                        Weights{10000}});
  s.record(HistoryEntry{"t", "app", "rollback", {}, 0, 1, "manual", Weights{10000}, Weights{0}});
  s.record(HistoryEntry{"t", "app", "canary",
                        {{"action", "start"}, {"target", "green"}, {"steps", {10, 50, 100}}, {"interval_seconds", 60}},
                        0, 1, "manual", Weights{0}, Weights{1000}});
  s.record(HistoryEntry{"t", "app", "server", {{"action", "disable"}, {"address", "127.0.0.1:5006"}}, 0, 1, "manual",
                        Weights{1000}, Weights{1000}});
  const std::string line = history_reply(s, "", 20);
  EXPECT_NE(line.find(R"("command":"switch","args":{"color":"green","force":true},)"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("command":"rollback","args":{},)"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("command":"canary","args":{"action":"start","target":"green","steps":[10,50,100],)"
                      R"("interval_seconds":60},)"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find(R"("command":"server","args":{"action":"disable","address":"127.0.0.1:5006"},)"),
            std::string::npos)
      << line;
}

TEST(HistoryReply, FractionalWeights) {
  State s;
  s.record(HistoryEntry{"t", "app", "split", {{"green", 12.34}}, 0, 1, "manual", Weights{0}, Weights{1234}});
  const std::string line = history_reply(s, "", 20);
  const auto o = parse(line);
  EXPECT_EQ(num(o.at("history").at(0).at("args").at("green")), 12.34);
  EXPECT_NE(line.find(R"("args":{"green":12.34})"), std::string::npos) << line;
  EXPECT_EQ(num(o.at("history").at(0).at("after").at("green")), 12.34);
  EXPECT_EQ(num(o.at("history").at(0).at("after").at("blue")), 87.66);
}

TEST(HistoryReply, NewestNOldestFirst) {
  const State s = five_entries();
  EXPECT_EQ(times_of(parse(history_reply(s, "", 2))),
            (std::vector<std::string>{"2026-11-24T21:30:03.000Z", "2026-11-24T21:30:04.000Z"}));
  EXPECT_EQ(times_of(parse(history_reply(s, "", 20))).size(), 5u);
  EXPECT_EQ(times_of(parse(history_reply(s, "", 5))).front(), "2026-11-24T21:30:00.000Z");
  EXPECT_TRUE(times_of(parse(history_reply(s, "", 0))).empty());
}

TEST(HistoryReply, ServiceFilterThenLimit) {
  const State s = five_entries();
  // app entries are 0, 2, 3; the newest two of them are 2 and 3.
  EXPECT_EQ(times_of(parse(history_reply(s, "app", 2))),
            (std::vector<std::string>{"2026-11-24T21:30:02.000Z", "2026-11-24T21:30:03.000Z"}));
  EXPECT_EQ(times_of(parse(history_reply(s, "api", 20))),
            (std::vector<std::string>{"2026-11-24T21:30:01.000Z", "2026-11-24T21:30:04.000Z"}));
  const auto o = parse(history_reply(s, "api", 1));
  ASSERT_EQ(o.at("history").as_array().size(), 1u);
  EXPECT_EQ(o.at("history").at(0).at("command"), "split");
  EXPECT_EQ(o.at("history").at(0).at("args"), (json::object{{"green", 50}}));
  EXPECT_EQ(o.at("history").at(0).at("by").at("pid").to_number<int>(), 104);
  EXPECT_TRUE(times_of(parse(history_reply(s, "nope", 20))).empty());
}

TEST(HistoryReply, EmptyHistory) {
  EXPECT_EQ(history_reply(State{}, "", 20), R"({"ok":true,"history":[]})");
}

TEST(FleetHistoryReply, InstanceAndLocalWhenSet) {
  State s;
  const std::pair<std::string, bool> made_by[] = {{"a", false}, {"b", true}, {"", false}, {"", true}};
  for (const auto& [instance, local] : made_by) {
    s.record(HistoryEntry{"2026-12-03T10:00:00.000Z", "app", "split", {{"green", 30}}, 0, 4242, "manual", Weights{0},
                          Weights{3000}, instance, local});
  }
  const auto o = parse(history_reply(s, "", 20));
  const auto& h = o.at("history").as_array();
  ASSERT_EQ(h.size(), 4u);
  EXPECT_EQ(h[0].at("instance"), "a");
  EXPECT_FALSE(h[0].as_object().contains("local"));
  EXPECT_EQ(h[1].at("instance"), "b");
  EXPECT_EQ(h[1].at("local"), true);
  EXPECT_FALSE(h[2].as_object().contains("instance"));
  EXPECT_FALSE(h[2].as_object().contains("local"));
  EXPECT_FALSE(h[3].as_object().contains("instance"));
  EXPECT_EQ(h[3].at("local"), true);
  // The rest of an entry is as outside a fleet.
  EXPECT_EQ(h[1].at("by").at("pid").to_number<std::int32_t>(), 4242);
  EXPECT_EQ(h[1].at("command"), "split");
}

// ----------------------------------------------------------------------- change / ok / error

TEST(ChangeReply, TheServiceStatusUnderState) {
  const auto cfg = two_services();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, split(1250, "app"));
  WindowFigures figures(2);
  figures[0][1] = stats::ColorWindow{20, 2, 0.666, 0.1, 0.05};
  const auto o = parse(change_reply(ctl, 0, figures, nullptr));
  EXPECT_EQ(o.at("ok"), true);
  EXPECT_EQ(o.size(), 2u);
  const auto& st = o.at("state").as_object();
  EXPECT_EQ(st.at("name"), "app");
  EXPECT_EQ(num(st.at("weights").at("green")), 12.5);
  EXPECT_EQ(num(st.at("weights").at("blue")), 87.5);
  EXPECT_EQ(st.at("target"), "green");
  EXPECT_EQ(st.at("phase"), "canary");
  EXPECT_EQ(num(st.at("colors").at("green").at("rps")), 0.67);
  EXPECT_EQ(num(st.at("colors").at("green").at("error_rate")), 0.1);
  const auto o2 = parse(change_reply(ctl, 1, {}, nullptr));
  EXPECT_EQ(o2.at("state").at("name"), "api");
}

TEST(ChangeReply, AfterRollback) {
  const auto cfg = two_services();
  Controller ctl(cfg, Controller::initial_state(cfg));
  apply(ctl, split(4000, "app"));
  Command rb;
  rb.kind = CommandKind::rollback;
  rb.service = "app";
  apply(ctl, rb);
  const auto o = parse(change_reply(ctl, 0, {}, nullptr));
  EXPECT_EQ(o.at("state").at("phase"), "rolled_back");
  EXPECT_EQ(num(o.at("state").at("weights").at("green")), 0.0);
  EXPECT_EQ(o.at("state").at("reason"), "manual");
}

TEST(OkErrorReply, ExactLines) {
  EXPECT_EQ(ok_reply("configuration reloaded"), R"({"ok":true,"message":"configuration reloaded"})");
  EXPECT_EQ(error_reply("green weight must be between 0 and 100"),
            R"({"ok":false,"error":"green weight must be between 0 and 100"})");
  EXPECT_EQ(error_reply("unknown service \"x\""), R"({"ok":false,"error":"unknown service \"x\""})");
}

TEST(OkErrorReply, EscapedMessagesParseBack) {
  const std::string msg = "line\nbreak \"quoted\" back\\slash \t tab \x01";
  const auto o = parse(error_reply(msg));
  EXPECT_EQ(o.at("ok"), false);
  EXPECT_EQ(o.at("error").as_string(), msg);
}

}  // namespace
}  // namespace bgproxy::control
