#include "proxy/http/hop_by_hop.hpp"

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

}  // namespace
}  // namespace bgproxy::proxy
