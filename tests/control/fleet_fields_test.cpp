// What the fleet (README "Running a fleet", SPEC §12) adds to the control plane's pure parts:
// the history entries' "instance" and "local" in the state file's JSON, "local":true on the
// change commands of the control protocol, the "fleet" object and service revisions of a status
// answer, the fleet fields of a history answer, and the bgproxy_cluster_* metric families.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "bgproxy/config/config.hpp"
#include "bgproxy/health/tracker.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "control/core/command.hpp"
#include "control/core/controller.hpp"
#include "control/core/fleet_view.hpp"
#include "control/core/metrics.hpp"
#include "control/core/replies.hpp"
#include "control/core/service_document.hpp"
#include "control/core/service_runtime.hpp"
#include "control/core/state.hpp"
#include "control/core/stats_history.hpp"

namespace bgproxy::control {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

HistoryEntry entry(std::string time, std::string service, std::string instance, bool local) {
  HistoryEntry h;
  h.time = std::move(time);
  h.service = std::move(service);
  h.command = "split";
  h.args = {{"green", 30}};
  h.uid = 0;
  h.pid = 4242;
  h.after.green_bp = 3000;
  h.instance = std::move(instance);
  h.local = local;
  return h;
}

State one_service_state() {
  State s;
  ServiceState app;
  app.name = "app";
  s.services.push_back(app);
  return s;
}

// ----------------------------------------------------------------------- state: instance, local

TEST(FleetStateJson, InstanceAndLocalRoundTrip) {
  State s = one_service_state();
  s.record(entry("2026-12-03T10:00:00.000Z", "app", "a", false));
  s.record(entry("2026-12-03T10:00:01.000Z", "app", "b", true));
  s.record(entry("2026-12-03T10:00:02.000Z", "app", "", true));  // a --local change outside a fleet's view
  s.record(entry("2026-12-03T10:00:03.000Z", "app", "", false));
  const std::string text = to_json(s);
  const auto back = from_json(text);
  ASSERT_TRUE(back.has_value()) << back.error() << "\n" << text;
  EXPECT_EQ(*back, s);
  ASSERT_EQ(back->history.size(), 4u);
  EXPECT_EQ(back->history[0].instance, "a");
  EXPECT_FALSE(back->history[0].local);
  EXPECT_EQ(back->history[1].instance, "b");
  EXPECT_TRUE(back->history[1].local);
  EXPECT_EQ(back->history[2].instance, "");
  EXPECT_TRUE(back->history[2].local);
}

TEST(FleetStateJson, FieldsAbsentWhenEmptyOrFalse) {
  State s = one_service_state();
  s.record(entry("2026-12-03T10:00:00.000Z", "app", "", false));
  const std::string text = to_json(s);
  EXPECT_EQ(text.find("\"instance\""), std::string::npos) << text;
  EXPECT_EQ(text.find("\"local\""), std::string::npos) << text;

  const auto v = json::parse(to_json([] {
    State t = one_service_state();
    t.record(entry("2026-12-03T10:00:00.000Z", "app", "a", true));
    return t;
  }()));
  const auto& h = v.at("history").at(0).as_object();
  EXPECT_EQ(h.at("instance"), "a");
  EXPECT_EQ(h.at("local"), true);
}

TEST(FleetStateJson, EntriesWithoutTheFieldsReadAsOutsideAFleet) {
  const auto s = from_json(R"({"version":1,"services":[],"history":[{"time":"2026-12-03T10:00:00.000Z",)"
                           R"("service":"app","command":"rollback","args":{},"by":{"uid":0,"pid":1},)"
                           R"("reason":"manual","before":{"blue":50,"green":50},"after":{"blue":100,"green":0}}]})");
  ASSERT_TRUE(s.has_value()) << s.error();
  ASSERT_EQ(s->history.size(), 1u);
  EXPECT_EQ(s->history[0].instance, "");
  EXPECT_FALSE(s->history[0].local);
}

/// The state file's JSON of one entry with `field` set to the JSON `value`.
std::string with_field(std::string_view field, std::string_view value) {
  return R"({"version":1,"services":[],"history":[{"time":"2026-12-03T10:00:00.000Z",)"
         R"("service":"app","command":"rollback","args":{},"by":{"uid":0,"pid":1},)"
         R"("reason":"manual","before":{"blue":50,"green":50},"after":{"blue":100,"green":0},")" +
         std::string(field) + "\":" + std::string(value) + "}]}";
}

