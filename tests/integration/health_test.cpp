// Issue 4 acceptance (SPEC §4 failover, §5 health checks, §9 metrics): detection and recovery
// times of active checks, failover to the other color, a backend killed under traffic (passive
// ejection before active detection), health-aware switch refusal, `bgctl health` and the health
// metrics, start-up panic mode, and the CPU cost of checking 50 servers per color.
//
// Every wait is bounded and synchronised on an event (a log line, a metric, a bgctl answer);
// sleeps only pace request loops or define a measurement window.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bgtest {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using Labels = std::map<std::string, std::string>;

const char* bgctl_bin() { return BGCTL_BIN; }

double ms_since(Clock::time_point t0, Clock::time_point t1) {
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

/// The address with its dots escaped, for use inside a std::regex.
std::string re_escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '.' || c == '(' || c == ')' || c == '[' || c == ']' || c == '*' || c == '+' ||
        c == '?' || c == '\\' || c == '|' || c == '^' || c == '$' || c == '{' || c == '}')
      r += '\\';
    r += c;
  }
  return r;
}

/// Complete lines of `text` matching `re`.
std::size_t count_lines(const std::string& text, const std::regex& re) {
  std::size_t n = 0, start = 0;
  for (;;) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) break;  // a partial line may still grow
    if (std::regex_search(text.begin() + static_cast<std::ptrdiff_t>(start),
                          text.begin() + static_cast<std::ptrdiff_t>(nl), re))
      ++n;
    start = nl + 1;
  }
  return n;
}

/// Waits until at least `n` complete stderr lines of `p` match `re`; returns when that was first
/// seen (polling every 5 ms), nullopt on timeout.
std::optional<Clock::time_point> wait_for_count(Process& p, const std::regex& re, std::size_t n,
                                                Ms timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (count_lines(p.stderr_text(), re) >= n) return Clock::now();
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(Ms(5));
  }
}

