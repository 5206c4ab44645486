// watchdog.method and watchdog.alpha (SPEC §16): defaults, accepted values, exact error messages.
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "bgproxy/config/parse.hpp"

namespace bgproxy::config {
namespace {

std::string service_with(std::string_view watchdog) {
  return "services:\n"
         "  - name: app\n"
         "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
         "    watchdog: " +
         std::string(watchdog) + "\n";
}

std::string error_of(std::string_view yaml) {
  auto r = parse(yaml, "bad.yaml");
  if (r) return "<accepted>";
  return r.error().message;
}

TEST(ConfigWatchdogMethod, DefaultsToThresholdWithAlphaOnePercent) {
  auto r = parse(service_with("{ window: 10s }"), "ok.yaml");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->services[0].watchdog.method, WatchdogMethod::threshold);
  EXPECT_DOUBLE_EQ(r->services[0].watchdog.alpha, 0.01);
}

TEST(ConfigWatchdogMethod, ReadsSequentialAndAlpha) {
  auto r = parse(service_with("{ method: sequential, alpha: 0.05 }"), "ok.yaml");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->services[0].watchdog.method, WatchdogMethod::sequential);
  EXPECT_DOUBLE_EQ(r->services[0].watchdog.alpha, 0.05);
}

TEST(ConfigWatchdogMethod, AcceptsAlphaOneHalf) {
  EXPECT_EQ(error_of(service_with("{ method: sequential, alpha: 0.5 }")), "<accepted>");
}

TEST(ConfigWatchdogMethod, RejectsUnknownMethod) {
  EXPECT_EQ(error_of(service_with("{ method: bayesian }")),
            "bad.yaml:4: services[0].watchdog.method: expected threshold or sequential, got \"bayesian\"");
}

TEST(ConfigWatchdogMethod, RejectsAlphaOutsideZeroToOneHalf) {
  EXPECT_EQ(error_of(service_with("{ alpha: 0 }")),
            "bad.yaml:4: services[0].watchdog.alpha: must be greater than 0 and at most 0.5, got 0");
  EXPECT_EQ(error_of(service_with("{ alpha: 0.6 }")),
            "bad.yaml:4: services[0].watchdog.alpha: must be greater than 0 and at most 0.5, got 0.6");
  EXPECT_EQ(error_of(service_with("{ alpha: lots }")),
            "bad.yaml:4: services[0].watchdog.alpha: expected a number, got \"lots\"");
}

}  // namespace
}  // namespace bgproxy::config
