// Issue 13 acceptance item 7 (SPEC §12): a fleet of real bgproxy instances sharing one state
// through a real etcd on loopback (one member, or three), driven with the real bgctl:
//   1. a change via a is routed by b and c; b and c's history names a; the fleet view and metrics;
//   2. concurrent changes via a and b: every acknowledged change in the history exactly once,
//      refusals are conflicts, every instance ends on the last entry's weights;
//   3. a watchdog rollback only the sum of the three instances' windows can decide: one entry;
//   4. canary steps advance exactly once per step, with traffic spread over the fleet;
//   5. etcd's leader killed (3 members): changes go on after the re-election;
//   6. two of three etcd members stopped: changes refused, traffic served, --local works, the
//      watchdog rolls back locally; quorum back: the rollback reaches the others;
//   7. an instance restarted while etcd is down starts from its state file and joins later;
//   8. a compacted watch revision: an instance cut off while the store moved on and was
//      compacted still converges;
//   9. kill -9 of an instance: it leaves the members within the lease TTL.
// Every wait is bounded and polls an observable (bgctl --json, a response, a metric, a log line).

#include <algorithm>
#include <iostream>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fleet_harness.hpp"

namespace bgtest::fleet {
namespace {

constexpr const char* kNoWatchdog = "sticky: none\nwatchdog: { enabled: false }\n";
/// The watchdog on: a 10 s window, decided from 30 requests, rollback above 5 % errors.
constexpr const char* kWatchdog =
    "sticky: none\n"
    "watchdog: { enabled: true, window: 10s, min_requests: 30, max_error_rate: 0.05, max_p95: 5s, bake_time: 60s }\n";

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::int64_t fleet_revision(const json::object& status) {
  return status.at("fleet").at("revision").to_number<std::int64_t>();
}

/// "instance time command args" of every entry, to compare histories across instances.
std::vector<std::string> history_keys(const json::array& h) {
  std::vector<std::string> r;
  for (const auto& e : h) {
    const auto& o = e.as_object();
    r.push_back(str(o, "instance") + " " + str(o, "time") + " " + str(o, "command") + " " +
                (o.contains("args") ? json::serialize(o.at("args")) : std::string("-")));
  }
  return r;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += "  " + x + "\n";
  return s;
}

/// The harness (fleet_harness.hpp) with a wait the tests below share; named as the harness so
/// that the tests stay FleetTest.* (`fleet::FleetTest` is the harness itself).
class FleetTest : public fleet::FleetTest {
 protected:
  /// Expects each of `instances` to route a request to `color` within `timeout`.
  void expect_routed_to(const std::vector<std::string>& instances, const std::string& color, Ms timeout) {
    for (const auto& i : instances) {
      std::string seen;
      EXPECT_TRUE(wait_until([&] { return (seen = routed_color(i)) == color; }, timeout))
          << i << " still routes to " << seen;
    }
  }
};

// ---------------------------------------------------------------------------------------------
// 1.

TEST_F(FleetTest, ChangeViaAIsRoutedByBAndC) {
  FleetOptions o;
  o.service_extra = kNoWatchdog;
  start_fleet(o);

  for (const std::string i : {"a", "b", "c"}) {
    EXPECT_EQ(metric(i, "bgproxy_cluster_connected"), 1.0) << i;
    EXPECT_TRUE(proxy(i).wait_metric("bgproxy_cluster_members", {}, [](double v) { return v == 3; }, Ms(3000)) == 3.0)
        << i;
  }
  EXPECT_TRUE(proxy("a").process().wait_for_line(std::regex(R"(cluster: connected to etcd at http://127\.0\.0\.1:\d+ \(instance a\))"), Ms(1000)))
      << "no 'cluster: connected to etcd at URL (instance a)' line";

  // A split via a: acknowledged, then b and c take it from their watch.
  const auto t0 = Clock::now();
  const auto answer = ctl("a", {"split", "--green", "30"});
  EXPECT_EQ(num(answer.at("state").at("weights").at("green")), 30.0) << json::serialize(answer);
  ASSERT_TRUE(wait_green({"b", "c"}, 30, Ms(3000))) << "b: " << green_weight("b") << " c: " << green_weight("c");
  std::cout << "[ fleet ] b and c report green 30 " << secs(Clock::now() - t0) << " s after the split via a\n";

  for (const std::string i : {"b", "c"}) {
    const auto h = history_json(i);
    ASSERT_FALSE(h.empty()) << i;
    const auto& last = h.back().as_object();
    EXPECT_EQ(str(last, "command"), "split") << json::serialize(last);
    EXPECT_EQ(str(last, "instance"), "a") << i << ": " << json::serialize(last);
    EXPECT_EQ(num(last.at("args").at("green")), 30.0) << json::serialize(last);
    EXPECT_EQ(num(last.at("before").at("green")), 0.0) << json::serialize(last);
    EXPECT_EQ(num(last.at("after").at("green")), 30.0) << json::serialize(last);
  }

  // A switch via a: every request through b and c goes green.
  ctl("a", {"switch", "green"});
  expect_routed_to({"b", "c"}, "green", Ms(2000));
  // Once green, it stays green: 20 requests through each.
  for (const std::string i : {"a", "b", "c"})
    for (int k = 0; k < 20; ++k) ASSERT_EQ(routed_color(i), "green") << i << " request " << k;

  // The fleet view: every member, connected, and the revision each routes by (members publish
  // theirs; they catch up within a second or so).
  const std::int64_t rev = fleet_revision(status_json("a"));
  EXPECT_GT(rev, 0);
  json::object st;
  const bool settled = wait_until(
      [&] {
        st = status_json("b");
        const auto& f = st.at("fleet").as_object();
        if (fleet_revision(st) != rev) return false;
        for (const auto& m : f.at("members").as_array())
          if (m.at("revision").to_number<std::int64_t>() != rev || !m.at("connected").as_bool()) return false;
        return true;
      },
      Ms(4000), Ms(100));
  EXPECT_TRUE(settled) << "fleet view of b never showed every member on revision " << rev << ": "
                       << json::serialize(st.at("fleet"));
  const auto& fleet = st.at("fleet").as_object();
  EXPECT_TRUE(fleet.at("connected").as_bool());
  EXPECT_EQ(str(fleet, "instance"), "b");
  const auto& members = fleet.at("members").as_array();
  ASSERT_EQ(members.size(), 3u) << json::serialize(fleet);
  const char* names[] = {"a", "b", "c"};
  for (std::size_t k = 0; k < 3; ++k) {
    const auto& m = members[k].as_object();
    EXPECT_EQ(str(m, "instance"), names[k]) << json::serialize(fleet);
    // Its admin listener as bound (the config says 127.0.0.1:0).
    EXPECT_EQ(str(m, "address"), "127.0.0.1:" + std::to_string(proxy(names[k]).admin_port())) << json::serialize(m);
  }

  // The human view.
  const auto human = bgctl("c", {"status"});
  EXPECT_EQ(human.exit_code, 0) << human.err;
  EXPECT_TRUE(contains(human.out, "fleet: connected to etcd, routing by revision " + std::to_string(rev) + ", 3 members"))
      << human.out;
  for (const std::string i : {"a", "b", "c"}) {
    EXPECT_TRUE(std::regex_search(human.out, std::regex("\n +" + i + " +127\\.0\\.0\\.1:" +
                                                        std::to_string(proxy(i).admin_port()) + " +revision " +
                                                        std::to_string(rev) + " +connected")))
        << "no member line for " << i << " in:\n" << human.out;
  }

  // Logs and metrics name the revision.
  EXPECT_TRUE(proxy("b").process().wait_for_line(
      std::regex("cluster: applied app rev " + std::to_string(rev) + R"( from instance a \(switch green\))"), Ms(1000)))
      << "no 'cluster: applied app rev " << rev << " from instance a (switch green)' line in b's log";
  for (const std::string i : {"a", "b", "c"}) {
    EXPECT_EQ(metric(i, "bgproxy_cluster_revision", {{"service", "app"}}), static_cast<double>(rev)) << i;
    EXPECT_EQ(metric(i, "bgproxy_cluster_conflicts_total", {{"service", "app"}}), 0.0) << i;
    EXPECT_EQ(metric(i, "bgproxy_cluster_connected"), 1.0) << i;
    EXPECT_EQ(metric(i, "bgproxy_cluster_members"), 3.0) << i;
  }
}

// ---------------------------------------------------------------------------------------------
// 2.

TEST_F(FleetTest, ConcurrentChangesViaAAndBNeverLoseAnUpdate) {
  FleetOptions o;
  o.service_extra = kNoWatchdog;
  start_fleet(o);

  struct Attempt {
    std::string instance;
    int green = 0;
    CommandResult r;
  };
  // Two clients on each of a and b, each with its own values (a: 1-10 and 21-30, b: 51-60 and
  // 71-80), so every history entry names its command.
  constexpr int kPerClient = 10;
  std::mutex mu;
  std::vector<Attempt> attempts;
  auto run = [&](const std::string& instance, int base) {
    for (int k = 0; k < kPerClient; ++k) {
      Attempt a{instance, base + k, {}};
      a.r = bgctl(instance, {"split", "--green", std::to_string(a.green)});
      std::lock_guard lock(mu);
      attempts.push_back(std::move(a));
    }
  };
  std::vector<std::thread> clients;
  for (const auto& [instance, base] : std::vector<std::pair<std::string, int>>{{"a", 1}, {"a", 21}, {"b", 51}, {"b", 71}})
    clients.emplace_back(run, instance, base);
  for (auto& t : clients) t.join();

  std::set<std::pair<std::string, int>> acknowledged;
  std::size_t conflicts = 0;
  std::string first_refusal;
  for (const auto& a : attempts) {
    if (a.r.exit_code == 0) {
      acknowledged.insert({a.instance, a.green});
    } else {
      ++conflicts;
      if (first_refusal.empty()) first_refusal = a.r.err;
      EXPECT_EQ(a.r.exit_code, 1) << a.instance << " split " << a.green << ": " << a.r.err << a.r.out;
      EXPECT_TRUE(contains(a.r.err + a.r.out, "conflict"))
          << a.instance << " split " << a.green << " refused for another reason: " << a.r.err << a.r.out;
    }
  }
  std::cout << "[ fleet ] " << attempts.size() << " concurrent splits: " << acknowledged.size() << " acknowledged, "
            << conflicts << " conflicts" << (first_refusal.empty() ? "" : ", e.g. " + first_refusal) << "\n";
  EXPECT_GE(acknowledged.size(), attempts.size() / 2) << "most changes should land";

  // Everyone settles on one revision.
  ASSERT_TRUE(wait_until(
      [&] {
        const auto ra = fleet_revision(status_json("a"));
        return ra == fleet_revision(status_json("b")) && ra == fleet_revision(status_json("c"));
      },
      Ms(3000), Ms(50)))
      << "the instances do not settle on one revision";

  const auto h = history_json("c");
  const auto splits = entries(h, "split");
  // Every acknowledged change exactly once; nothing that was refused.
  std::map<std::pair<std::string, int>, int> seen;
  for (const auto& e : splits) ++seen[{str(e, "instance"), static_cast<int>(num(e.at("args").at("green")))}];
  for (const auto& k : acknowledged)
    EXPECT_EQ(seen[k], 1) << "split " << k.second << " acknowledged by " << k.first << " is in c's history "
                          << seen[k] << " times";
  EXPECT_EQ(splits.size(), acknowledged.size()) << "the history holds changes nobody was told about:\n"
                                                << join(history_keys(h));

  // Each entry's before is the previous entry's after: no update was overwritten unseen.
  for (std::size_t k = 1; k < splits.size(); ++k)
    EXPECT_EQ(num(splits[k].at("before").at("green")), num(splits[k - 1].at("after").at("green")))
        << "entry " << k << " does not follow entry " << k - 1 << ":\n"
        << json::serialize(splits[k - 1]) << "\n" << json::serialize(splits[k]);

  // The same history everywhere, and the last entry's weights on every instance.
  ASSERT_FALSE(splits.empty());
  const double last = num(splits.back().at("after").at("green"));
  for (const std::string i : {"a", "b", "c"}) {
    EXPECT_EQ(green_weight(i), last) << i;
    EXPECT_EQ(history_keys(history_json(i)), history_keys(h)) << i;
  }

  double lost = 0;
  for (const std::string i : {"a", "b"}) lost += metric(i, "bgproxy_cluster_conflicts_total", {{"service", "app"}}).value_or(-1);
  std::cout << "[ fleet ] bgproxy_cluster_conflicts_total a+b = " << lost << "\n";
  EXPECT_GE(lost, static_cast<double>(conflicts)) << "every conflict answer lost at least one compare-and-swap";
}

// ---------------------------------------------------------------------------------------------
// 3.

TEST_F(FleetTest, WatchdogRollbackOnlyTheSumCanDecide) {
  FleetOptions o;
  o.service_extra = kWatchdog;
  start_fleet(o);
  ctl("a", {"split", "--green", "50"});
  ASSERT_TRUE(wait_green({"a", "b", "c"}, 50, Ms(3000)));

  // Requests before an instance's first stats snapshot never enter its window (its baseline):
  // wait until every instance has published one.
  ASSERT_TRUE(wait_stats_published({"a", "b", "c"}, Ms(5000)));

  // Every green answer is a 500; 15 forced-green requests through each instance: 15 < 30 in any
  // one window, 45 in their sum.
  green_->knobs("error_rate=1");
  for (const std::string i : {"a", "b", "c"}) {
    const auto statuses = send_forced(i, "green", 15);
    EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 500), 15) << i;
  }
  const auto t0 = Clock::now();
  const bool rolled_back = wait_until(
      [&] { return phase("a") == "rolled_back" && phase("b") == "rolled_back" && phase("c") == "rolled_back"; },
      Ms(10000), Ms(100));
  ASSERT_TRUE(rolled_back) << "phases: a " << phase("a") << ", b " << phase("b") << ", c " << phase("c")
                           << "; a's status: " << json::serialize(service_status("a"));
  std::cout << "[ fleet ] every instance rolled back " << secs(Clock::now() - t0) << " s after the last request\n";

