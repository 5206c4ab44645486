#include "bgproxy/health/tracker.hpp"

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"

namespace bgproxy::health {
namespace {

using namespace std::chrono_literals;

const Clock::time_point T0{std::chrono::seconds(1000)};

config::Endpoint ep(std::uint16_t port) {
  return config::Endpoint{"127.0.0.1:" + std::to_string(port), "127.0.0.1", port};
}

config::Service service(std::string name, std::uint16_t first_port, unsigned rise, unsigned fall,
                        unsigned passive = 5, bool enabled = true) {
  config::Service s;
  s.name = std::move(name);
  s.blue.servers = {ep(first_port), ep(static_cast<std::uint16_t>(first_port + 1))};
  s.green.servers = {ep(static_cast<std::uint16_t>(first_port + 2))};
  s.health_check.enabled = enabled;
  s.health_check.rise = rise;
  s.health_check.fall = fall;
  s.health_check.passive_failures = passive;
  return s;
}

CheckResult ok(unsigned status = 200) { return CheckResult{true, status, 0.002, ""}; }
CheckResult fail(std::string error = "timeout after 500ms", unsigned status = 0) {
  return CheckResult{false, status, 0.5, std::move(error)};
}

// One service "app" (rise 2, fall 3, passive 5): ids 0,1 blue, 2 green.
struct Fixture {
  config::Config cfg;
  Tracker tracker;
  explicit Fixture(config::Config c) : cfg(std::move(c)), tracker(cfg, routing::enumerate_servers(cfg), T0) {}
};

config::Config one_service(unsigned rise = 2, unsigned fall = 3, unsigned passive = 5) {
  config::Config c;
  c.services.push_back(service("app", 5001, rise, fall, passive));
  return c;
}

// Brings server `id` up with `rise` successes at T0+1s.. and checks it did.
void bring_up(Tracker& t, std::uint32_t id, unsigned rise) {
  for (unsigned i = 0; i < rise; ++i) (void)t.record_check(id, ok(), T0 + std::chrono::seconds(1 + i));
  ASSERT_TRUE(t.is_up(id));
}

TEST(HealthTracker, StartsDownSinceConstruction) {
  Fixture f(one_service());
  ASSERT_EQ(f.tracker.size(), 3u);
  for (std::uint32_t id = 0; id < 3; ++id) {
    EXPECT_FALSE(f.tracker.is_up(id));
    const auto& h = f.tracker.at(id);
    EXPECT_FALSE(h.up);
    EXPECT_EQ(h.since, T0);
    EXPECT_EQ(h.consecutive_successes, 0u);
    EXPECT_EQ(h.consecutive_failures, 0u);
    EXPECT_FALSE(h.last_check.has_value());
    EXPECT_FALSE(h.last_check_time.has_value());
    EXPECT_EQ(h.checks_ok, 0u);
    EXPECT_EQ(h.checks_failed, 0u);
  }
  EXPECT_EQ(f.tracker.up_flags(), (std::vector<bool>{false, false, false}));
}

TEST(HealthTracker, RisesExactlyAfterRiseSuccesses) {
  Fixture f(one_service(3, 3));
  EXPECT_FALSE(f.tracker.record_check(1, ok(), T0 + 1s));
  EXPECT_FALSE(f.tracker.record_check(1, ok(), T0 + 2s));
  EXPECT_FALSE(f.tracker.is_up(1));
  EXPECT_EQ(f.tracker.at(1).consecutive_successes, 2u);
  auto t = f.tracker.record_check(1, ok(), T0 + 3s);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->server, 1u);
  EXPECT_TRUE(t->up);
  EXPECT_EQ(t->reason, "3 consecutive successes");
  EXPECT_TRUE(f.tracker.is_up(1));
  EXPECT_EQ(f.tracker.at(1).since, T0 + 3s);
  // the others are untouched
  EXPECT_FALSE(f.tracker.is_up(0));
  EXPECT_FALSE(f.tracker.is_up(2));
}

TEST(HealthTracker, FallsExactlyAfterFallFailures) {
  Fixture f(one_service(2, 3));
  bring_up(f.tracker, 0, 2);
  EXPECT_FALSE(f.tracker.record_check(0, fail(), T0 + 10s));
  EXPECT_FALSE(f.tracker.record_check(0, fail(), T0 + 11s));
  EXPECT_TRUE(f.tracker.is_up(0));
  EXPECT_EQ(f.tracker.at(0).consecutive_failures, 2u);
  auto t = f.tracker.record_check(0, fail(), T0 + 12s);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->server, 0u);
  EXPECT_FALSE(t->up);
  EXPECT_EQ(t->reason, "3 consecutive failures (timeout after 500ms)");
  EXPECT_FALSE(f.tracker.is_up(0));
  EXPECT_EQ(f.tracker.at(0).since, T0 + 12s);
}

