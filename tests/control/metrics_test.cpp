// The control plane's /metrics families (control/core/metrics, README "Metrics"): what each
// series reads for given counters, health, window figures and rollout phases, line by line; and
// the bgproxy_cluster_* families of an instance in a fleet (README "Running a fleet", SPEC §12).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bgproxy/config/config.hpp"
#include "bgproxy/health/tracker.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "control/core/controller.hpp"
#include "control/core/fleet_view.hpp"
#include "control/core/metrics.hpp"
#include "control/core/service_runtime.hpp"
#include "control/core/state.hpp"
#include "control/core/stats_history.hpp"

namespace bgproxy::control {
namespace {

using namespace std::chrono_literals;

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

/// "app" (blue 5005, green 5006, health checks) and "api" (blue 6005, green 6006, health_check: off).
config::Config two_services() {
  config::Config cfg;
  cfg.services.push_back(service("app", 5005, 5006));
  cfg.services.push_back(service("api", 6005, 6006));
  cfg.services[1].health_check.enabled = false;
  return cfg;
}

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

/// Lines of `text` that start with `prefix`.
std::vector<std::string> series(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& l : lines_of(text)) {
    if (l.rfind(prefix, 0) == 0) out.push_back(l);
  }
  return out;
}

/// The families of `text`, by their "# TYPE" lines, in order.
std::vector<std::string> families_of(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& l : series(text, "# TYPE ")) out.push_back(l.substr(7, l.find(' ', 7) - 7));
  return out;
}

class RenderMetrics : public ::testing::Test {
 protected:
  config::Config cfg = two_services();
  std::vector<routing::ServerInfo> servers = routing::enumerate_servers(cfg);
  State state = Controller::initial_state(cfg);
  std::vector<ServiceRuntime> runtime = std::vector<ServiceRuntime>(2);
  health::Tracker tracker{cfg, servers, health::Clock::time_point{} + 100s};

  std::string render(const WindowFigures& figures = {}, const FleetView* fleet = nullptr) {
    return render_metrics(cfg, state, runtime, servers, &tracker, figures, fleet);
  }
};

TEST_F(RenderMetrics, SwitchesAndRollbacksPerService) {
  runtime[0].switches = 3;
  runtime[0].manual_rollbacks = 1;
  runtime[1].watchdog_rollbacks = 2;
  const auto text = render();
  EXPECT_TRUE(has_line(text, "# TYPE bgproxy_switches_total counter")) << text;
  EXPECT_TRUE(has_line(text, "# HELP bgproxy_switches_total Accepted weight changes.")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_switches_total{service=\"app\"} 3")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_switches_total{service=\"api\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE bgproxy_rollbacks_total counter")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_rollbacks_total{service=\"app\",reason=\"manual\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_rollbacks_total{service=\"app\",reason=\"watchdog\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_rollbacks_total{service=\"api\",reason=\"manual\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_rollbacks_total{service=\"api\",reason=\"watchdog\"} 2")) << text;
}

TEST_F(RenderMetrics, NoHealthReasonForRollbacks) {
  const auto text = render();
  EXPECT_EQ(series(text, "bgproxy_rollbacks_total{").size(), 4U) << text;
  EXPECT_EQ(text.find("reason=\"health\""), std::string::npos) << text;
}

TEST_F(RenderMetrics, ServerUpFollowsHealthAndServersWithoutChecksAreUp) {
  const auto now = health::Clock::time_point{} + 101s;
  tracker.record_check(0, health::CheckResult{true, 200, 0.001, ""}, now);
  tracker.record_check(0, health::CheckResult{true, 200, 0.001, ""}, now);  // rise 2: app blue up
  tracker.record_check(1, health::CheckResult{false, 503, 0.001, "status 503"}, now);
  const auto text = render();
  EXPECT_TRUE(has_line(text, "# TYPE bgproxy_server_up gauge")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_server_up{service=\"app\",color=\"blue\",server=\"127.0.0.1:5005\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_server_up{service=\"app\",color=\"green\",server=\"127.0.0.1:5006\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_server_up{service=\"api\",color=\"blue\",server=\"127.0.0.1:6005\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_server_up{service=\"api\",color=\"green\",server=\"127.0.0.1:6006\"} 1")) << text;
}

TEST_F(RenderMetrics, HealthChecksCountedOnlyForServicesThatRunThem) {
  const auto now = health::Clock::time_point{} + 101s;
  tracker.record_check(0, health::CheckResult{true, 200, 0.001, ""}, now);
  tracker.record_check(0, health::CheckResult{true, 200, 0.001, ""}, now);
  tracker.record_check(0, health::CheckResult{false, 0, 0.5, "timeout after 500ms"}, now);
  const auto text = render();
  EXPECT_TRUE(has_line(text, "# TYPE bgproxy_health_checks_total counter")) << text;
  const std::string app_blue = R"(bgproxy_health_checks_total{service="app",color="blue",server="127.0.0.1:5005",)";
  const std::string app_green = R"(bgproxy_health_checks_total{service="app",color="green",server="127.0.0.1:5006",)";
  EXPECT_TRUE(has_line(text, app_blue + R"(result="success"} 2)")) << text;
  EXPECT_TRUE(has_line(text, app_blue + R"(result="failure"} 1)")) << text;
  EXPECT_TRUE(has_line(text, app_green + R"(result="success"} 0)")) << text;
  EXPECT_EQ(series(text, "bgproxy_health_checks_total{").size(), 4U) << text;  // none for "api"
}