  // Exactly one entry, everywhere, naming the deciding instance and the summed n; it stays one.
  const auto one_rollback = [&](const std::string& i) { return entries(history_json(i), "rollback").size(); };
  EXPECT_FALSE(wait_until([&] { return one_rollback("a") > 1 || one_rollback("b") > 1 || one_rollback("c") > 1; },
                          Ms(2500), Ms(250)))
      << "more than one rollback entry";
  std::string decider, decision;
  for (const std::string i : {"a", "b", "c"}) {
    const auto rb = entries(history_json(i), "rollback");
    ASSERT_EQ(rb.size(), 1u) << i << ":\n" << join(history_keys(history_json(i)));
    const auto& e = rb.front();
    if (decider.empty()) {
      decider = str(e, "instance");
      decision = str(e, "reason");
    }
    EXPECT_EQ(str(e, "instance"), decider) << json::serialize(e);
    std::smatch m;
    const std::string reason = str(e, "reason");
    ASSERT_TRUE(std::regex_search(reason, m, std::regex(R"(^watchdog: error_rate 1\.000 > 0\.05 \(n=(\d+), window 10s\))")))
        << reason;
    const int n = std::stoi(m[1]);
    EXPECT_GT(n, 15) << "the decision must rest on more than one instance's requests: " << reason;
    EXPECT_LE(n, 45) << reason;
    EXPECT_EQ(num(e.at("before").at("green")), 50.0) << json::serialize(e);
    EXPECT_EQ(num(e.at("after").at("green")), 0.0) << json::serialize(e);
  }
  EXPECT_TRUE(decider == "a" || decider == "b" || decider == "c") << decider;
  std::cout << "[ fleet ] rollback decided by " << decider << ": " << decision << "\n";