TEST(HealthTracker, DownReasonCarriesTheLastError) {
  Fixture f(one_service(1, 2));
  bring_up(f.tracker, 2, 1);
  EXPECT_FALSE(f.tracker.record_check(2, fail("connect: Connection refused"), T0 + 5s));
  auto t = f.tracker.record_check(2, fail("status 503", 503), T0 + 6s);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->reason, "2 consecutive failures (status 503)");
  EXPECT_EQ(t->server, 2u);
}

TEST(HealthTracker, AlternatingResultsNeverFlap) {
  Fixture f(one_service(2, 2));
  // down server: ok, fail, ok, fail ... never reaches rise 2
  for (int i = 0; i < 20; ++i) {
    auto r = (i % 2 == 0) ? ok() : fail();
    EXPECT_FALSE(f.tracker.record_check(0, r, T0 + std::chrono::seconds(i))) << i;
    EXPECT_FALSE(f.tracker.is_up(0)) << i;
  }
  EXPECT_EQ(f.tracker.at(0).since, T0);
  // up server: fail, ok, fail, ok ... never reaches fall 2
  bring_up(f.tracker, 1, 2);
  const auto since = f.tracker.at(1).since;
  for (int i = 0; i < 20; ++i) {
    auto r = (i % 2 == 0) ? fail() : ok();
    EXPECT_FALSE(f.tracker.record_check(1, r, T0 + std::chrono::seconds(100 + i))) << i;
    EXPECT_TRUE(f.tracker.is_up(1)) << i;
  }
  EXPECT_EQ(f.tracker.at(1).since, since);
}

TEST(HealthTracker, FailureWhileRisingResetsTheCount) {
  Fixture f(one_service(3, 3));
  EXPECT_FALSE(f.tracker.record_check(0, ok(), T0 + 1s));
  EXPECT_FALSE(f.tracker.record_check(0, ok(), T0 + 2s));
  EXPECT_FALSE(f.tracker.record_check(0, fail(), T0 + 3s));
  EXPECT_EQ(f.tracker.at(0).consecutive_successes, 0u);
  EXPECT_EQ(f.tracker.at(0).consecutive_failures, 1u);
  EXPECT_FALSE(f.tracker.record_check(0, ok(), T0 + 4s));
  EXPECT_FALSE(f.tracker.record_check(0, ok(), T0 + 5s));
  EXPECT_FALSE(f.tracker.is_up(0));
  EXPECT_EQ(f.tracker.at(0).consecutive_failures, 0u);
  auto t = f.tracker.record_check(0, ok(), T0 + 6s);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->reason, "3 consecutive successes");
}

TEST(HealthTracker, SuccessWhileFallingResetsTheCount) {
  Fixture f(one_service(1, 3));
  bring_up(f.tracker, 0, 1);
  EXPECT_FALSE(f.tracker.record_check(0, fail(), T0 + 10s));
  EXPECT_FALSE(f.tracker.record_check(0, fail(), T0 + 11s));
  EXPECT_FALSE(f.tracker.record_check(0, ok(), T0 + 12s));
  EXPECT_FALSE(f.tracker.record_check(0, fail(), T0 + 13s));
  EXPECT_FALSE(f.tracker.record_check(0, fail(), T0 + 14s));
  EXPECT_TRUE(f.tracker.is_up(0));
  EXPECT_TRUE(f.tracker.record_check(0, fail(), T0 + 15s).has_value());
}

TEST(HealthTracker, TransitionsAreReturnedOnce) {
  Fixture f(one_service(2, 2));
  int ups = 0;
  for (int i = 0; i < 10; ++i) {
    if (auto t = f.tracker.record_check(0, ok(), T0 + std::chrono::seconds(i))) {
      ++ups;
      EXPECT_EQ(i, 1);
      EXPECT_TRUE(t->up);
    }
  }
  EXPECT_EQ(ups, 1);
  EXPECT_EQ(f.tracker.at(0).consecutive_successes, 10u);
  int downs = 0;
  for (int i = 0; i < 10; ++i) {
    if (auto t = f.tracker.record_check(0, fail(), T0 + std::chrono::seconds(100 + i))) {
      ++downs;
      EXPECT_EQ(i, 1);
      EXPECT_FALSE(t->up);
      EXPECT_EQ(t->reason, "2 consecutive failures (timeout after 500ms)");
    }
  }
  EXPECT_EQ(downs, 1);
  EXPECT_EQ(f.tracker.at(0).consecutive_failures, 10u);
  EXPECT_EQ(f.tracker.at(0).since, T0 + 101s);
}