TEST(FleetStateJson, LocalMustBeABool) {
  ASSERT_TRUE(from_json(with_field("local", "false")).has_value());
  EXPECT_TRUE(from_json(with_field("local", "true"))->history[0].local);
  for (std::string_view bad : {"\"true\"", "1", "0", "null", "[]"}) {
    const auto s = from_json(with_field("local", bad));
    ASSERT_FALSE(s.has_value()) << bad;
    EXPECT_EQ(s.error(), "history[0].local: must be true or false") << bad;
  }
}

TEST(FleetStateJson, InstanceMustBeAString) {
  EXPECT_EQ(from_json(with_field("instance", "\"b\""))->history[0].instance, "b");
  for (std::string_view bad : {"1", "null", "true", "{}"}) {
    const auto s = from_json(with_field("instance", bad));
    ASSERT_FALSE(s.has_value()) << bad;
    EXPECT_EQ(s.error(), "history[0].instance: must be a string") << bad;
  }
}

// ----------------------------------------------------------------------- command: "local"

Command ok(std::string_view line) {
  const auto r = parse_command(line);
  EXPECT_TRUE(r.has_value()) << line << " -> " << (r.has_value() ? "" : r.error().message);
  return r.has_value() ? *r : Command{};
}

std::string error_of(std::string_view line) {
  const auto r = parse_command(line);
  EXPECT_FALSE(r.has_value()) << line;
  return r.has_value() ? std::string("<accepted>") : r.error().message;
}

TEST(FleetCommandLocal, AcceptedOnEveryChange) {
  const std::vector<std::pair<std::string, CommandKind>> lines = {
      {R"({"command":"split","green":30,"local":true})", CommandKind::split},
      {R"({"command":"split","service":"app","blue":30,"force":true,"local":true})", CommandKind::split},
      {R"({"command":"switch","color":"green","local":true})", CommandKind::switch_color},
      {R"({"command":"rollback","local":true})", CommandKind::rollback},
      {R"({"command":"rollback","service":"app","local":true})", CommandKind::rollback},
      {R"({"command":"canary","action":"start","steps":[10,100],"local":true})", CommandKind::canary},
      {R"({"command":"canary","action":"pause","local":true})", CommandKind::canary},
      {R"({"command":"canary","action":"resume","local":true})", CommandKind::canary},
      {R"({"command":"canary","action":"abort","local":true})", CommandKind::canary},
      {R"({"command":"server","action":"drain","address":"127.0.0.1:5006","local":true})", CommandKind::server},
      {R"({"local":true,"command":"switch","color":"blue"})", CommandKind::switch_color},
  };
  for (const auto& [line, kind] : lines) {
    const Command c = ok(line);
    EXPECT_EQ(c.kind, kind) << line;
    EXPECT_TRUE(c.local) << line;
  }
}

TEST(FleetCommandLocal, OtherFieldsAreReadAsWithoutIt) {
  const Command c = ok(R"({"command":"split","service":"app","green":12.5,"force":true,"local":true})");
  EXPECT_EQ(c.service, "app");
  EXPECT_EQ(c.green_bp, 1250u);
  EXPECT_TRUE(c.force);
  const Command s = ok(R"({"command":"server","action":"drain","address":"127.0.0.1:5006","local":true})");
  EXPECT_EQ(s.server, ServerAction::drain);
  EXPECT_EQ(s.address, "127.0.0.1:5006");
}

