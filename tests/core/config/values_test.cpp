// The scalar parsers of the configuration: durations, endpoints, CIDRs (percentages: tests/core/weights/).
#include <array>
#include <chrono>
#include <cstdint>

#include <gtest/gtest.h>

#include "bgproxy/config/parse.hpp"

namespace bgproxy::config {
namespace {

using namespace std::chrono_literals;

std::array<std::uint8_t, 16> v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

std::array<std::uint8_t, 16> v6(std::initializer_list<std::uint16_t> groups) {
  std::array<std::uint8_t, 16> out{};
  std::size_t i = 0;
  for (auto g : groups) {
    out[i++] = static_cast<std::uint8_t>(g >> 8);
    out[i++] = static_cast<std::uint8_t>(g & 0xff);
  }
  return out;
}

TEST(ConfigValues, DurationUnits) {
  EXPECT_EQ(parse_duration("500ms"), Duration(500));
  EXPECT_EQ(parse_duration("2s"), Duration(2000));
  EXPECT_EQ(parse_duration("1.5s"), Duration(1500));
  EXPECT_EQ(parse_duration("5m"), Duration(5min));
  EXPECT_EQ(parse_duration("1h"), Duration(1h));
  EXPECT_EQ(parse_duration("0.25m"), Duration(15s));
  EXPECT_EQ(parse_duration("0s"), Duration(0));
  EXPECT_EQ(parse_duration("0.001s"), Duration(1));
}

TEST(ConfigValues, DurationRejectsMalformed) {
  for (const char* bad : {"", "5", "1.5", "s", "ms", "5d", "5 s", " 5s", "5s ", "-1s", "+1s", "1.s", ".5s", "1..5s",
                          "5sec", "5S", "0.5ms", "1e3ms", "9999999999999h", "5ss"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

TEST(ConfigValues, EndpointIpv4AndHostname) {
  auto e = parse_endpoint("127.0.0.1:5006");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->text, "127.0.0.1:5006");
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 5006);

  e = parse_endpoint("backend-1.internal:80");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "backend-1.internal");
  EXPECT_EQ(e->port, 80);

  e = parse_endpoint("localhost:65535");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port, 65535);
}

TEST(ConfigValues, EndpointIpv6InBrackets) {
  auto e = parse_endpoint("[::1]:8080");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->text, "[::1]:8080");
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 8080);

  e = parse_endpoint("[2001:db8::1]:443");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "2001:db8::1");
  EXPECT_EQ(e->port, 443);
}

TEST(ConfigValues, EndpointRejectsMalformed) {
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:99999999",
                          "127.0.0.1:-1", "127.0.0.1:8o", "::1:80", "[::1]", "[::1]80", "[::1:80", "[127.0.0.1]:80",
                          "[nothost]:80", "999.1.1.1:80", "bad host:80", "a..b:80", "host:80:90", "*:80"}) {
    EXPECT_FALSE(parse_endpoint(bad).has_value()) << bad;
  }
}

TEST(ConfigValues, CidrIpv4Contains) {
  auto c = parse_cidr("10.0.0.0/8");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->prefix, 104);
  EXPECT_EQ(c->text, "10.0.0.0/8");
  EXPECT_TRUE(c->contains(v4(10, 0, 0, 1)));
  EXPECT_TRUE(c->contains(v4(10, 255, 255, 255)));
  EXPECT_FALSE(c->contains(v4(11, 0, 0, 0)));
  EXPECT_FALSE(c->contains(v6({0x0a00, 0, 0, 0, 0, 0, 0, 1})));  // not an IPv4-mapped address

  auto odd = parse_cidr("192.168.1.128/25");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains(v4(192, 168, 1, 200)));
  EXPECT_FALSE(odd->contains(v4(192, 168, 1, 127)));

  auto host = parse_cidr("127.0.0.1");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->prefix, 128);
  EXPECT_TRUE(host->contains(v4(127, 0, 0, 1)));
  EXPECT_FALSE(host->contains(v4(127, 0, 0, 2)));

  auto any = parse_cidr("0.0.0.0/0");
  ASSERT_TRUE(any);
  EXPECT_TRUE(any->contains(v4(8, 8, 8, 8)));
  EXPECT_FALSE(any->contains(v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1})));
}

TEST(ConfigValues, CidrIpv6Contains) {
  auto loop = parse_cidr("::1/128");
  ASSERT_TRUE(loop);
  EXPECT_EQ(loop->prefix, 128);
  EXPECT_TRUE(loop->contains(v6({0, 0, 0, 0, 0, 0, 0, 1})));
  EXPECT_FALSE(loop->contains(v6({0, 0, 0, 0, 0, 0, 0, 2})));
  EXPECT_FALSE(loop->contains(v4(127, 0, 0, 1)));

  auto net = parse_cidr("2001:db8::/32");
  ASSERT_TRUE(net);
  EXPECT_TRUE(net->contains(v6({0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1})));
  EXPECT_FALSE(net->contains(v6({0x2001, 0xdb9, 0, 0, 0, 0, 0, 1})));

  auto odd = parse_cidr("fe80::/10");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains(v6({0xfebf, 0, 0, 0, 0, 0, 0, 1})));
  EXPECT_FALSE(odd->contains(v6({0xfec0, 0, 0, 0, 0, 0, 0, 1})));

  auto all = parse_cidr("::/0");
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->contains(v4(1, 2, 3, 4)));
  EXPECT_TRUE(all->contains(v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 1})));
}

TEST(ConfigValues, CidrRejectsMalformed) {
  for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/8/8", "10.0.0.0/x",
                          "10.0.0.0/-1", "host/8", "[::1]/128", "10.0.0.0 /8"}) {
    EXPECT_FALSE(parse_cidr(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace bgproxy::config