TEST(HealthTracker, OffServicesAreAlwaysUp) {
  config::Config c;
  c.services.push_back(service("off", 6001, 2, 3, 5, /*enabled=*/false));
  c.services.push_back(service("on", 7001, 2, 3));
  Fixture f(std::move(c));
  ASSERT_EQ(f.tracker.size(), 6u);
  EXPECT_EQ(f.tracker.up_flags(), (std::vector<bool>{true, true, true, false, false, false}));
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(f.tracker.record_check(0, fail(), T0 + std::chrono::seconds(i)));
  }
  EXPECT_FALSE(f.tracker.record_passive_ejection(1, T0 + 20s));
  EXPECT_TRUE(f.tracker.is_up(0));
  EXPECT_TRUE(f.tracker.is_up(1));
  const auto& h = f.tracker.at(0);
  EXPECT_TRUE(h.up);
  EXPECT_EQ(h.since, T0);
  EXPECT_EQ(h.consecutive_failures, 0u);
  EXPECT_EQ(h.checks_failed, 0u);
  EXPECT_FALSE(h.last_check.has_value());
  EXPECT_EQ(f.tracker.up_flags(), (std::vector<bool>{true, true, true, false, false, false}));
}

TEST(HealthTracker, PassiveEjectionOfAnUpServer) {
  Fixture f(one_service(2, 3, 5));
  bring_up(f.tracker, 1, 2);
  auto t = f.tracker.record_passive_ejection(1, T0 + 30s);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->server, 1u);
  EXPECT_FALSE(t->up);
  EXPECT_EQ(t->reason, "passive: 5 consecutive failures");
  EXPECT_FALSE(f.tracker.is_up(1));
  EXPECT_EQ(f.tracker.at(1).since, T0 + 30s);
  EXPECT_EQ(f.tracker.at(1).consecutive_successes, 0u);
  // a second report while down changes nothing
  EXPECT_FALSE(f.tracker.record_passive_ejection(1, T0 + 31s));
  EXPECT_EQ(f.tracker.at(1).since, T0 + 30s);
}

TEST(HealthTracker, PassiveEjectionReasonUsesConfiguredCount) {
  Fixture f(one_service(1, 3, 7));
  bring_up(f.tracker, 0, 1);
  auto t = f.tracker.record_passive_ejection(0, T0 + 9s);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->reason, "passive: 7 consecutive failures");
}

TEST(HealthTracker, PassiveEjectionOfADownServerIsNothing) {
  Fixture f(one_service());
  EXPECT_FALSE(f.tracker.record_passive_ejection(0, T0 + 5s));
  EXPECT_FALSE(f.tracker.is_up(0));
  EXPECT_EQ(f.tracker.at(0).since, T0);
}

TEST(HealthTracker, PassiveEjectionIgnoredWhenPassiveFailuresIsZero) {
  Fixture f(one_service(2, 3, 0));
  bring_up(f.tracker, 0, 2);
  const auto since = f.tracker.at(0).since;
  EXPECT_FALSE(f.tracker.record_passive_ejection(0, T0 + 50s));
  EXPECT_TRUE(f.tracker.is_up(0));
  EXPECT_EQ(f.tracker.at(0).since, since);
  EXPECT_EQ(f.tracker.at(0).consecutive_successes, 2u);
}

TEST(HealthTracker, AfterPassiveEjectionNeedsRiseSuccesses) {
  Fixture f(one_service(3, 3, 5));
  bring_up(f.tracker, 2, 3);
  ASSERT_TRUE(f.tracker.record_passive_ejection(2, T0 + 40s).has_value());
  EXPECT_FALSE(f.tracker.record_check(2, ok(), T0 + 41s));
  EXPECT_FALSE(f.tracker.record_check(2, ok(), T0 + 42s));
  EXPECT_FALSE(f.tracker.is_up(2));
  auto t = f.tracker.record_check(2, ok(), T0 + 43s);
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(t->up);
  EXPECT_EQ(t->reason, "3 consecutive successes");
  EXPECT_EQ(f.tracker.at(2).since, T0 + 43s);
}