TEST(FleetCommandLocal, FalseOrAbsentIsNotLocal) {
  EXPECT_FALSE(ok(R"({"command":"split","green":30})").local);
  EXPECT_FALSE(ok(R"({"command":"split","green":30,"local":false})").local);
  EXPECT_FALSE(ok(R"({"command":"rollback","local":false})").local);
}

TEST(FleetCommandLocal, RefusedOnCommandsThatChangeNothing) {
  EXPECT_EQ(error_of(R"({"command":"status","local":true})"), "unknown field \"local\" for status");
  EXPECT_EQ(error_of(R"({"command":"history","local":true})"), "unknown field \"local\" for history");
  EXPECT_EQ(error_of(R"({"command":"history","limit":3,"local":false})"), "unknown field \"local\" for history");
  EXPECT_EQ(error_of(R"({"command":"health","local":true})"), "unknown field \"local\" for health");
  EXPECT_EQ(error_of(R"({"command":"reload","local":true})"), "unknown field \"local\" for reload");
  EXPECT_EQ(error_of(R"({"command":"upgrade","local":true})"), "unknown field \"local\" for upgrade");
}

TEST(FleetCommandLocal, MustBeABool) {
  const std::string msg = "\"local\" must be true or false";
  EXPECT_EQ(error_of(R"({"command":"split","green":30,"local":"true"})"), msg);
  EXPECT_EQ(error_of(R"({"command":"switch","color":"green","local":1})"), msg);
  EXPECT_EQ(error_of(R"({"command":"rollback","local":null})"), msg);
  EXPECT_EQ(error_of(R"({"command":"canary","action":"pause","local":[true]})"), msg);
  EXPECT_EQ(error_of(R"({"command":"server","action":"drain","address":"127.0.0.1:5006","local":{}})"), msg);
}

// ----------------------------------------------------------------------- replies

config::Endpoint ep(std::uint16_t port) {
  return config::Endpoint{"127.0.0.1:" + std::to_string(port), "127.0.0.1", port};
}

config::Service service(const std::string& name, std::uint16_t blue_port, std::uint16_t green_port) {
  config::Service s;
  s.name = name;
  s.blue.servers = {ep(blue_port)};
  s.green.servers = {ep(green_port)};
  return s;
}

/// "app" (blue 5005, green 5006) and "api" (blue 6005, green 6006, health_check: off).
config::Config two_services() {
  config::Config cfg;
  cfg.services.push_back(service("app", 5005, 5006));
  cfg.services.push_back(service("api", 6005, 6006));
  cfg.services[1].health_check.enabled = false;
  return cfg;
}

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

