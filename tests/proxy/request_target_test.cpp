#include "proxy/http/request_target.hpp"

#include <string>
#include <string_view>

#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

TEST(RequestTarget, OriginFormWithQuery) {
  const std::string target = "/api/items?id=7&x=/y";
  const auto t = split_target(target, "Shop.Example.com:8080");
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.origin_form, "/api/items?id=7&x=/y");
  EXPECT_EQ(t.path, "/api/items");
  EXPECT_EQ(t.host_without_port, "Shop.Example.com");  // case is kept
  // The views point into the arguments, not into copies.
  EXPECT_EQ(t.origin_form.data(), target.data());
  EXPECT_EQ(t.path.data(), target.data());
}

TEST(RequestTarget, OriginFormRoot) {
  const auto t = split_target("/", "h");
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.origin_form, "/");
  EXPECT_EQ(t.path, "/");
  EXPECT_EQ(t.host_without_port, "h");
}

TEST(RequestTarget, OriginFormEmptyPathBeforeQuery) {
  const auto t = split_target("/?q=1", "h");
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.origin_form, "/?q=1");
  EXPECT_EQ(t.path, "/");
}

TEST(RequestTarget, OriginFormWithoutHost) {
  // HTTP/1.0 may send no Host.
  const auto t = split_target("/a", "");
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.path, "/a");
  EXPECT_EQ(t.host_without_port, "");
}

TEST(RequestTarget, AsteriskForm) {
  const auto t = split_target("*", "h:81");
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.origin_form, "*");
  EXPECT_EQ(t.path, "/");
  EXPECT_EQ(t.host_without_port, "h");
}

TEST(RequestTarget, AbsoluteFormAuthorityOverridesHost) {
  const auto t = split_target("http://a.example/p/q?z=1", "b.example");
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.origin_form, "/p/q?z=1");
  EXPECT_EQ(t.path, "/p/q");
  EXPECT_EQ(t.host_without_port, "a.example");
}

TEST(RequestTarget, AbsoluteFormWithPort) {
  const auto t = split_target("http://a.example:8080/x", "b.example:9");
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.origin_form, "/x");
  EXPECT_EQ(t.path, "/x");
  EXPECT_EQ(t.host_without_port, "a.example");
}

TEST(RequestTarget, AbsoluteFormWithoutPath) {
  auto t = split_target("http://a.example", "b");
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.origin_form, "/");
  EXPECT_EQ(t.path, "/");
  EXPECT_EQ(t.host_without_port, "a.example");

  t = split_target("https://a.example:443", "b");
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.origin_form, "/");
  EXPECT_EQ(t.host_without_port, "a.example");
}

TEST(RequestTarget, AbsoluteFormHttpsAndSchemeCase) {
  auto t = split_target("https://s.example/secure", "");
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.origin_form, "/secure");
  EXPECT_EQ(t.host_without_port, "s.example");

  t = split_target("HTTP://U.example/x?y", "");
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.origin_form, "/x?y");
  EXPECT_EQ(t.path, "/x");
  EXPECT_EQ(t.host_without_port, "U.example");

  t = split_target("hTtPs://v/", "");
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.host_without_port, "v");
}

TEST(RequestTarget, AbsoluteFormIpv6) {
  const auto t = split_target("http://[::1]:8080/v6?x", "h");
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.origin_form, "/v6?x");
  EXPECT_EQ(t.path, "/v6");
  EXPECT_EQ(t.host_without_port, "[::1]");
}

TEST(RequestTarget, InvalidForms) {
  for (const std::string_view bad :
       {"", "foo", "http://", "https://", "http://h?q", "http:///path", "http://?q", "ftp://h/x",
        "http:/h/x", "h/x", "?q", "**", "http", "https:"}) {
    const auto t = split_target(bad, "host");
    EXPECT_FALSE(t.valid) << '"' << bad << '"';
  }
}

TEST(StripPort, Forms) {
  EXPECT_EQ(strip_port("example.com:8080"), "example.com");
  EXPECT_EQ(strip_port("example.com"), "example.com");
  EXPECT_EQ(strip_port("example.com:"), "example.com");
  EXPECT_EQ(strip_port("[::1]:80"), "[::1]");
  EXPECT_EQ(strip_port("[::1]"), "[::1]");
  EXPECT_EQ(strip_port("[2001:db8::7]:443"), "[2001:db8::7]");
  EXPECT_EQ(strip_port("[::1"), "[::1");  // unterminated: returned as is
  EXPECT_EQ(strip_port(":80"), "");
  EXPECT_EQ(strip_port(""), "");
  EXPECT_EQ(strip_port("10.0.0.1:80"), "10.0.0.1");
}

}  // namespace
}  // namespace bgproxy::proxy