TEST(HealthTracker, StatusExpectedDefaultRange) {
  config::HealthCheck hc;  // default 200-399
  EXPECT_FALSE(Tracker::status_expected(hc, 0));
  EXPECT_FALSE(Tracker::status_expected(hc, 199));
  EXPECT_TRUE(Tracker::status_expected(hc, 200));
  EXPECT_TRUE(Tracker::status_expected(hc, 302));
  EXPECT_TRUE(Tracker::status_expected(hc, 399));
  EXPECT_FALSE(Tracker::status_expected(hc, 400));
  EXPECT_FALSE(Tracker::status_expected(hc, 503));
}

TEST(HealthTracker, StatusExpectedSingleValue) {
  config::HealthCheck hc;
  hc.expect_status = {config::StatusRange{204, 204}};
  EXPECT_TRUE(Tracker::status_expected(hc, 204));
  EXPECT_FALSE(Tracker::status_expected(hc, 203));
  EXPECT_FALSE(Tracker::status_expected(hc, 205));
  EXPECT_FALSE(Tracker::status_expected(hc, 200));
}

TEST(HealthTracker, StatusExpectedList) {
  config::HealthCheck hc;  // "200,204,300-399"
  hc.expect_status = {config::StatusRange{200, 200}, config::StatusRange{204, 204},
                      config::StatusRange{300, 399}};
  EXPECT_TRUE(Tracker::status_expected(hc, 200));
  EXPECT_FALSE(Tracker::status_expected(hc, 201));
  EXPECT_FALSE(Tracker::status_expected(hc, 203));
  EXPECT_TRUE(Tracker::status_expected(hc, 204));
  EXPECT_FALSE(Tracker::status_expected(hc, 205));
  EXPECT_FALSE(Tracker::status_expected(hc, 299));
  EXPECT_TRUE(Tracker::status_expected(hc, 300));
  EXPECT_TRUE(Tracker::status_expected(hc, 399));
  EXPECT_FALSE(Tracker::status_expected(hc, 400));
}

TEST(HealthTracker, StatusExpectedEmptyListMatchesNothing) {
  config::HealthCheck hc;
  hc.expect_status.clear();
  EXPECT_FALSE(Tracker::status_expected(hc, 200));
}

TEST(HealthTracker, UpFlagsByServerId) {
  config::Config c;
  c.services.push_back(service("a", 5001, 1, 1));
  c.services.push_back(service("b", 6001, 1, 1));
  Fixture f(std::move(c));
  ASSERT_EQ(f.tracker.size(), 6u);
  (void)f.tracker.record_check(1, ok(), T0 + 1s);
  (void)f.tracker.record_check(4, ok(), T0 + 1s);
  (void)f.tracker.record_check(5, ok(), T0 + 1s);
  EXPECT_EQ(f.tracker.up_flags(), (std::vector<bool>{false, true, false, false, true, true}));
  (void)f.tracker.record_check(5, fail(), T0 + 2s);
  EXPECT_EQ(f.tracker.up_flags(), (std::vector<bool>{false, true, false, false, true, false}));
  EXPECT_FALSE(f.tracker.is_up(6));  // out of range
}

TEST(HealthTracker, KeepsTotalsAndLastCheck) {
  Fixture f(one_service(2, 3));
  (void)f.tracker.record_check(0, ok(200), T0 + 1s);
  (void)f.tracker.record_check(0, fail("status 500", 500), T0 + 2s);
  (void)f.tracker.record_check(0, ok(204), T0 + 3s);
  (void)f.tracker.record_check(0, ok(200), T0 + 4s);
  (void)f.tracker.record_check(0, fail("status 503", 503), T0 + 5s);
  const auto& h = f.tracker.at(0);
  EXPECT_EQ(h.checks_ok, 3u);
  EXPECT_EQ(h.checks_failed, 2u);
  ASSERT_TRUE(h.last_check.has_value());
  EXPECT_FALSE(h.last_check->ok);
  EXPECT_EQ(h.last_check->status, 503u);
  EXPECT_EQ(h.last_check->error, "status 503");
  ASSERT_TRUE(h.last_check_time.has_value());
  EXPECT_EQ(*h.last_check_time, T0 + 5s);
  EXPECT_EQ(h.consecutive_failures, 1u);
  EXPECT_EQ(h.consecutive_successes, 0u);
  // other servers keep their own totals
  EXPECT_EQ(f.tracker.at(1).checks_ok, 0u);
  EXPECT_EQ(f.tracker.at(1).checks_failed, 0u);
}