  for (const std::string i : {"a", "b", "c"}) {
    EXPECT_EQ(green_weight(i), 0.0) << i;
    for (int k = 0; k < 10; ++k) ASSERT_EQ(routed_color(i), "blue") << i << " request " << k;
  }
}

// ---------------------------------------------------------------------------------------------
// 4.

TEST_F(FleetTest, CanaryStepsAdvanceExactlyOncePerStep) {
  FleetOptions o;
  o.service_extra =
      "sticky: none\n"
      "watchdog: { enabled: true, window: 3s, min_requests: 5, max_error_rate: 0.05, max_p95: 2s, bake_time: 2s }\n"
      "canary: { steps: [10, 50, 100], interval: 1s }\n";
  start_fleet(o);

  RequestLoop la(proxy("a").port(), 1, Ms(5));
  RequestLoop lb(proxy("b").port(), 1, Ms(5));
  RequestLoop lc(proxy("c").port(), 1, Ms(5));
  const auto t0 = Clock::now();
  const auto started = ctl("a", {"canary", "start", "--steps", "10,50,100", "--interval", "1s"});
  EXPECT_EQ(num(started.at("state").at("weights").at("green")), 10.0) << json::serialize(started);
  const bool promoted = wait_until(
      [&] { return phase("a") == "promoted" && phase("b") == "promoted" && phase("c") == "promoted"; }, Ms(20000),
      Ms(100));
  la.stop();
  lb.stop();
  lc.stop();
  ASSERT_TRUE(promoted) << "phases: a " << phase("a") << ", b " << phase("b") << ", c " << phase("c") << "\n"
                        << join(history_keys(history_json("a")));
  std::cout << "[ fleet ] canary 10 → 50 → 100 → promoted in " << secs(Clock::now() - t0) << " s\n";

  const auto ha = history_json("a");
  for (const std::string i : {"a", "b", "c"}) {
    const auto h = history_json(i);
    const auto canary = entries(h, "canary");
    std::vector<std::string> actions;
    for (const auto& e : canary) actions.push_back(str(e.at("args").as_object(), "action"));
    EXPECT_EQ(actions, (std::vector<std::string>{"start", "advance", "advance", "promote"}))
        << i << ":\n" << join(history_keys(h));
    EXPECT_TRUE(entries(h, "rollback").empty()) << i << ":\n" << join(history_keys(h));
    if (canary.size() == 4) {
      EXPECT_EQ(str(canary[0], "instance"), "a");
      EXPECT_EQ(num(canary[1].at("after").at("green")), 50.0) << json::serialize(canary[1]);
      EXPECT_EQ(num(canary[2].at("after").at("green")), 100.0) << json::serialize(canary[2]);
      for (const auto& e : canary) {
        const auto who = str(e, "instance");
        EXPECT_TRUE(who == "a" || who == "b" || who == "c") << json::serialize(e);
      }
    }
    EXPECT_EQ(history_keys(h), history_keys(ha)) << i << " and a disagree";
    EXPECT_EQ(green_weight(i), 100.0) << i;
  }
  std::string deciders;
  for (const auto& e : entries(ha, "canary")) deciders += " " + str(e.at("args").as_object(), "action") + "@" + str(e, "instance");
  std::cout << "[ fleet ] canary entries:" << deciders << "\n";
}

