#include "bgproxy/routing/decide.hpp"

#include <random>

#include <gtest/gtest.h>

namespace bgproxy::routing {
namespace {

ServiceRoute two_colors(std::uint32_t green_bp) {
  ServiceRoute s;
  // GCC 12 misreports -Wrestrict when these members are assigned from literals.
  s.name = std::string("app");
  s.path_prefix = std::string("/");
  s.green_bp = green_bp;
  s.servers[0] = {ServerRoute{0, true}};
  s.servers[1] = {ServerRoute{1, true}};
  return s;
}

TEST(Decide, ZeroWeightIsAllBlue) {
  auto s = two_colors(0);
  for (std::uint32_t b = 0; b < 10000; ++b) EXPECT_EQ(decide(s, b, std::nullopt).color, Color::blue);
}

TEST(Decide, FullWeightIsAllGreen) {
  auto s = two_colors(10000);
  for (std::uint32_t b = 0; b < 10000; ++b) EXPECT_EQ(decide(s, b, std::nullopt).color, Color::green);
}

TEST(Decide, BucketBelowWeightGoesGreen) {
  auto s = two_colors(1050);
  EXPECT_EQ(decide(s, 1049, std::nullopt).color, Color::green);
  EXPECT_EQ(decide(s, 1050, std::nullopt).color, Color::blue);
}

TEST(Decide, ForcedColorWins) {
  auto s = two_colors(0);
  EXPECT_EQ(decide(s, 0, Color::green).color, Color::green);
}

TEST(Decide, FailsOverWhenChosenColorHasNoUsableServer) {
  auto s = two_colors(10000);
  s.servers[1][0].healthy = false;
  auto d = decide(s, 5, std::nullopt);
  EXPECT_EQ(d.color, Color::blue);
  EXPECT_TRUE(d.failover);
  EXPECT_FALSE(d.unavailable);
}

TEST(Decide, UnavailableWhenNeitherColorHasAnEnabledServer) {
  auto s = two_colors(5000);
  s.servers[0][0].enabled = false;
  s.servers[1][0].enabled = false;
  EXPECT_TRUE(decide(s, 5, std::nullopt).unavailable);
}

TEST(Decide, PanicServesTheChosenColorWhenNothingIsHealthy) {
  auto s = two_colors(10000);
  s.servers[0][0].healthy = false;
  s.servers[1][0].healthy = false;
  const auto d = decide(s, 5, std::nullopt);
  EXPECT_FALSE(d.unavailable);
  EXPECT_TRUE(d.panic);
  EXPECT_EQ(d.color, Color::green);
  EXPECT_FALSE(d.failover);
}

TEST(Decide, PanicFailsOverWhenTheChosenColorIsDisabled) {
  auto s = two_colors(10000);
  s.servers[0][0].healthy = false;
  s.servers[1][0].enabled = false;
  const auto d = decide(s, 5, std::nullopt);
  EXPECT_TRUE(d.panic);
  EXPECT_TRUE(d.failover);
  EXPECT_EQ(d.color, Color::blue);
}

TEST(Decide, RaisingWeightOnlyMovesBlueToGreen) {
  std::mt19937_64 rng(42);
  auto low = two_colors(1000);
  auto high = two_colors(5000);
  for (int i = 0; i < 100000; ++i) {
    auto b = bucket_of(stable_hash(std::to_string(rng())));
    if (decide(low, b, std::nullopt).color == Color::green) {
      EXPECT_EQ(decide(high, b, std::nullopt).color, Color::green);
    }
  }
}

TEST(Decide, HashedKeysSplitWithinOnePercent) {
  std::mt19937_64 rng(7);
  auto s = two_colors(1000);
  int green = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    if (decide(s, bucket_of(stable_hash("client-" + std::to_string(rng()))), std::nullopt).color == Color::green) ++green;
  }
  EXPECT_NEAR(green / double(n), 0.10, 0.01);
}

TEST(MatchService, FirstMatchWinsByHostThenPrefix) {
  RoutingTable t;
  auto api = two_colors(0);
  api.name = "api";
  api.host = "api.example.com";
  auto web = two_colors(0);
  web.name = "web";
  web.path_prefix = "/static";
  auto any = two_colors(0);
  any.name = "any";
  t.services = {api, web, any};
  EXPECT_EQ(match_service(t, "API.example.com", "/x"), 0);
  EXPECT_EQ(match_service(t, "other", "/static/a.css"), 1);
  EXPECT_EQ(match_service(t, "other", "/"), 2);
  t.services.pop_back();
  EXPECT_EQ(match_service(t, "other", "/"), -1);
}

TEST(StableHash, IsStableAcrossReleases) {
  // Stickiness survives upgrades only if these values never change.
  EXPECT_EQ(stable_hash(""), stable_hash(""));
  EXPECT_EQ(bucket_of(stable_hash("user-1")), bucket_of(stable_hash("user-1")));
  EXPECT_NE(stable_hash("user-1"), stable_hash("user-2"));
}

}  // namespace
}  // namespace bgproxy::routing
