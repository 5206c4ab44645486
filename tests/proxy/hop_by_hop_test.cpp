#include "proxy/http/hop_by_hop.hpp"

#include <initializer_list>

#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

namespace http = boost::beast::http;

TEST(HopByHop, FixedFields) {
  EXPECT_TRUE(is_hop_by_hop(http::field::connection));
  EXPECT_TRUE(is_hop_by_hop(http::field::keep_alive));
  EXPECT_TRUE(is_hop_by_hop(http::field::proxy_connection));
  EXPECT_TRUE(is_hop_by_hop(http::field::te));
  EXPECT_TRUE(is_hop_by_hop(http::field::trailer));
  EXPECT_TRUE(is_hop_by_hop(http::field::transfer_encoding));
  EXPECT_TRUE(is_hop_by_hop(http::field::upgrade));
}

TEST(HopByHop, EndToEndFields) {
  EXPECT_FALSE(is_hop_by_hop(http::field::unknown));
  EXPECT_FALSE(is_hop_by_hop(http::field::host));
  EXPECT_FALSE(is_hop_by_hop(http::field::content_length));
  EXPECT_FALSE(is_hop_by_hop(http::field::content_type));
  EXPECT_FALSE(is_hop_by_hop(http::field::expect));
  EXPECT_FALSE(is_hop_by_hop(http::field::via));
  EXPECT_FALSE(is_hop_by_hop(http::field::cookie));
  EXPECT_FALSE(is_hop_by_hop(http::field::proxy_authorization));
  EXPECT_FALSE(is_hop_by_hop(http::field::proxy_authenticate));
}

TEST(HopByHop, NamedInConnection) {
  EXPECT_TRUE(named_in_connection("X-Secret", "X-Secret"));
  EXPECT_TRUE(named_in_connection("close, X-Secret", "x-secret"));
  EXPECT_TRUE(named_in_connection("keep-alive,x-a ,  X-B", "X-B"));
  EXPECT_TRUE(named_in_connection(" , ,X-A,,", "x-a"));
  EXPECT_TRUE(named_in_connection("KEEP-ALIVE", "keep-alive"));
}

TEST(HopByHop, NotNamedInConnection) {
  EXPECT_FALSE(named_in_connection("", "X-A"));
  EXPECT_FALSE(named_in_connection("keep-alive", "keep"));
  EXPECT_FALSE(named_in_connection("keep", "keep-alive"));
  EXPECT_FALSE(named_in_connection("X-AB, X-BA", "X-A"));
  EXPECT_FALSE(named_in_connection("close", ""));
}

TEST(HopByHop, Issue11FramingRoutingAndTraceFieldsAreKeptDespiteConnection) {
  for (const char* name : {"Content-Length", "content-length", "Transfer-Encoding", "HOST", "Via", "X-Forwarded-For",
                           "x-forwarded-proto", "X-Forwarded-Host"}) {
    EXPECT_TRUE(kept_despite_connection(name)) << name;
  }
  for (const char* name : {"X-Secret", "Cookie", "Authorization", "X-Forwarded-By"}) {
    EXPECT_FALSE(kept_despite_connection(name)) << name;
  }
}

ParsedHead fields_with(std::initializer_list<const char*> connection_lines) {
  ParsedHead f;
  for (const char* line : connection_lines) f.add(http::field::connection, "Connection", line);
  return f;
}

TEST(HopByHop, Issue11NominatedFieldsSkipMootAndKeptNames) {
  const auto f = fields_with({"keep-alive, close, Upgrade, X-A", "content-length, X-Sticky ,  x-b"});
  const NominatedFields n(f, "X-Sticky");
  EXPECT_TRUE(n.contains("X-A"));
  EXPECT_TRUE(n.contains("x-a"));
  EXPECT_TRUE(n.contains("X-B"));
  EXPECT_FALSE(n.contains("Content-Length"));
  EXPECT_FALSE(n.contains("x-sticky"));
  EXPECT_FALSE(n.contains("X-C"));
}

TEST(HopByHop, Issue11NominatedFieldsBeyondTheInlineListAreStillFound) {
  const auto f = fields_with({"a1, a2, a3, a4, a5, a6, a7, a8, a9", "a10, Host"});
  const NominatedFields n(f, {});
  EXPECT_TRUE(n.contains("a1"));
  EXPECT_TRUE(n.contains("A9"));
  EXPECT_TRUE(n.contains("a10"));
  EXPECT_FALSE(n.contains("Host"));
  EXPECT_FALSE(n.contains("a11"));
}

TEST(HopByHop, Issue11NoConnectionNominatesNothing) {
  const ParsedHead f;
  EXPECT_FALSE(NominatedFields(f, {}).contains("X-A"));
}

}  // namespace
}  // namespace bgproxy::proxy