// ---------------------------------------------------------------------------------------------
// 5.

// `rollback --drain` via a: b applies the rollback from its watch and cuts what it has in flight
// to green as well (a had nothing to cut).
TEST_F(FleetTest, RollbackDrainViaACutsTheRequestInFlightOnB) {
  FleetOptions o;
  o.instances = {"a", "b"};
  o.service_extra = kNoWatchdog;
  start_fleet(o);
  ctl("a", {"switch", "green"});
  ASSERT_TRUE(wait_green({"a", "b"}, 100, Ms(3000)));
  const auto before = green_->stats().requests;
  Client slow(proxy("b").port());
  slow.send(get_request("/slow?delay_ms=8000"));
  ASSERT_TRUE(wait_until([&] { return green_->stats().requests > before; }, Ms(3000)))
      << "the slow request never reached green";

  const auto t0 = Clock::now();
  const auto rb = bgctl("a", {"rollback", "--drain"});
  ASSERT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  EXPECT_TRUE(contains(rb.out, "cut 0 exchanges in flight to green")) << rb.out;
  const auto r = slow.read_response(Ms(4000));
  ASSERT_TRUE(r) << "b did not cut the request: " << slow.last_error();
  EXPECT_EQ(r->status, 503) << r->raw_head;
  EXPECT_LT(Clock::now() - t0, Ms(4000));
  EXPECT_TRUE(proxy("b").process().wait_for_line(
      std::regex(R"(app: rollback --drain by instance a: cut 1 exchanges in flight to green)"), Ms(2000)))
      << log_of("b");
  const auto h = history_json("b");
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(h.back().at("args"), (json::object{{"drain", true}})) << json::serialize(h.back());
}

