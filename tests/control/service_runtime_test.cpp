// ServiceRuntime (control/core/service_runtime): how a reload renumbers per-service data by
// name, panic mode as the control plane logs it, and the verdicts status answers show.
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "control/core/service_runtime.hpp"

namespace bgproxy::control {
namespace {

using routing::Color;

config::Config services(const std::vector<std::string>& names) {
  config::Config cfg;
  for (const auto& name : names) {
    config::Service s;
    s.name = name;
    cfg.services.push_back(s);
  }
  return cfg;
}

TEST(ServiceRenumbering, SameServicesInTheSameOrderKeepEverything) {
  const auto cfg = services({"app", "api"});
  const ServiceRenumbering r(cfg, cfg);
  EXPECT_EQ(r.apply(std::vector<int>{1, 2}), (std::vector<int>{1, 2}));
}

TEST(ServiceRenumbering, ServicesFollowTheirNameWhenReordered) {
  const ServiceRenumbering r(services({"app", "api", "web"}), services({"web", "app", "api"}));
  EXPECT_EQ(r.apply(std::vector<std::string>{"app's", "api's", "web's"}),
            (std::vector<std::string>{"web's", "app's", "api's"}));
}

TEST(ServiceRenumbering, ANewServiceStartsFreshAndARemovedOneIsDropped) {
  const ServiceRenumbering r(services({"app", "old"}), services({"new", "app"}));
  EXPECT_EQ(r.apply(std::vector<int>{7, 9}, -1), (std::vector<int>{-1, 7}));
  EXPECT_EQ(r.apply(std::vector<int>{7, 9}), (std::vector<int>{0, 7}));
}

TEST(ServiceRenumbering, ARenamedServiceIsANewOne) {
  const ServiceRenumbering r(services({"app"}), services({"application"}));
  EXPECT_EQ(r.apply(std::vector<int>{5}), (std::vector<int>{0}));
}

TEST(ServiceRenumbering, AShorterVectorThanTheOldConfigGivesFreshEntries) {
  const ServiceRenumbering r(services({"app", "api"}), services({"api", "app"}));
  EXPECT_EQ(r.apply(std::vector<int>{4}, -1), (std::vector<int>{-1, 4}));
}

TEST(ServiceRenumbering, NoServicesLeftGivesAnEmptyVector) {
  const ServiceRenumbering r(services({"app"}), services({}));
  EXPECT_TRUE(r.apply(std::vector<int>{3}).empty());
}

TEST(ServiceRenumbering, RuntimeCountersAndVerdictsTravelTogether) {
  ServiceRuntime app;
  app.switches = 3;
  app.manual_rollbacks = 1;
  app.watchdog_rollbacks = 2;
  app.verdict = "pass: error_rate 0.000";
  app.rollout_queued = true;
  app.dry_run_logged = watchdog::Rule::p95;
  app.panic = true;
  const ServiceRenumbering r(services({"app"}), services({"api", "app"}));
  const auto out = r.apply(std::vector<ServiceRuntime>{app});
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[0].switches, 0U);
  EXPECT_EQ(out[0].verdict, "");
  EXPECT_FALSE(out[0].rollout_queued);
  EXPECT_EQ(out[0].dry_run_logged, watchdog::Rule::none);
  EXPECT_FALSE(out[0].panic);
  EXPECT_EQ(out[1].switches, 3U);
  EXPECT_EQ(out[1].manual_rollbacks, 1U);
  EXPECT_EQ(out[1].watchdog_rollbacks, 2U);
  EXPECT_EQ(out[1].verdict, "pass: error_rate 0.000");
  EXPECT_TRUE(out[1].rollout_queued);
  EXPECT_EQ(out[1].dry_run_logged, watchdog::Rule::p95);
  EXPECT_TRUE(out[1].panic);
}

routing::ServiceRoute route(std::vector<routing::ServerRoute> blue, std::vector<routing::ServerRoute> green) {
  routing::ServiceRoute r;
  r.name = "app";
  r.servers[static_cast<std::size_t>(Color::blue)] = std::move(blue);
  r.servers[static_cast<std::size_t>(Color::green)] = std::move(green);
  return r;
}

routing::ServerRoute server(bool enabled, bool healthy) {
  routing::ServerRoute s;
  s.enabled = enabled;
  s.healthy = healthy;
  return s;
}

TEST(InPanic, NotWhileEitherColorHasAUsableServer) {
  EXPECT_FALSE(in_panic(route({server(true, true)}, {server(true, false)})));
  EXPECT_FALSE(in_panic(route({server(true, false)}, {server(true, true)})));
  EXPECT_FALSE(in_panic(route({server(true, false), server(true, true)}, {})));
}

TEST(InPanic, WhenNoServerOfEitherColorIsHealthy) {
  EXPECT_TRUE(in_panic(route({server(true, false)}, {server(true, false)})));
}

TEST(InPanic, HealthyButDisabledOrDrainingServersAreNotUsable) {
  EXPECT_TRUE(in_panic(route({server(false, true)}, {server(false, true)})));
  EXPECT_TRUE(in_panic(route({server(false, true)}, {server(true, false)})));
}

TEST(InPanic, AServiceWithoutServersIsInPanic) { EXPECT_TRUE(in_panic(route({}, {}))); }

TEST(Verdicts, OnePerServiceInOrder) {
  std::vector<ServiceRuntime> runtime(3);
  runtime[0].verdict = "pass: error_rate 0.000, p95 0.004s (n=120, window 30s)";
  runtime[2].verdict = "inconclusive: 12 requests < min_requests 20 (window 30s)";
  EXPECT_EQ(verdicts(runtime), (std::vector<std::string>{runtime[0].verdict, "", runtime[2].verdict}));
  EXPECT_TRUE(verdicts({}).empty());
}

}  // namespace
}  // namespace bgproxy::control
