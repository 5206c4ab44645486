// shadow: and watchdog.max_shadow_mismatch_rate (SPEC §14): defaults, accepted values and the
// exact "FILE:LINE: field: problem" messages.
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "bgproxy/config/parse.hpp"

namespace bgproxy::config {
namespace {

std::string service_with(std::string_view block) {
  return "services:\n"
         "  - name: app\n"
         "    blue: { servers: [\"127.0.0.1:5005\"] }\n" +
         std::string(block);
}

std::string error_of(std::string_view yaml) {
  auto r = parse(yaml, "bad.yaml");
  if (r) return "<accepted>";
  return r.error().message;
}

TEST(ConfigShadow, OffByDefault) {
  auto r = parse(service_with(""), "ok.yaml");
  ASSERT_TRUE(r) << r.error().message;
  const auto& s = r->services[0].shadow;
  EXPECT_EQ(s.percent_bp, 0u);
  EXPECT_EQ(s.methods, (std::vector<std::string>{"GET", "HEAD"}));
  EXPECT_EQ(s.max_body_bytes, 65536u);
  EXPECT_EQ(s.max_in_flight, 64u);
  EXPECT_TRUE(s.compare.status);
  EXPECT_TRUE(s.compare.body);
  EXPECT_EQ(s.compare.headers, (std::vector<std::string>{"content-type"}));
  EXPECT_TRUE(s.compare.ignore.empty());
  EXPECT_FALSE(r->services[0].watchdog.max_shadow_mismatch_rate.has_value());
}

TEST(ConfigShadow, ReadsEveryField) {
  auto r = parse(service_with("    shadow:\n"
                              "      percent: 12.5\n"
                              "      methods: [GET, PROPFIND]\n"
                              "      max_body_bytes: 1024\n"
                              "      max_in_flight: 8\n"
                              "      compare: { status: false, headers: [Content-Type, ETag], body: false,\n"
                              "                 ignore: [Date, \"$.timestamp\", \"$.items[*].id\"] }\n"
                              "    watchdog: { max_shadow_mismatch_rate: 0.05 }\n"),
                  "ok.yaml");
  ASSERT_TRUE(r) << r.error().message;
  const auto& s = r->services[0].shadow;
  EXPECT_EQ(s.percent_bp, 1250u);
  EXPECT_EQ(s.methods, (std::vector<std::string>{"GET", "PROPFIND"}));
  EXPECT_EQ(s.max_body_bytes, 1024u);
  EXPECT_EQ(s.max_in_flight, 8u);
  EXPECT_FALSE(s.compare.status);
  EXPECT_FALSE(s.compare.body);
  EXPECT_EQ(s.compare.headers, (std::vector<std::string>{"content-type", "etag"}));
  EXPECT_EQ(s.compare.ignore, (std::vector<std::string>{"date", "$.timestamp", "$.items[*].id"}));
  ASSERT_TRUE(r->services[0].watchdog.max_shadow_mismatch_rate.has_value());
  EXPECT_DOUBLE_EQ(*r->services[0].watchdog.max_shadow_mismatch_rate, 0.05);
}

TEST(ConfigShadow, PercentLikeWeights) {
  EXPECT_EQ(error_of(service_with("    shadow:\n      percent: 100.5\n")),
            "bad.yaml:5: services[0].shadow.percent: invalid percentage \"100.5\" (expected 0-100 with at most two "
            "decimals)");
  EXPECT_EQ(error_of(service_with("    shadow: { percent: 1.234 }\n")),
            "bad.yaml:4: services[0].shadow.percent: invalid percentage \"1.234\" (expected 0-100 with at most two "
            "decimals)");
}

TEST(ConfigShadow, MethodsAreUpperCaseTokens) {
  EXPECT_EQ(error_of(service_with("    shadow:\n      methods: [GET, get]\n")),
            "bad.yaml:5: services[0].shadow.methods[1]: methods are case-sensitive, expected upper case: \"get\"");
  EXPECT_EQ(error_of(service_with("    shadow:\n      methods: [\"GE T\"]\n")),
            "bad.yaml:5: services[0].shadow.methods[0]: invalid method \"GE T\"");
  EXPECT_EQ(error_of(service_with("    shadow:\n      methods: []\n")),
            "bad.yaml:5: services[0].shadow.methods: at least one method is required");
}

TEST(ConfigShadow, LimitsAreChecked) {
  EXPECT_EQ(error_of(service_with("    shadow:\n      max_in_flight: 0\n")),
            "bad.yaml:5: services[0].shadow.max_in_flight: must be at least 1");
  EXPECT_EQ(error_of(service_with("    shadow:\n      max_body_bytes: 20000000\n")),
            "bad.yaml:5: services[0].shadow.max_body_bytes: value 20000000 is too large (max 16777216)");
  EXPECT_EQ(error_of(service_with("    shadow:\n      max_in_flight: lots\n")),
            "bad.yaml:5: services[0].shadow.max_in_flight: expected a non-negative integer, got \"lots\"");
}

TEST(ConfigShadow, CompareKeysAndIgnoreEntries) {
  EXPECT_EQ(error_of(service_with("    shadow:\n      compare:\n        bodies: true\n")),
            "bad.yaml:6: services[0].shadow.compare.bodies: unknown key");
  EXPECT_EQ(error_of(service_with("    shadow:\n      compare:\n        ignore: [\"$timestamp\"]\n")),
            "bad.yaml:6: services[0].shadow.compare.ignore[0]: invalid JSON path \"$timestamp\" (expected e.g. "
            "$.timestamp, $.items[*].id)");
  EXPECT_EQ(error_of(service_with("    shadow:\n      compare:\n        headers: [\"x y\"]\n")),
            "bad.yaml:6: services[0].shadow.compare.headers[0]: invalid header name \"x y\"");
  EXPECT_EQ(error_of(service_with("    shadow:\n      compare:\n        status: maybe\n")),
            "bad.yaml:6: services[0].shadow.compare.status: expected true or false, got \"maybe\"");
}

TEST(ConfigShadow, UnknownShadowKey) {
  EXPECT_EQ(error_of(service_with("    shadow:\n      percentage: 5\n")),
            "bad.yaml:5: services[0].shadow.percentage: unknown key");
}

TEST(ConfigShadow, MismatchRateGateBetweenZeroAndOne) {
  EXPECT_EQ(error_of(service_with("    watchdog:\n      max_shadow_mismatch_rate: 1.5\n")),
            "bad.yaml:5: services[0].watchdog.max_shadow_mismatch_rate: must be between 0 and 1, got 1.5");
  EXPECT_EQ(error_of(service_with("    watchdog:\n      max_shadow_mismatch_rate: high\n")),
            "bad.yaml:5: services[0].watchdog.max_shadow_mismatch_rate: expected a number, got \"high\"");
}

}  // namespace
}  // namespace bgproxy::config