TEST_F(FleetTest, EtcdLeaderKilledChangesContinue) {
  FleetOptions o;
  o.etcd_members = 3;
  o.service_extra = kNoWatchdog;
  start_fleet(o);

  const auto leader = wait_etcd_leader(Ms(5000));
  ASSERT_TRUE(leader) << "no etcd leader";
  ctl("a", {"split", "--green", "20"});
  ASSERT_TRUE(wait_green({"a", "b", "c"}, 20, Ms(3000)));

  const auto t0 = Clock::now();
  etcd_member(*leader).stop();
  const auto next = wait_etcd_leader(Ms(10000));
  ASSERT_TRUE(next) << "no new leader within 10 s";
  ASSERT_NE(*next, *leader);
  std::cout << "[ fleet ] etcd member " << *leader << " (leader) stopped; member " << *next << " leads after "
            << secs(Clock::now() - t0) << " s\n";

  // The first change after the re-election lands, and the others take it.
  const auto r = bgctl("a", {"split", "--green", "40"});
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_TRUE(wait_green({"a", "b", "c"}, 40, Ms(5000)))
      << "a " << green_weight("a") << " b " << green_weight("b") << " c " << green_weight("c");

  // And a change via b too.
  ctl("b", {"switch", "green"});
  expect_routed_to({"a", "c"}, "green", Ms(5000));
  for (const std::string i : {"a", "b", "c"})
    EXPECT_TRUE(proxy(i).wait_metric("bgproxy_cluster_connected", {}, [](double v) { return v == 1; }, Ms(5000)) == 1.0)
        << i;
}

