// Which requests a session mirrors and what the copy says (proxy/http/shadow_policy, SPEC §14):
// methods as listed, a reproducible share by hash, the marker as the head's last field.

#include "proxy/http/shadow_policy.hpp"

#include <string>

#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

TEST(ShadowPolicy, OnlyTheListedMethodsCaseSensitive) {
  config::Shadow s;
  EXPECT_TRUE(shadow_method(s, "GET"));
  EXPECT_TRUE(shadow_method(s, "HEAD"));
  EXPECT_FALSE(shadow_method(s, "POST"));
  EXPECT_FALSE(shadow_method(s, "get"));
  s.methods = {"GET", "POST"};
  EXPECT_TRUE(shadow_method(s, "POST"));
}

TEST(ShadowPolicy, TheShareIsReproducibleAndNearThePercent) {
  config::Shadow s;
  EXPECT_FALSE(shadow_sampled(s, "GET", "/a"));  // percent 0: never
  s.percent_bp = 10000;
  EXPECT_TRUE(shadow_sampled(s, "GET", "/a"));
  s.percent_bp = 2500;
  int sampled = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string target = "/item/" + std::to_string(i) + "?q=" + std::to_string(i * 7);
    const bool once = shadow_sampled(s, "GET", target);
    EXPECT_EQ(once, shadow_sampled(s, "GET", target));
    sampled += once ? 1 : 0;
  }
  EXPECT_NEAR(sampled / 20000.0, 0.25, 0.015);
}

TEST(ShadowPolicy, TheCopyCarriesTheMarkerAsItsLastFieldThenTheBody) {
  EXPECT_EQ(shadow_request("GET /a HTTP/1.1\r\nHost: x\r\n\r\n", ""),
            "GET /a HTTP/1.1\r\nHost: x\r\nX-Bg-Shadow: 1\r\n\r\n");
  EXPECT_EQ(shadow_request("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n", "hi"),
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-Bg-Shadow: 1\r\n\r\nhi");
}

}  // namespace
}  // namespace bgproxy::proxy