json::object parse(const std::string& line) {
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  json::error_code ec;
  auto v = json::parse(line, ec);
  EXPECT_FALSE(ec) << ec.message() << ": " << line;
  EXPECT_TRUE(v.is_object()) << line;
  return v.is_object() ? v.get_object() : json::object{};
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

TEST(FleetHistoryReply, InstanceAndLocalWhenSet) {
  State s = one_service_state();
  s.record(entry("2026-12-03T10:00:00.000Z", "app", "a", false));
  s.record(entry("2026-12-03T10:00:01.000Z", "app", "b", true));
  s.record(entry("2026-12-03T10:00:02.000Z", "app", "", false));
  s.record(entry("2026-12-03T10:00:03.000Z", "app", "", true));
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

// ----------------------------------------------------------------------- change_summary of real entries

TEST(FleetChangeSummary, OfTheControllersEntries) {
  const auto cfg = two_services();
  Controller ctl(cfg, Controller::initial_state(cfg));
  auto summary_after = [&](std::string_view line) {
    const Command c = ok(line);
    auto d = ctl.decide(c, Peer{0, 1}, "2026-12-03T10:00:00.000Z");
    EXPECT_EQ(d.error, "") << line;
    if (!d.next) return std::string("<no change>");
    ctl.commit(*d.next);
    return change_summary(ctl.state().history.back());
  };
  EXPECT_EQ(summary_after(R"({"command":"split","service":"app","green":30})"), "split green 30");
  EXPECT_EQ(summary_after(R"({"command":"rollback","service":"app"})"), "rollback");
  EXPECT_EQ(summary_after(R"({"command":"switch","service":"app","color":"green"})"), "switch green");
  EXPECT_EQ(summary_after(R"({"command":"server","service":"app","action":"drain","address":"127.0.0.1:5006"})"),
            "server drain 127.0.0.1:5006");
}

// ----------------------------------------------------------------------- metrics

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  const auto lines = lines_of(text);
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

std::vector<std::string> families_of(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& l : lines_of(text)) {
    if (l.rfind("# TYPE ", 0) == 0) out.push_back(l.substr(7, l.find(' ', 7) - 7));
  }
  return out;
}

class FleetMetrics : public ::testing::Test {
 protected:
  config::Config cfg = two_services();
  std::vector<routing::ServerInfo> servers = routing::enumerate_servers(cfg);
  State state = Controller::initial_state(cfg);
  std::vector<ServiceRuntime> runtime = std::vector<ServiceRuntime>(2);
  health::Tracker tracker{cfg, servers, health::Clock::time_point{} + 100s};

  std::string render(const FleetView* fleet) {
    return render_metrics(cfg, state, runtime, servers, &tracker, {}, fleet);
  }
};

TEST_F(FleetMetrics, TheFourClusterFamiliesWithTheirValues) {
  const FleetView fleet = fleet_of_three();
  const auto text = render(&fleet);
  EXPECT_TRUE(has_line(text, "# TYPE bgproxy_cluster_connected gauge")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_connected 1")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE bgproxy_cluster_revision gauge")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_revision{service=\"app\"} 42")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_revision{service=\"api\"} 17")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE bgproxy_cluster_members gauge")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_members 3")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE bgproxy_cluster_conflicts_total counter")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_conflicts_total{service=\"app\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_conflicts_total{service=\"api\"} 3")) << text;
}

TEST_F(FleetMetrics, AfterTheOthersInAFixedOrder) {
  const FleetView fleet = fleet_of_three();
  EXPECT_EQ(families_of(render(&fleet)),
            (std::vector<std::string>{"bgproxy_switches_total", "bgproxy_rollbacks_total", "bgproxy_server_up",
                                      "bgproxy_health_checks_total", "bgproxy_watchdog_error_rate",
                                      "bgproxy_watchdog_p95_seconds", "bgproxy_rollout_phase",
                                      "bgproxy_cluster_connected", "bgproxy_cluster_revision",
                                      "bgproxy_cluster_members", "bgproxy_cluster_conflicts_total"}));
}

TEST_F(FleetMetrics, DisconnectedAndNothingKnownYetReadZero) {
  FleetView fleet;
  fleet.instance = "a";
  const auto text = render(&fleet);
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_connected 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_members 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_revision{service=\"app\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_revision{service=\"api\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_conflicts_total{service=\"app\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_conflicts_total{service=\"api\"} 0")) << text;
}

TEST_F(FleetMetrics, LargeRevisionsAreWrittenWhole) {
  FleetView fleet = fleet_of_three();
  fleet.service_revisions = {123456789, 7};
  const auto text = render(&fleet);
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_revision{service=\"app\"} 123456789")) << text;
}

TEST_F(FleetMetrics, WithoutAFleetNone) {
  for (const std::string& text : {render(nullptr), render_metrics(cfg, state, runtime, servers, &tracker, {})}) {
    EXPECT_EQ(text.find("bgproxy_cluster_"), std::string::npos) << text;
    EXPECT_EQ(families_of(text).size(), 7u) << text;
  }
}

}  // namespace
}  // namespace bgproxy::control