// ---------------------------------------------------------------------------------------------
// 6.

TEST_F(FleetTest, QuorumLostChangesRefusedTrafficServedLocalRollback) {
  FleetOptions o;
  o.etcd_members = 3;
  o.service_extra = kWatchdog;
  start_fleet(o);
  ctl("a", {"split", "--green", "50"});
  ASSERT_TRUE(wait_green({"a", "b", "c"}, 50, Ms(3000)));

  // Two of three members stopped: no quorum.
  etcd_member(1).stop();
  etcd_member(2).stop();

  const auto refused = bgctl("a", {"split", "--green", "70"});
  EXPECT_EQ(refused.exit_code, 1) << refused.err << refused.out;
  EXPECT_TRUE(contains(refused.err, "cluster store unreachable")) << refused.err << refused.out;
  EXPECT_EQ(green_weight("a"), 50.0) << "a refused change changed something";
  EXPECT_TRUE(proxy("a").wait_metric("bgproxy_cluster_connected", {}, [](double v) { return v == 0; }, Ms(8000)) == 0.0)
      << "bgproxy_cluster_connected stays 1 without a quorum";
  EXPECT_TRUE(proxy("a").process().wait_for_line(std::regex("cluster: etcd unreachable: "), Ms(1000)))
      << "no 'cluster: etcd unreachable: WHY' line";

  // Traffic is served, read-only commands answer.
  for (const std::string i : {"a", "b", "c"}) {
    for (int k = 0; k < 5; ++k) {
      const auto c = routed_color(i);
      EXPECT_TRUE(c == "blue" || c == "green") << i << " request " << k << " answered by '" << c << "'";
    }
    EXPECT_EQ(bgctl(i, {"history"}).exit_code, 0) << i;
    EXPECT_EQ(bgctl(i, {"health"}).exit_code, 0) << i;
  }

  // --local: this instance alone, recorded as local.
  const auto local = bgctl("a", {"--local", "split", "--green", "60"});
  ASSERT_EQ(local.exit_code, 0) << local.err << local.out;
  EXPECT_EQ(green_weight("a"), 60.0);
  EXPECT_EQ(green_weight("b"), 50.0);
  {
    const auto h = history_json("a");
    ASSERT_FALSE(h.empty());
    const auto& e = h.back().as_object();
    EXPECT_EQ(str(e, "command"), "split") << json::serialize(e);
    EXPECT_TRUE(e.contains("local") && e.at("local").as_bool()) << json::serialize(e);
    EXPECT_EQ(str(e, "instance"), "a") << json::serialize(e);
  }

  // The watchdog of a still rolls back on its own figures.
  green_->knobs("error_rate=1");
  const auto statuses = send_forced("a", "green", 40);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 500), 40);
  ASSERT_TRUE(wait_until([&] { return phase("a") == "rolled_back"; }, Ms(8000), Ms(100)))
      << "no local rollback; a's status: " << json::serialize(service_status("a"));
  EXPECT_EQ(green_weight("a"), 0.0);
  EXPECT_EQ(green_weight("b"), 50.0) << "b cannot know yet";
  for (int k = 0; k < 10; ++k) ASSERT_EQ(routed_color("a"), "blue");

  // Quorum back: a's rollback reaches etcd and the others.
  const auto t0 = Clock::now();
  etcd_member(1).start();
  etcd_member(2).start();
  const bool reconciled = wait_until(
      [&] {
        return phase("b") == "rolled_back" && phase("c") == "rolled_back" && green_weight("b") == 0 &&
               green_weight("c") == 0;
      },
      Ms(15000), Ms(100));
  EXPECT_TRUE(reconciled) << "b: " << phase("b") << " " << green_weight("b") << ", c: " << phase("c") << " "
                          << green_weight("c");
  std::cout << "[ fleet ] quorum back; b and c rolled back " << secs(Clock::now() - t0) << " s later\n";
  for (const std::string i : {"b", "c"}) {
    const auto rb = entries(history_json(i), "rollback");
    ASSERT_EQ(rb.size(), 1u) << i << ":\n" << join(history_keys(history_json(i)));
    EXPECT_EQ(str(rb.front(), "instance"), "a") << json::serialize(rb.front());
    for (int k = 0; k < 5; ++k) EXPECT_EQ(routed_color(i), "blue") << i;
  }
  EXPECT_TRUE(proxy("a").wait_metric("bgproxy_cluster_connected", {}, [](double v) { return v == 1; }, Ms(5000)) == 1.0);
  // Changes are accepted again. A server's admin state, not a weight: green still fails, and the
  // fleet's watchdog would rightly roll a new split toward it back before every member showed it.
  const auto green_address = green_->address();
  const auto again = bgctl("b", {"server", "disable", green_address});
  EXPECT_EQ(again.exit_code, 0) << again.err << again.out;
  const auto disabled_on = [&](const std::string& instance) {
    const auto svc = service_status(instance);
    for (const auto& server : svc.at("colors").at("green").at("servers").as_array()) {
      const auto& o = server.as_object();
      if (str(o, "address") == green_address) return str(o, "state") == "disabled";
    }
    return false;
  };
  EXPECT_TRUE(wait_until([&] { return disabled_on("a") && disabled_on("b") && disabled_on("c"); }, Ms(3000), Ms(50)))
      << json::serialize(service_status("c"));
}