TEST(HealthTracker, SinceChangesOnlyOnStateChange) {
  Fixture f(one_service(2, 2));
  (void)f.tracker.record_check(0, ok(), T0 + 1s);
  EXPECT_EQ(f.tracker.at(0).since, T0);
  (void)f.tracker.record_check(0, ok(), T0 + 2s);  // up
  EXPECT_EQ(f.tracker.at(0).since, T0 + 2s);
  (void)f.tracker.record_check(0, ok(), T0 + 3s);
  (void)f.tracker.record_check(0, fail(), T0 + 4s);
  EXPECT_EQ(f.tracker.at(0).since, T0 + 2s);
  (void)f.tracker.record_check(0, fail(), T0 + 5s);  // down
  EXPECT_EQ(f.tracker.at(0).since, T0 + 5s);
  (void)f.tracker.record_check(0, fail(), T0 + 6s);
  EXPECT_EQ(f.tracker.at(0).since, T0 + 5s);
}

TEST(HealthTracker, ReloadCarriesHealthOverByServiceColorAndAddress) {
  Fixture old(one_service());
  bring_up(old.tracker, 0, 2);  // blue 5001 up
  bring_up(old.tracker, 2, 2);  // green 5003 up
  (void)old.tracker.record_check(1, fail(), T0 + 5s);

  // The new config reorders: blue 5002, 5001 and a new 5009; green 5003 moved to blue.
  config::Config next;
  auto s = service("app", 5001, 2, 3);
  s.blue.servers = {ep(5002), ep(5001), ep(5009)};
  s.green.servers = {ep(5004)};
  next.services.push_back(s);
  next.services[0].blue.servers.push_back(ep(5003));
  Tracker t(next, routing::enumerate_servers(next), T0 + 10s);
  t.carry_over(old.tracker);
  EXPECT_FALSE(t.is_up(0));                        // 5002: was down, one failure carried
  EXPECT_EQ(t.at(0).consecutive_failures, 1u);
  EXPECT_TRUE(t.is_up(1));                         // 5001 stays up
  EXPECT_EQ(t.at(1).since, old.tracker.at(0).since);
  EXPECT_FALSE(t.is_up(2));                        // 5009: new, starts down
  EXPECT_EQ(t.at(2).since, T0 + 10s);
  EXPECT_FALSE(t.is_up(3));                        // 5003 was green; as blue it is another server
  EXPECT_FALSE(t.is_up(4));                        // green 5004: new
}

TEST(HealthTracker, ReloadDoesNotCarryAcrossServicesOrIntoUncheckedOnes) {
  Fixture old(one_service());
  bring_up(old.tracker, 0, 2);
  config::Config renamed;
  renamed.services.push_back(service("api", 5001, 2, 3));
  Tracker t(renamed, routing::enumerate_servers(renamed), T0 + 10s);
  t.carry_over(old.tracker);
  EXPECT_FALSE(t.is_up(0)) << "another service's server with the same address";

  config::Config unchecked;
  unchecked.services.push_back(service("app", 5001, 2, 3, 5, false));
  Tracker u(unchecked, routing::enumerate_servers(unchecked), T0 + 10s);
  u.carry_over(old.tracker);
  for (std::uint32_t id = 0; id < 3; ++id) EXPECT_TRUE(u.is_up(id)) << "health_check off: always up";
}

TEST(HealthTracker, AssumeStartsFromWhatTheOldProcessKnew) {
  Fixture f(one_service(2, 3));
  f.tracker.assume(1, true, T0 + 1s);
  EXPECT_TRUE(f.tracker.is_up(1));
  EXPECT_EQ(f.tracker.at(1).since, T0 + 1s);
  // Still falls after `fall` failures like any up server.
  EXPECT_FALSE(f.tracker.record_check(1, fail(), T0 + 2s));
  EXPECT_FALSE(f.tracker.record_check(1, fail(), T0 + 3s));
  EXPECT_TRUE(f.tracker.record_check(1, fail(), T0 + 4s));
  EXPECT_FALSE(f.tracker.is_up(1));
}

}  // namespace
}  // namespace bgproxy::health