TEST_F(RenderMetrics, WithoutHealthEveryServerReadsDownAndNoCheckCounts) {
  const auto text = render_metrics(cfg, state, runtime, servers, nullptr, {});
  const auto up = series(text, "bgproxy_server_up{");
  ASSERT_EQ(up.size(), 4U) << text;
  for (const auto& l : up) EXPECT_EQ(l.substr(l.size() - 2), " 0") << l;
  EXPECT_TRUE(series(text, "bgproxy_health_checks_total{").empty()) << text;
}

TEST_F(RenderMetrics, WatchdogFiguresPerColor) {
  WindowFigures figures(2);
  figures[0][1].error_rate = 0.25;
  figures[0][1].p95_seconds = 0.125;
  figures[1][0].p95_seconds = 1.5;
  const auto text = render(figures);
  EXPECT_TRUE(has_line(text, "# TYPE bgproxy_watchdog_error_rate gauge")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_watchdog_error_rate{service=\"app\",color=\"green\"} 0.25")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_watchdog_error_rate{service=\"app\",color=\"blue\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "# TYPE bgproxy_watchdog_p95_seconds gauge")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_watchdog_p95_seconds{service=\"app\",color=\"green\"} 0.125")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_watchdog_p95_seconds{service=\"api\",color=\"blue\"} 1.5")) << text;
}

TEST_F(RenderMetrics, WatchdogFiguresReadZeroBeforeTheFirstWindow) {
  const auto text = render();
  const auto rates = series(text, "bgproxy_watchdog_error_rate{");
  const auto p95 = series(text, "bgproxy_watchdog_p95_seconds{");
  ASSERT_EQ(rates.size(), 4U) << text;
  ASSERT_EQ(p95.size(), 4U) << text;
  for (const auto& l : rates) EXPECT_EQ(l.substr(l.size() - 2), " 0") << l;
  for (const auto& l : p95) EXPECT_EQ(l.substr(l.size() - 2), " 0") << l;
}

TEST_F(RenderMetrics, RolloutPhaseIsOneForTheCurrentPhaseOnly) {
  state.services[0].phase = Phase::canary;
  const auto text = render();
  EXPECT_TRUE(has_line(text, "# TYPE bgproxy_rollout_phase gauge")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_rollout_phase{service=\"app\",phase=\"canary\"} 1")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_rollout_phase{service=\"app\",phase=\"idle\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_rollout_phase{service=\"api\",phase=\"idle\"} 1")) << text;
  const auto app = series(text, "bgproxy_rollout_phase{service=\"app\"");
  EXPECT_EQ(app.size(), 6U) << text;
  EXPECT_EQ(std::count_if(app.begin(), app.end(), [](const std::string& l) { return l.back() == '1'; }), 1);
}

TEST_F(RenderMetrics, FamiliesInAFixedOrder) {
  EXPECT_EQ(families_of(render()), (std::vector<std::string>{"bgproxy_switches_total", "bgproxy_rollbacks_total",
                                                             "bgproxy_server_up", "bgproxy_health_checks_total",
                                                             "bgproxy_watchdog_error_rate",
                                                             "bgproxy_watchdog_p95_seconds", "bgproxy_rollout_phase"}));
}

// ----------------------------------------------------------------------- a fleet's bgproxy_cluster_*

/// RenderMetrics on instance "a" of a fleet of three, connected: "app" at revision 42 without
/// conflicts, "api" at revision 17 with 3.
class FleetMetrics : public RenderMetrics {
 protected:
  FleetView fleet{.connected = true,
                  .instance = "a",
                  .revision = 42,
                  .members = std::vector<FleetMember>(3),
                  .service_revisions = {42, 17},
                  .conflicts = {0, 3}};
};

TEST_F(FleetMetrics, TheFourClusterFamiliesWithTheirValues) {
  const auto text = render({}, &fleet);
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
  EXPECT_EQ(families_of(render({}, &fleet)),
            (std::vector<std::string>{"bgproxy_switches_total", "bgproxy_rollbacks_total", "bgproxy_server_up",
                                      "bgproxy_health_checks_total", "bgproxy_watchdog_error_rate",
                                      "bgproxy_watchdog_p95_seconds", "bgproxy_rollout_phase",
                                      "bgproxy_cluster_connected", "bgproxy_cluster_revision",
                                      "bgproxy_cluster_members", "bgproxy_cluster_conflicts_total"}));
}

TEST_F(FleetMetrics, DisconnectedAndNothingKnownYetReadZero) {
  FleetView disconnected;
  disconnected.instance = "a";
  const auto text = render({}, &disconnected);
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_connected 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_members 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_revision{service=\"app\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_revision{service=\"api\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_conflicts_total{service=\"app\"} 0")) << text;
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_conflicts_total{service=\"api\"} 0")) << text;
}

TEST_F(FleetMetrics, LargeRevisionsAreWrittenWhole) {
  fleet.service_revisions = {123456789, 7};
  const auto text = render({}, &fleet);
  EXPECT_TRUE(has_line(text, "bgproxy_cluster_revision{service=\"app\"} 123456789")) << text;
}

TEST_F(FleetMetrics, WithoutAFleetNone) {
  for (const std::string& text : {render({}, nullptr), render_metrics(cfg, state, runtime, servers, &tracker, {})}) {
    EXPECT_EQ(text.find("bgproxy_cluster_"), std::string::npos) << text;
    EXPECT_EQ(families_of(text).size(), 7u) << text;
  }
}

}  // namespace
}  // namespace bgproxy::control