// ---------------------------------------------------------------------------------------------
// 7.

TEST_F(FleetTest, RestartWhileEtcdDownStartsFromStateFile) {
  FleetOptions o;
  o.instances = {"a", "b"};
  o.service_extra = kNoWatchdog;
  start_fleet(o);

  // A change via b, which a applies from its watch (and must keep in its state file).
  ctl("b", {"switch", "green"});
  ASSERT_TRUE(wait_until([&] { return routed_color("a") == "green"; }, Ms(3000)));

  stop_instance("a", /*graceful=*/true);
  single_->stop();
  Proxy& a = start_instance("a");  // throws unless it comes up (ready line)
  EXPECT_EQ(green_weight("a"), 100.0);
  for (int k = 0; k < 10; ++k) ASSERT_EQ(routed_color("a"), "green") << "request " << k;
  const auto st = status_json("a");
  ASSERT_TRUE(st.contains("fleet")) << json::serialize(st);
  EXPECT_FALSE(st.at("fleet").at("connected").as_bool()) << json::serialize(st.at("fleet"));
  EXPECT_EQ(metric("a", "bgproxy_cluster_connected"), 0.0);
  const auto refused = bgctl("a", {"switch", "blue"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(contains(refused.err, "cluster store unreachable")) << refused.err;
  EXPECT_EQ(routed_color("b"), "green");

  // etcd back: a joins, and changes flow again both ways.
  const auto t0 = Clock::now();
  single_->start();
  ASSERT_TRUE(wait_members("a", {"a", "b"}, Ms(15000))) << json::serialize(status_json("a"));
  std::cout << "[ fleet ] a joined " << secs(Clock::now() - t0) << " s after etcd came back\n";
  EXPECT_TRUE(a.process().wait_for_line(std::regex(R"(cluster: connected to etcd at )"), Ms(1000)));
  ctl("a", {"switch", "blue"});
  EXPECT_TRUE(wait_until([&] { return routed_color("b") == "blue"; }, Ms(3000)));
  ctl("b", {"split", "--green", "25"});
  EXPECT_TRUE(wait_green({"a"}, 25, Ms(3000)));
}

// ---------------------------------------------------------------------------------------------
// 8.

TEST_F(FleetTest, CompactedWatchRevisionResyncs) {
  FleetOptions o;
  o.etcd_members = 3;
  o.instances = {"a", "b"};
  o.endpoints_of = {{"a", {0}}, {"b", {2}}};  // b reaches etcd through member 2 alone
  o.service_extra = kNoWatchdog;
  start_fleet(o);
  ctl("a", {"split", "--green", "10"});
  ASSERT_TRUE(wait_green({"b"}, 10, Ms(3000)));

  // b is cut off while the store moves on and is compacted.
  etcd_member(2).stop();
  for (int k = 1; k <= 20; ++k) ctl("a", {"split", "--green", std::to_string(10 + k)});
  const std::int64_t rev = fleet_revision(status_json("a"));
  etcd_member(0).etcdctl_ok({"compact", std::to_string(rev)});
  EXPECT_EQ(green_weight("b"), 10.0);

  const auto t0 = Clock::now();
  etcd_member(2).start();
  EXPECT_TRUE(wait_green({"b"}, 30, Ms(15000))) << "b: " << green_weight("b");
  std::cout << "[ fleet ] b converged " << secs(Clock::now() - t0) << " s after its member came back\n";
  EXPECT_TRUE(wait_until([&] { return fleet_revision(status_json("b")) == rev; }, Ms(3000)))
      << "b routes by revision " << fleet_revision(status_json("b")) << ", a by " << rev;
  std::cout << "[ fleet ] b's log "
            << (contains(log_of("b"), "compacted") ? "mentions" : "does not mention")
            << " the compacted revision\n";
  const auto splits = entries(history_json("b"), "split");
  ASSERT_FALSE(splits.empty());
  EXPECT_EQ(num(splits.back().at("args").at("green")), 30.0);
  // And it follows the watch again afterwards.
  ctl("a", {"split", "--green", "5"});
  EXPECT_TRUE(wait_green({"b"}, 5, Ms(3000)));
}

// ---------------------------------------------------------------------------------------------
// 9.

TEST_F(FleetTest, KilledInstanceLeavesMembersWithinLeaseTtl) {
  FleetOptions o;
  o.lease_ttl = "2s";
  o.service_extra = kNoWatchdog;
  start_fleet(o);
  EXPECT_TRUE(proxy("a").wait_metric("bgproxy_cluster_members", {}, [](double v) { return v == 3; }, Ms(3000)) == 3.0);

  const auto t0 = Clock::now();
  stop_instance("c");  // kill -9: no lease revoke
  ASSERT_TRUE(wait_members("a", {"a", "b"}, Ms(4000)))
      << "c still a member of a's fleet 4 s (lease_ttl 2s + 2 s) after kill -9: "
      << json::serialize(status_json("a").at("fleet"));
  const double took = secs(Clock::now() - t0);
  std::cout << "[ fleet ] c left the members " << took << " s after kill -9 (lease_ttl 2s)\n";
  EXPECT_TRUE(wait_members("b", {"a", "b"}, Ms(1000)));
  EXPECT_TRUE(proxy("a").wait_metric("bgproxy_cluster_members", {}, [](double v) { return v == 2; }, Ms(2000)) == 2.0);
  const auto keys = etcd_member(0).etcdctl_ok({"get", "--prefix", "--keys-only", options_.prefix + "/members/"});
  EXPECT_FALSE(contains(keys, "/members/c")) << keys;

  // Started again, it joins again.
  start_instance("c");
  EXPECT_TRUE(wait_members("a", {"a", "b", "c"}, Ms(5000)));
}

}  // namespace
}  // namespace bgtest::fleet
