// StatsHistory (control/core/stats_history): one merged snapshot per collection, kept as far
// back as the longest watchdog window, and the per-service, per-color window figures read from
// it. Time is injected; no clock is read.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bgproxy/config/config.hpp"
#include "bgproxy/stats/request_stats.hpp"
#include "control/core/service_runtime.hpp"
#include "control/core/stats_history.hpp"

namespace bgproxy::control {
namespace {

using namespace std::chrono_literals;
using Clock = StatsHistory::Clock;

constexpr std::size_t blue = 0;
constexpr std::size_t green = 1;

const Clock::time_point t0 = Clock::time_point{} + 1000s;

config::Service service(const std::string& name, std::chrono::milliseconds window) {
  config::Service s;
  s.name = name;
  s.watchdog.window = window;
  return s;
}

config::Config config_of(std::vector<config::Service> services) {
  config::Config cfg;
  cfg.services = std::move(services);
  return cfg;
}

/// Cumulative stats: per service, per color, `ok` 200s and `failed` 503s of 10 ms each.
struct Counts {
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
};
stats::RequestStats cumulative(const std::vector<std::array<Counts, 2>>& services, std::size_t servers = 0) {
  stats::RequestStats s(services.size(), servers);
  for (std::size_t si = 0; si < services.size(); ++si) {
    for (std::size_t c = 0; c < 2; ++c) {
      for (std::uint64_t i = 0; i < services[si][c].ok; ++i) s.services[si].colors[c].record(200, 0.010);
      for (std::uint64_t i = 0; i < services[si][c].failed; ++i) s.services[si].colors[c].record(503, 0.010);
    }
  }
  return s;
}

/// One service: `blue_ok` blue 200s so far.
stats::RequestStats blue_so_far(std::uint64_t blue_ok) { return cumulative({{Counts{blue_ok, 0}, Counts{}}}); }

TEST(StatsHistory, NoFiguresBeforeTheFirstSnapshot) {
  StatsHistory h;
  const auto cfg = config_of({service("app", 30s)});
  EXPECT_TRUE(h.window_figures(cfg).empty());
  EXPECT_EQ(h.newest(), nullptr);
}

TEST(StatsHistory, OneSnapshotIsAnEmptyWindow) {
  StatsHistory h;
  const auto cfg = config_of({service("app", 30s)});
  h.push(t0, blue_so_far(50), cfg);
  const auto f = h.window_figures(cfg);
  ASSERT_EQ(f.size(), 1U);
  EXPECT_EQ(f[0][blue].requests, 0U);
  EXPECT_EQ(f[0][blue].rps, 0.0);
  ASSERT_NE(h.newest(), nullptr);
  EXPECT_EQ(h.newest()->services[0].colors[blue].responses[0], 50U);
}

TEST(StatsHistory, FiguresAreTheDifferenceOverTheWindow) {
  StatsHistory h;
  const auto cfg = config_of({service("app", 30s)});
  h.push(t0, cumulative({{Counts{10, 0}, Counts{0, 0}}}), cfg);
  h.push(t0 + 1s, cumulative({{Counts{30, 0}, Counts{5, 0}}}), cfg);
  h.push(t0 + 2s, cumulative({{Counts{60, 0}, Counts{8, 4}}}), cfg);
  const auto f = h.window_figures(cfg);
  ASSERT_EQ(f.size(), 1U);
  EXPECT_EQ(f[0][blue].requests, 50U);
  EXPECT_DOUBLE_EQ(f[0][blue].rps, 25.0);
  EXPECT_EQ(f[0][blue].errors, 0U);
  EXPECT_EQ(f[0][green].requests, 12U);
  EXPECT_EQ(f[0][green].errors, 4U);
  EXPECT_DOUBLE_EQ(f[0][green].error_rate, 4.0 / 12.0);
  EXPECT_NEAR(f[0][green].p95_seconds, 0.010, 0.0005);
}

TEST(StatsHistory, EachServiceReadsItsOwnWindow) {
  StatsHistory h;
  const auto cfg = config_of({service("short", 1s), service("long", 10s)});
  for (int i = 0; i <= 4; ++i) {
    const auto n = static_cast<std::uint64_t>(10 * i * i);  // 0, 10, 40, 90, 160
    h.push(t0 + std::chrono::seconds(i), cumulative({{Counts{n, 0}, Counts{}}, {Counts{n, 0}, Counts{}}}), cfg);
  }
  const auto f = h.window_figures(cfg);
  ASSERT_EQ(f.size(), 2U);
  EXPECT_EQ(f[0][blue].requests, 70U);  // the last second: 160 - 90
  EXPECT_DOUBLE_EQ(f[0][blue].rps, 70.0);
  EXPECT_EQ(f[1][blue].requests, 160U);  // all 4 s of it
  EXPECT_DOUBLE_EQ(f[1][blue].rps, 40.0);
}

TEST(StatsHistory, ASnapshotExactlyAWindowOldIsInsideIt) {
  StatsHistory h;
  const auto cfg = config_of({service("app", 2s)});
  h.push(t0, blue_so_far(0), cfg);
  h.push(t0 + 2s, blue_so_far(20), cfg);
  EXPECT_EQ(h.window_figures(cfg)[0][blue].requests, 20U);
  h.push(t0 + 2500ms, blue_so_far(30), cfg);
  EXPECT_EQ(h.window_figures(cfg)[0][blue].requests, 10U);  // t0 fell out: from t0+2s on
}

TEST(StatsHistory, SnapshotsBeyondTheLongestWindowAreDropped) {
  StatsHistory h;
  const auto short_window = config_of({service("app", 2s)});
  for (int i = 0; i <= 10; ++i) h.push(t0 + std::chrono::seconds(i), blue_so_far(10u * i), short_window);
  // A reload to a longer window finds only what the shorter one kept: 2 s back, not 10.
  const auto long_window = config_of({service("app", 60s)});
  const auto f = h.window_figures(long_window);
  EXPECT_EQ(f[0][blue].requests, 20U);
  EXPECT_DOUBLE_EQ(f[0][blue].rps, 10.0);
}

TEST(StatsHistory, AfterAGapLongerThanTheWindowTheWindowStartsAtTheNewest) {
  StatsHistory h;
  const auto cfg = config_of({service("app", 5s)});
  h.push(t0, blue_so_far(0), cfg);
  h.push(t0 + 60s, blue_so_far(600), cfg);
  const auto f = h.window_figures(cfg);
  EXPECT_EQ(f[0][blue].requests, 0U);  // nothing is known about the last 5 s alone
}

TEST(StatsHistory, AServiceTheSnapshotsDoNotCoverReadsZero) {
  StatsHistory h;
  const auto one = config_of({service("app", 30s)});
  h.push(t0, blue_so_far(0), one);
  h.push(t0 + 1s, blue_so_far(10), one);
  const auto two = config_of({service("app", 30s), service("api", 30s)});
  const auto f = h.window_figures(two);
  ASSERT_EQ(f.size(), 2U);
  EXPECT_EQ(f[0][blue].requests, 10U);
  EXPECT_EQ(f[1][blue].requests, 0U);
  EXPECT_EQ(f[1][green].requests, 0U);
}

TEST(StatsHistory, RenumberedServicesKeepTheirWindowAndANewOneStartsFromZero) {
  StatsHistory h;
  const auto before = config_of({service("app", 30s), service("api", 30s)});
  h.push(t0, cumulative({{Counts{0, 0}, Counts{}}, {Counts{0, 0}, Counts{}}}, 3), before);
  h.push(t0 + 1s, cumulative({{Counts{10, 0}, Counts{}}, {Counts{20, 0}, Counts{}}}, 3), before);
  const auto after = config_of({service("new", 30s), service("api", 30s), service("app", 30s)});
  h.renumber(ServiceRenumbering(before, after));
  const auto f = h.window_figures(after);
  ASSERT_EQ(f.size(), 3U);
  EXPECT_EQ(f[0][blue].requests, 0U);
  EXPECT_EQ(f[1][blue].requests, 20U);
  EXPECT_EQ(f[2][blue].requests, 10U);
  ASSERT_NE(h.newest(), nullptr);
  EXPECT_EQ(h.newest()->services.size(), 3U);
  EXPECT_TRUE(h.newest()->servers.empty());  // server ids change with a reload
}

TEST(StatsHistory, NewestIsTheLastPushed) {
  StatsHistory h;
  const auto cfg = config_of({service("app", 30s)});
  h.push(t0, blue_so_far(1), cfg);
  h.push(t0 + 1s, blue_so_far(2), cfg);
  ASSERT_NE(h.newest(), nullptr);
  EXPECT_EQ(h.newest()->services[0].colors[blue].responses[0], 2U);
}

TEST(StatsHistory, TheNewestStepIsTheLastCollectionsSecond) {
  StatsHistory h;
  const auto cfg = config_of({service("app", 30s)});
  h.push(t0, blue_so_far(10), cfg);
  EXPECT_TRUE(h.newest_step(cfg).empty());
  h.push(t0 + 1s, blue_so_far(30), cfg);
  h.push(t0 + 2s, blue_so_far(35), cfg);
  const auto f = figures_of(h.newest_step(cfg));
  ASSERT_EQ(f.size(), 1U);
  EXPECT_EQ(f[0][blue].requests, 5U);
  EXPECT_DOUBLE_EQ(f[0][blue].rps, 5.0);
  EXPECT_EQ(h.window_figures(cfg)[0][blue].requests, 25U);  // the window still reaches back to t0
}

}  // namespace
}  // namespace bgproxy::control
