#include "proxy/http/keep_alive.hpp"

#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

using namespace std::chrono_literals;

TEST(KeepAlive, TimeoutAndMax) {
  const auto h = parse_keep_alive("timeout=5, max=100");
  EXPECT_EQ(h.timeout, 5s);
  EXPECT_EQ(h.max, 100u);
}

TEST(KeepAlive, EitherAloneAnyCaseAndSpacing) {
  EXPECT_EQ(parse_keep_alive("Timeout = 1").timeout, 1s);
  EXPECT_EQ(parse_keep_alive("Timeout = 1").max, 0u);
  EXPECT_EQ(parse_keep_alive("MAX=3").max, 3u);
  EXPECT_EQ(parse_keep_alive("MAX=3").timeout, 0s);
  EXPECT_EQ(parse_keep_alive("max=\"7\",timeout=\"2\"").timeout, 2s);
}

TEST(KeepAlive, MalformedOrUnknownParametersAreIgnored) {
  const auto h = parse_keep_alive("timeout=abc, foo=1, max=-1, , timeout, max=4");
  EXPECT_EQ(h.timeout, 0s);
  EXPECT_EQ(h.max, 4u);
  EXPECT_EQ(parse_keep_alive("").timeout, 0s);
  EXPECT_EQ(parse_keep_alive("timeout=1.5").timeout, 0s);
}

TEST(KeepAlive, HugeValuesMeanLong) {
  EXPECT_EQ(parse_keep_alive("timeout=99999999999999999999").timeout, std::chrono::seconds(~0u));
}

TEST(KeepAlive, RetiredBeforeTheBackendCloses) {
  EXPECT_EQ(retire_before(1s), 750ms);   // a quarter of a short timeout
  EXPECT_EQ(retire_before(2s), 1500ms);
  EXPECT_EQ(retire_before(5s), 4000ms);  // at most a second
  EXPECT_EQ(retire_before(60s), 59000ms);
  EXPECT_EQ(retire_before(0s), 0ms);
}

}  // namespace
}  // namespace bgproxy::proxy