/// utime + stime of a /proc stat file, in seconds; nullopt if unreadable.
std::optional<double> cpu_seconds(const fs::path& stat_file, std::string* comm = nullptr) {
  std::string text;
  try {
    text = read_file(stat_file);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::size_t open = text.find('('), close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  if (comm) *comm = text.substr(open + 1, close - open - 1);
  std::istringstream is(text.substr(close + 1));
  // Fields after the comm: 3 state, 4 ppid, ... 14 utime, 15 stime (1-based over the whole line).
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && (is >> field); ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  if (!is) return std::nullopt;
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

class HealthTest : public IntegrationTest {
protected:
  /// A fast active check: 200 ms interval, down after 3 failures, up after 2 successes.
  static constexpr int kInterval = 200, kRise = 2, kFall = 3;
  static std::string fast_check(int passive = 5) {
    return "health_check: { path: /health, interval: " + std::to_string(kInterval) +
           "ms, timeout: 100ms, rise: " + std::to_string(kRise) + ", fall: " + std::to_string(kFall) +
           ", passive_failures: " + std::to_string(passive) + " }\n";
  }

  Proxy& start(ProxyConfig cfg) {
    cfg.health_check = true;
    Proxy& p = start_proxy(std::move(cfg));
    socket_ = (dir_ / "control-0.sock").string();
    return p;
  }

  CommandResult bgctl(std::vector<std::string> args, bool json_out = false) {
    std::vector<std::string> argv{bgctl_bin(), "-S", socket_};
    if (json_out) argv.push_back("--json");
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(std::move(argv), dir_.path(), Ms(10000));
  }

  /// The first service of `bgctl --json health`.
  json::object health() {
    auto r = bgctl({"health"}, true);
    if (r.exit_code != 0)
      throw std::runtime_error("bgctl --json health: exit " + std::to_string(r.exit_code) + ": " + r.err);
    auto v = json::parse(r.out);
    if (!v.at("ok").as_bool()) throw std::runtime_error("bgctl --json health not ok: " + r.out);
    return v.at("services").as_array().at(0).as_object();
  }

  /// The server entry of `bgctl --json health` with this address.
  json::object health_of(const std::string& address) {
    auto svc = health();
    for (const auto& s : svc.at("servers").as_array())
      if (s.at("address").as_string() == address) return s.as_object();
    throw std::runtime_error("no server " + address + " in bgctl health: " + json::serialize(svc));
  }

  double green_weight() {
    auto r = bgctl({"status"}, true);
    if (r.exit_code != 0) throw std::runtime_error("bgctl --json status: " + r.err);
    auto v = json::parse(r.out);
    return json::value_to<double>(v.at("services").at(0).at("weights").at("green"));
  }

  static std::regex state_line(const std::string& color, const std::string& address,
                               const std::string& what) {
    return std::regex("server " + color + "/" + re_escape(address) + " " + what);
  }

  /// Waits for the n-th "server COLOR/ADDRESS up:" line.
  std::optional<Clock::time_point> wait_up(Proxy& p, const std::string& color,
                                           const std::string& address, std::size_t n = 1,
                                           Ms timeout = Ms(5000)) {
    return wait_for_count(p.process(), state_line(color, address, "up: "), n, timeout);
  }
  std::optional<Clock::time_point> wait_down(Proxy& p, const std::string& color,
                                             const std::string& address, std::size_t n = 1,
                                             Ms timeout = Ms(5000)) {
    return wait_for_count(p.process(), state_line(color, address, "down: "), n, timeout);
  }

  static double metric_or_zero(Proxy& p, const std::string& name, const Labels& labels) {
    return metric_value(p.metrics(), name, labels).value_or(0.0);
  }

  std::string socket_;
};

// ---------------------------------------------------------------------------------------------
// 1. Detection and recovery times

TEST_F(HealthTest, DetectsFailingServerAndRecoveryWithinBounds) {
  Backend& blue = start_backend("blue");
  Backend& green = start_backend("green");
  ProxyConfig cfg;
  cfg.blue = {blue.address()};
  cfg.green = {green.address()};
  cfg.service_extra = fast_check();
  Proxy& p = start(cfg);
  ASSERT_TRUE(wait_up(p, "green", green.address())) << "green never came up";
  ASSERT_TRUE(wait_up(p, "blue", blue.address())) << "blue never came up";

  const double down_bound = kInterval * kFall + kInterval;  // 800 ms
  const double up_bound = kInterval * kRise + kInterval;    // 600 ms

  auto t0 = Clock::now();
  green.knobs("health_status=503");
  auto down = wait_for_count(p.process(),
                             state_line("green", green.address(),
                                        "down: 3 consecutive failures \\(status 503\\)"),
                             1, Ms(5000));
  ASSERT_TRUE(down) << "no down line for green within 5 s";
  double down_ms = ms_since(t0, *down);
  std::cout << "[ detect ] green down after " << down_ms << " ms (bound " << down_bound << " ms)\n";
  EXPECT_LE(down_ms, down_bound);
  // The line comes once, the state is visible to bgctl.
  auto h = health_of(green.address());
  EXPECT_EQ(h.at("state").as_string(), "down") << json::serialize(h);
  EXPECT_EQ(h.at("color").as_string(), "green");
  EXPECT_GE(h.at("consecutive_failures").to_number<double>(), kFall) << json::serialize(h);

  auto t1 = Clock::now();
  green.knobs("health_status=200");
  auto up = wait_up(p, "green", green.address(), 2);
  ASSERT_TRUE(up) << "green did not come back within 5 s";
  double up_ms = ms_since(t1, *up);
  std::cout << "[ detect ] green up again after " << up_ms << " ms (bound " << up_bound << " ms)\n";
  EXPECT_LE(up_ms, up_bound);
  EXPECT_TRUE(p.process().wait_for_line(
      state_line("green", green.address(), "up: 2 consecutive successes"), Ms(100)));
  EXPECT_EQ(health_of(green.address()).at("state").as_string(), "up");

  // Every state change logged exactly once: up, down, up for green; up for blue.
  auto log = p.process().stderr_text();
  EXPECT_EQ(count_lines(log, state_line("green", green.address(), "down: ")), 1u) << log;
  EXPECT_EQ(count_lines(log, state_line("green", green.address(), "up: ")), 2u) << log;
  EXPECT_EQ(count_lines(log, state_line("blue", blue.address(), "(up|down): ")), 1u) << log;
}

// ---------------------------------------------------------------------------------------------
// 2. Failover of a whole color

TEST_F(HealthTest, FailingGreenFailsOverToBlueWithoutClientErrors) {
  Backend& blue = start_backend("blue");
  Backend& g1 = start_backend("green");
  Backend& g2 = start_backend("green");
  ProxyConfig cfg;
  cfg.blue = {blue.address()};
  cfg.green = {g1.address(), g2.address()};
  cfg.service_extra = fast_check();
  cfg.access_log = (dir_ / "access.log").string();  // kept with the test dir when it fails
  Proxy& p = start(cfg);
  ASSERT_TRUE(wait_up(p, "blue", blue.address()));
  ASSERT_TRUE(wait_up(p, "green", g1.address()));
  ASSERT_TRUE(wait_up(p, "green", g2.address()));

  auto sw = bgctl({"switch", "green"});
  ASSERT_EQ(sw.exit_code, 0) << "switch green while healthy: " << sw.err;
  for (int i = 0; i < 5; ++i) {
    auto r = round_trip(p.port(), get_request("/before"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("X-Backend").value_or("?"), "green") << r->raw_head;
  }
  const Labels from_green{{"service", "app"}, {"from", "green"}};
  EXPECT_EQ(metric_or_zero(p, "bgproxy_failovers_total", from_green), 0.0);

  RequestLoop loop(p.port(), 3, Ms(5));
  // Let traffic flow on green first.
  auto warm_deadline = Clock::now() + Ms(3000);
  while (loop.count() < 30 && Clock::now() < warm_deadline) std::this_thread::sleep_for(Ms(10));

  auto t0 = Clock::now();
  g1.knobs("health_status=503");
  g2.knobs("health_status=503");
  auto d1 = wait_down(p, "green", g1.address());
  auto d2 = wait_down(p, "green", g2.address());
  ASSERT_TRUE(d1 && d2) << "green servers not marked down";
  auto detected = std::max(*d1, *d2);
  std::cout << "[ failover ] both green servers down after " << ms_since(t0, detected) << " ms\n";
  // Keep the loop running well past detection.
  auto after = Clock::now() + Ms(1000);
  while (Clock::now() < after) std::this_thread::sleep_for(Ms(20));
  loop.stop();

  auto all = loop.outcomes();
  std::size_t errors = 0, post = 0, post_blue = 0, pre_green = 0;
  std::vector<std::string> problems;
  const auto settle = detected + Ms(100);  // the snapshot is published right after the log line
  for (const auto& o : all) {
    if (o.status != 200) {
      ++errors;
      if (problems.size() < 10)
        problems.push_back(describe(o) + " started " + std::to_string(ms_since(t0, o.started)) +
                           " ms after the health knob change");
      continue;
    }
    if (o.started < t0 && o.backend == "green") ++pre_green;
    if (o.started >= settle) {
      ++post;
      if (o.backend == "blue" && o.color == "blue") {
        ++post_blue;
      } else if (problems.size() < 10) {
        problems.push_back("after detection: " + describe(o));
      }
    }
  }
  std::cout << "[ failover ] " << all.size() << " requests, " << errors << " errors, " << post
            << " after detection (" << post_blue << " on blue)\n";
  EXPECT_GT(pre_green, 0u) << "traffic was not on green before the failure";
  EXPECT_EQ(errors, 0u);
  ASSERT_GT(post, 20u);
  EXPECT_EQ(post_blue, post);
  for (const auto& pr : problems) ADD_FAILURE() << pr;

  // Every request that should have gone green and went blue is a counted failover.
  auto fo = p.wait_metric("bgproxy_failovers_total", from_green,
                          [&](double v) { return v >= static_cast<double>(post); }, Ms(3000));
  ASSERT_TRUE(fo) << "no bgproxy_failovers_total{from=\"green\"}";
  std::cout << "[ failover ] bgproxy_failovers_total{from=green} = " << *fo << "\n";
  EXPECT_GE(*fo, static_cast<double>(post));
  EXPECT_LE(*fo, static_cast<double>(all.size()));
  EXPECT_EQ(metric_or_zero(p, "bgproxy_failovers_total", {{"service", "app"}, {"from", "blue"}}), 0.0);
}

// ---------------------------------------------------------------------------------------------
// 3. A backend killed outright under traffic

TEST_F(HealthTest, KilledServerIsEjectedPassivelyBeforeActiveChecks) {
  Backend& a = start_backend("blue-a");
  Backend& b = start_backend("blue-b");
  ProxyConfig cfg;
  cfg.blue = {a.address(), b.address()};
  // Active detection would take at least 2 further intervals after the first failing check:
  // >= 3.6 s with jitter, typically ~6 s.
  cfg.service_extra =
      "health_check: { path: /health, interval: 2s, timeout: 500ms, rise: 1, fall: 3, "
      "passive_failures: 5 }\n";
  Proxy& p = start(cfg);
  ASSERT_TRUE(wait_up(p, "blue", a.address()));
  ASSERT_TRUE(wait_up(p, "blue", b.address()));

  RequestLoop loop(p.port(), 4, Ms(2));
  auto warm_deadline = Clock::now() + Ms(3000);
  for (;;) {
    auto o = loop.outcomes();
    bool seen_a = std::any_of(o.begin(), o.end(), [](const Outcome& x) { return x.backend == "blue-a"; });
    bool seen_b = std::any_of(o.begin(), o.end(), [](const Outcome& x) { return x.backend == "blue-b"; });
    if ((seen_a && seen_b && o.size() >= 40) || Clock::now() >= warm_deadline) break;
    std::this_thread::sleep_for(Ms(10));
  }

  auto killed = Clock::now();
  b.process().signal(SIGKILL);
  auto down = wait_down(p, "blue", b.address(), 1, Ms(8000));
  auto after = Clock::now() + Ms(1000);
  while (Clock::now() < after) std::this_thread::sleep_for(Ms(20));
  loop.stop();

  ASSERT_TRUE(down) << "killed server never marked down";
  double down_ms = ms_since(killed, *down);
  auto log = p.process().stderr_text();
  bool passive = count_lines(log, state_line("blue", b.address(), "down: passive: 5 consecutive failures")) == 1;
  std::cout << "[ kill ] blue-b down after " << down_ms << " ms ("
            << (passive ? "passive" : "not passive") << ")\n";
  EXPECT_TRUE(passive) << "the first down line is not the passive one:\n" << log;
  EXPECT_LT(down_ms, 2000.0) << "passive ejection must beat active detection (>= 3.6 s)";

  auto all = loop.outcomes();
  std::size_t before = 0, failures = 0, post = 0, post_a = 0;
  std::vector<std::string> problems;
  for (const auto& o : all) {
    if (o.started < killed) {
      ++before;
      continue;
    }
    if (o.status < 200 || o.status > 299) {
      ++failures;
      problems.push_back(describe(o));
    }
    if (o.started >= *down + Ms(100)) {
      ++post;
      if (o.status == 200 && o.backend == "blue-a") ++post_a;
    }
  }
  std::cout << "[ kill ] " << before << " requests before the kill, " << all.size() - before
            << " after: " << failures << " non-2xx; " << post_a << "/" << post
            << " after ejection served by the survivor\n";
  for (const auto& pr : problems) std::cout << "[ kill ]   failed: " << pr << "\n";
  EXPECT_GT(before, 0u);
  EXPECT_LE(failures, 4u) << "more than the in-flight requests failed";
  ASSERT_GT(post, 20u);
  EXPECT_EQ(post_a, post);
  auto up_b = metric_value(p.metrics(), "bgproxy_server_up",
                           {{"service", "app"}, {"color", "blue"}, {"server", b.address()}});
  EXPECT_EQ(up_b.value_or(-1), 0.0);
}

// ---------------------------------------------------------------------------------------------
// 4. Health-aware switching

TEST_F(HealthTest, SwitchTowardDownColorIsRefusedUnlessForced) {
  Backend& blue = start_backend("blue");
  Backend& green = start_backend("green");
  ProxyConfig cfg;
  cfg.blue = {blue.address()};
  cfg.green = {green.address()};
  cfg.service_extra = fast_check();
  Proxy& p = start(cfg);
  ASSERT_TRUE(wait_up(p, "blue", blue.address()));
  ASSERT_TRUE(wait_up(p, "green", green.address()));

  green.knobs("health_status=503");
  ASSERT_TRUE(wait_down(p, "green", green.address()));

  auto r = bgctl({"switch", "green"});
  EXPECT_EQ(r.exit_code, 1) << "stdout: " << r.out << "\nstderr: " << r.err;
  EXPECT_NE(r.err.find("green"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no healthy server"), std::string::npos) << r.err;
  EXPECT_EQ(green_weight(), 0.0);
  r = bgctl({"split", "--green", "50"});
  EXPECT_EQ(r.exit_code, 1) << "split toward a down color: " << r.out << r.err;
  EXPECT_NE(r.err.find("green"), std::string::npos) << r.err;
  EXPECT_EQ(green_weight(), 0.0);
  r = bgctl({"canary", "start"});
  EXPECT_EQ(r.exit_code, 1) << "canary start toward a down color: " << r.out << r.err;
  EXPECT_NE(r.err.find("green"), std::string::npos) << r.err;
  EXPECT_EQ(green_weight(), 0.0);

  r = bgctl({"switch", "green", "--force"});
  EXPECT_EQ(r.exit_code, 0) << "stdout: " << r.out << "\nstderr: " << r.err;
  EXPECT_EQ(green_weight(), 100.0);
  // Forced onto a color with no healthy server: requests still fail over to blue.
  for (int i = 0; i < 5; ++i) {
    auto resp = round_trip(p.port(), get_request("/forced"));
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->status, 200);
    EXPECT_EQ(resp->header("X-Backend").value_or("?"), "blue") << resp->raw_head;
  }

  // Blue is healthy: switching back needs no force.
  r = bgctl({"switch", "blue"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(green_weight(), 0.0);
}

// ---------------------------------------------------------------------------------------------
// 5. bgctl health and the health metrics

TEST_F(HealthTest, HealthAnswerAndMetricsMatchServerStates) {
  Backend& blue = start_backend("blue");
  Backend& green = start_backend("green");
  green.knobs("health_status=503");
  ProxyConfig cfg;
  cfg.blue = {blue.address()};
  cfg.green = {green.address()};
  cfg.service_extra = fast_check();
  Proxy& p = start(cfg);
  ASSERT_TRUE(wait_up(p, "blue", blue.address()));

  const Labels blue_l{{"service", "app"}, {"color", "blue"}, {"server", blue.address()}};
  const Labels green_l{{"service", "app"}, {"color", "green"}, {"server", green.address()}};
  auto with = [](Labels l, const std::string& result) {
    l["result"] = result;
    return l;
  };
  // Green has failed at least `fall` checks (it started down and never rose).
  auto gf = p.wait_metric("bgproxy_health_checks_total", with(green_l, "failure"),
                          [](double v) { return v >= kFall; }, Ms(3000));
  ASSERT_TRUE(gf && *gf >= kFall) << "green failure checks not counted";

  auto svc = health();
  EXPECT_EQ(svc.at("name").as_string(), "app");
  EXPECT_TRUE(svc.at("health_check").as_bool()) << json::serialize(svc);
  ASSERT_EQ(svc.at("servers").as_array().size(), 2u) << json::serialize(svc);

  auto hb = health_of(blue.address());
  EXPECT_EQ(hb.at("color").as_string(), "blue");
  EXPECT_EQ(hb.at("state").as_string(), "up") << json::serialize(hb);
  EXPECT_GE(hb.at("consecutive_successes").to_number<double>(), kRise) << json::serialize(hb);
  EXPECT_EQ(hb.at("consecutive_failures").to_number<double>(), 0.0);
  ASSERT_TRUE(hb.contains("since_seconds")) << json::serialize(hb);
  EXPECT_GE(hb.at("since_seconds").to_number<double>(), 0.0);
  ASSERT_TRUE(hb.at("last_check").is_object()) << json::serialize(hb);
  const auto& lb = hb.at("last_check").as_object();
  EXPECT_TRUE(lb.at("ok").as_bool());
  EXPECT_EQ(lb.at("status").to_number<double>(), 200.0);
  EXPECT_GE(lb.at("latency_seconds").to_number<double>(), 0.0);
  EXPECT_LT(lb.at("latency_seconds").to_number<double>(), 0.1) << "latency above the 100 ms timeout";

  auto hg = health_of(green.address());
  EXPECT_EQ(hg.at("color").as_string(), "green");
  EXPECT_EQ(hg.at("state").as_string(), "down") << json::serialize(hg);
  EXPECT_GE(hg.at("consecutive_failures").to_number<double>(), kFall) << json::serialize(hg);
  EXPECT_EQ(hg.at("consecutive_successes").to_number<double>(), 0.0);
  ASSERT_TRUE(hg.at("last_check").is_object()) << json::serialize(hg);
  const auto& lg = hg.at("last_check").as_object();
  EXPECT_FALSE(lg.at("ok").as_bool());
  EXPECT_EQ(lg.at("status").to_number<double>(), 503.0);
  ASSERT_TRUE(lg.contains("error")) << json::serialize(hg);
  EXPECT_NE(std::string(lg.at("error").as_string()).find("503"), std::string::npos);

  auto m = p.metrics();
  EXPECT_EQ(metric_value(m, "bgproxy_server_up", blue_l).value_or(-1), 1.0) << m;
  EXPECT_EQ(metric_value(m, "bgproxy_server_up", green_l).value_or(-1), 0.0) << m;
  double bs0 = metric_value(m, "bgproxy_health_checks_total", with(blue_l, "success")).value_or(-1);
  double gf0 = metric_value(m, "bgproxy_health_checks_total", with(green_l, "failure")).value_or(-1);
  EXPECT_GE(bs0, kRise);
  EXPECT_EQ(metric_value(m, "bgproxy_health_checks_total", with(blue_l, "failure")).value_or(0), 0.0);
  EXPECT_EQ(metric_value(m, "bgproxy_health_checks_total", with(green_l, "success")).value_or(0), 0.0);

  // Counts grow at about one per interval (counters current to within one second).
  auto bs1 = p.wait_metric("bgproxy_health_checks_total", with(blue_l, "success"),
                           [&](double v) { return v >= bs0 + 3; }, Ms(3000));
  auto gf1 = p.wait_metric("bgproxy_health_checks_total", with(green_l, "failure"),
                           [&](double v) { return v >= gf0 + 3; }, Ms(3000));
  EXPECT_GE(bs1.value_or(0), bs0 + 3);
  EXPECT_GE(gf1.value_or(0), gf0 + 3);

  // Green recovers: the answer and the gauge follow.
  green.knobs("health_status=200");
  ASSERT_TRUE(wait_up(p, "green", green.address()));
  EXPECT_EQ(health_of(green.address()).at("state").as_string(), "up");
  auto gu = p.wait_metric("bgproxy_server_up", green_l, [](double v) { return v == 1.0; }, Ms(3000));
  EXPECT_EQ(gu.value_or(-1), 1.0);
}

// ---------------------------------------------------------------------------------------------
// 6. Panic mode

TEST_F(HealthTest, StartupWithEveryServerFailingStillServes) {
  Backend& blue = start_backend("blue");
  Backend& green = start_backend("green");
  blue.knobs("health_status=503");
  green.knobs("health_status=503");
  ProxyConfig cfg;
  cfg.blue = {blue.address()};
  cfg.green = {green.address()};
  cfg.service_extra = fast_check();
  Proxy& p = start(cfg);

  // At once, and again after several intervals of failing checks.
  for (int round = 0; round < 2; ++round) {
    if (round == 1) {
      auto gf = p.wait_metric("bgproxy_health_checks_total",
                              {{"service", "app"}, {"color", "blue"}, {"result", "failure"}},
                              [](double v) { return v >= 2 * kFall; }, Ms(4000));
      ASSERT_GE(gf.value_or(0), 2 * kFall);
    }
    for (int i = 0; i < 10; ++i) {
      std::string why;
      auto r = round_trip(p.port(), get_request("/panic"), Ms(3000), &why);
      ASSERT_TRUE(r) << why;
      EXPECT_EQ(r->status, 200) << "round " << round << ": " << r->raw_head;
      EXPECT_EQ(r->header("X-Backend").value_or("?"), "blue") << r->raw_head;
    }
  }
  auto h = health();
  for (const auto& s : h.at("servers").as_array())
    EXPECT_EQ(s.at("state").as_string(), "down") << json::serialize(s);
}

// The issue asks for panic mode to be logged ("serve rather than 503, logged").
TEST_F(HealthTest, PanicModeIsLogged) {
  Backend& blue = start_backend("blue");
  Backend& green = start_backend("green");
  blue.knobs("health_status=503");
  green.knobs("health_status=503");
  ProxyConfig cfg;
  cfg.blue = {blue.address()};
  cfg.green = {green.address()};
  cfg.service_extra = fast_check();
  Proxy& p = start(cfg);
  auto r = round_trip(p.port(), get_request("/panic"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(p.process().wait_for_line(std::regex("panic", std::regex::icase), Ms(2000)))
      << "no log line mentions panic mode; stderr:\n"
      << p.process().stderr_text();
}

// Passive ejection never leaves a service without servers: the last server answering 5xx keeps
// being served (its own answers relayed), never replaced by the proxy's 503.
TEST_F(HealthTest, PassiveEjectionOfLastServerStillServes) {
  Backend& blue = start_backend("blue");
  ProxyConfig cfg;
  cfg.blue = {blue.address()};  // green: a refused port, never up
  cfg.service_extra = fast_check();
  Proxy& p = start(cfg);
  ASSERT_TRUE(wait_up(p, "blue", blue.address()));
  blue.knobs("status=500");
  std::size_t relayed = 0;
  std::vector<std::string> problems;
  for (int i = 0; i < 40; ++i) {
    auto r = round_trip(p.port(), get_request("/five-hundred"));
    if (r && r->status == 500 && r->header("X-Backend").value_or("") == "blue") {
      ++relayed;
    } else if (problems.size() < 5) {
      problems.push_back(r ? r->raw_head : "no response");
    }
  }
  EXPECT_EQ(relayed, 40u);
  for (const auto& pr : problems) ADD_FAILURE() << pr;
  // Passive ejection did happen (2 workers x 5 failures fit in 40 requests)...
  EXPECT_TRUE(wait_down(p, "blue", blue.address(), 1, Ms(1000)))
      << "no passive ejection after 40 consecutive 5xx";
  // ...and requests are still served by it afterwards.
  auto r = round_trip(p.port(), get_request("/after"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500) << r->raw_head;
  EXPECT_EQ(r->header("X-Backend").value_or("?"), "blue");
}

// ---------------------------------------------------------------------------------------------
// 7. Cost of checking many servers

TEST_F(HealthTest, FiftyServersPerColorCostLittleCpu) {
  constexpr int kPerColor = 50, kReal = 2;
  ProxyConfig cfg;
  std::vector<Backend*> real;
  for (int i = 0; i < kReal; ++i) {
    real.push_back(&start_backend("blue"));
    cfg.blue.push_back(real.back()->address());
    real.push_back(&start_backend("green"));
    cfg.green.push_back(real.back()->address());
  }
  for (int i = kReal; i < kPerColor; ++i) {
    cfg.blue.push_back("127.0.0.1:" + std::to_string(refused_port()));
    cfg.green.push_back("127.0.0.1:" + std::to_string(refused_port()));
  }
  cfg.service_extra = fast_check();
  Proxy& p = start(cfg);
  for (int i = 0; i < kReal; ++i) {
    ASSERT_TRUE(wait_up(p, "blue", cfg.blue[static_cast<std::size_t>(i)]));
    ASSERT_TRUE(wait_up(p, "green", cfg.green[static_cast<std::size_t>(i)]));
  }

  const fs::path proc = "/proc/" + std::to_string(p.pid());
  auto checks = [&] {
    auto m = p.metrics();
    return metric_value(m, "bgproxy_health_checks_total", {{"service", "app"}}).value_or(0);
  };
  auto per_thread = [&] {
    std::map<std::string, double> r;  // "tid comm" -> cpu seconds
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(proc / "task", ec)) {
      std::string comm;
      if (auto s = cpu_seconds(e.path() / "stat", &comm))
        r[e.path().filename().string() + " " + comm] = *s;
    }
    return r;
  };

  double checks0 = checks();
  auto threads0 = per_thread();
  auto cpu0 = cpu_seconds(proc / "stat");
  auto t0 = Clock::now();
  std::this_thread::sleep_for(Ms(5000));
  auto cpu1 = cpu_seconds(proc / "stat");
  auto t1 = Clock::now();
  auto threads1 = per_thread();
  double checks1 = checks();
  ASSERT_TRUE(cpu0 && cpu1) << "cannot read " << (proc / "stat");

  double wall = std::chrono::duration<double>(t1 - t0).count();
  double pct = 100.0 * (*cpu1 - *cpu0) / wall;
  double rate = (checks1 - checks0) / wall;
  std::cout << "health check CPU: " << pct << "% of one core (whole bgproxy process, "
            << 2 * kPerColor << " servers, interval " << kInterval << "ms, " << rate
            << " checks/s over " << wall << " s)\n";
  double busiest = 0;
  for (const auto& [name, s1] : threads1) {
    auto it = threads0.find(name);
    double d = 100.0 * (s1 - (it == threads0.end() ? 0.0 : it->second)) / wall;
    busiest = std::max(busiest, d);
    std::cout << "  thread " << name << ": " << d << "%\n";
  }
  std::cout << "  busiest thread: " << busiest << "% of one core\n";
  // 100 servers every 200 ms = 500 checks/s; make sure the checks really ran.
  EXPECT_GE(rate, 0.6 * 2 * kPerColor * 1000.0 / kInterval) << "checks did not run at the configured rate";
  // The issue asks for < 5 % of one core; assert with margin for a shared CI machine.
  EXPECT_LT(pct, 10.0);
}

}  // namespace
}  // namespace bgtest
