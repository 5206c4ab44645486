// Issue 5 acceptance (SPEC §6 watchdog and canary, §7 status/history, §8 state, §9 metrics),
// against the real bgproxy and the demo backend's fault knobs (error_rate, latency_ms, status):
//   - absolute error-rate and p95 rules roll a bad green back within window + 3 s, after which
//     every request goes to blue and history, status, log and metrics name the figures;
//   - the relative error-rate rule (delta against blue) rolls back 8 % vs 3 % but not 4 % vs 3 %;
//   - below min_requests nothing is decided however bad the requests are ("inconclusive");
//   - a healthy canary walks 10 → 50 → 100, bakes, is promoted; pause holds, resume restarts the
//     interval, abort returns to 0 %;
//   - kill -9 during a canary step resumes that step (its persisted start time); kill -9 after a
//     rollback stays rolled back;
//   - dry run logs "would roll back" and changes nothing.
//
// Test configs use a 3 s window, `sticky: none` and a steady keep-alive request loop. Every wait
// is bounded and synchronised on an event (a bgctl --json status answer, a log line, a metric);
// sleeps only pace the request loop or define an observation period.

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <iostream>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bgtest {
namespace {

namespace json = boost::json;
using Labels = std::map<std::string, std::string>;

const char* bgctl_bin() { return BGCTL_BIN; }

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

/// Complete lines of `text` matching `re`.
std::size_t count_lines(const std::string& text, const std::regex& re) {
  std::size_t n = 0, start = 0;
  for (;;) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) break;
    if (std::regex_search(text.begin() + static_cast<std::ptrdiff_t>(start),
                          text.begin() + static_cast<std::ptrdiff_t>(nl), re))
      ++n;
    start = nl + 1;
  }
  return n;
}

/// Counts of a batch of outcomes.
struct Tally {
  std::size_t total = 0, blue = 0, green = 0, green_500 = 0, failed = 0, non_200 = 0;
  std::string first_problem;
};

Tally tally(const std::vector<Outcome>& v) {
  Tally t;
  for (const auto& o : v) {
    ++t.total;
    if (o.backend == "blue") ++t.blue;
    if (o.backend == "green") ++t.green;
    if (o.backend == "green" && o.status == 500) ++t.green_500;
    if (o.status == 0) ++t.failed;
    if (o.status != 200) {
      ++t.non_200;
      if (t.first_problem.empty())
        t.first_problem = "status " + std::to_string(o.status) + " backend " + o.backend + " " + o.error;
    }
  }
  return t;
}

/// One `bgctl --json status` answer for the service, with the fields the tests look at.
struct Snap {
  Clock::time_point at;  ///< when the answer had arrived
  std::string phase, reason, target;
  std::string verdict;   ///< "" when null
  int step = -1;
  double green = -1, blue = -1;
  json::object svc;

  std::string text() const {
    std::ostringstream s;
    s << "phase=" << phase << " step=" << step << " green=" << green << " target=" << target
      << " reason=\"" << reason << "\" verdict=\"" << verdict << "\"";
    return s.str();
  }
};

double num(const json::value& v) { return v.to_number<double>(); }

/// A history entry's verb and args, to compare in one go: `split {"green":10}` (SPEC §7).
std::string command_and_args(const json::value& entry) {
  return std::string(entry.at("command").as_string()) + " " + json::serialize(entry.at("args"));
}

/// colors.COLOR.requests of a status answer (absent before the first 1 s snapshot): -1 if absent.
double window_requests(const Snap& s, const char* color) {
  const auto* c = s.svc.at("colors").as_object().if_contains(color);
  const auto* r = c && c->is_object() ? c->as_object().if_contains("requests") : nullptr;
  return r ? num(*r) : -1.0;
}

/// Watchdog section of the config: 3 s window and the given overrides.
struct Policy {
  int min_requests = 20;
  std::string max_error_rate = "0.05";
  std::string max_p95 = "1s";
  std::string bake_time = "3s";
  std::string max_error_rate_delta = "0.02";
  bool dry_run = false;

  std::string yaml() const {
    return std::string("watchdog: { ") + (dry_run ? "dry_run: true, " : "") +
           "window: 3s, min_requests: " + std::to_string(min_requests) + ", max_error_rate: " + max_error_rate +
           ", max_p95: " + max_p95 + ", bake_time: " + bake_time +
           ", max_error_rate_delta: " + max_error_rate_delta + ", max_p95_ratio: 1.5 }\n";
  }
};

constexpr double kWindow = 3.0;  // seconds, every test config

class WatchdogTest : public IntegrationTest {
protected:
  /// Blue and green demo backends, `sticky: none`, the given watchdog and canary lines.
  Proxy& start(const Policy& policy, const std::string& canary_interval = "2s") {
    blue_ = &start_backend("blue");
    green_ = &start_backend("green");
    cfg_.blue = {blue_->address()};
    cfg_.green = {green_->address()};
    cfg_.service_extra = "sticky: none\n" + policy.yaml() + "canary: { steps: [10, 50, 100], interval: " +
                         canary_interval + " }\n";
    Proxy& p = start_proxy(cfg_);
    socket_ = (dir_ / "control-0.sock").string();
    return p;
  }

  /// kill -9 the proxy, then start it again with the same config, state file and socket.
  Proxy& kill_and_restart(Proxy& p) {
    p.process().signal(SIGKILL);
    auto code = p.process().wait_exit(Ms(5000));
    if (code != 128 + SIGKILL) throw std::runtime_error("proxy did not die of SIGKILL");
    proxies_.push_back(std::make_unique<Proxy>(cfg_, dir_.path(), 0));
    return *proxies_.back();
  }

  CommandResult bgctl(std::vector<std::string> args, bool json_out = false) {
    std::vector<std::string> argv{bgctl_bin(), "-S", socket_};
    if (json_out) argv.push_back("--json");
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(std::move(argv), dir_.path(), Ms(10000));
  }

  /// `bgctl --json ARGS`, which must exit 0 with ok:true.
  json::object ctl(std::vector<std::string> args) {
    std::string shown;
    for (const auto& a : args) shown += " " + a;
    auto r = bgctl(args, true);
    if (r.exit_code != 0)
      throw std::runtime_error("bgctl" + shown + ": exit " + std::to_string(r.exit_code) + ": " + r.err + r.out);
    auto v = json::parse(r.out);
    if (!v.is_object() || !v.at("ok").as_bool()) throw std::runtime_error("bgctl" + shown + " not ok: " + r.out);
    return v.as_object();
  }

  Snap snap() {
    auto v = ctl({"status"});
    Snap s;
    s.at = Clock::now();
    s.svc = v.at("services").as_array().at(0).as_object();
    s.phase = std::string(s.svc.at("phase").as_string());
    s.reason = s.svc.at("reason").is_string() ? std::string(s.svc.at("reason").as_string()) : "";
    s.target = s.svc.at("target").is_string() ? std::string(s.svc.at("target").as_string()) : "";
    s.step = static_cast<int>(num(s.svc.at("step")));
    s.green = num(s.svc.at("weights").at("green"));
    s.blue = num(s.svc.at("weights").at("blue"));
    const auto& verdict = s.svc.at("watchdog").at("verdict");
    s.verdict = verdict.is_string() ? std::string(verdict.as_string()) : "";
    return s;
  }

  /// Polls status every `every` until `pred` holds; nullopt (with the last answer in `last`) on
  /// timeout.
  std::optional<Snap> wait_for(const std::function<bool(const Snap&)>& pred, Ms timeout, Snap* last = nullptr,
                               Ms every = Ms(100)) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      Snap s = snap();
      if (pred(s)) return s;
      if (last) *last = s;
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(every);
    }
  }

  /// Status answers every `every` for `period`.
  std::vector<Snap> observe(Ms period, Ms every = Ms(200)) {
    std::vector<Snap> r;
    auto end = Clock::now() + period;
    while (Clock::now() < end) {
      r.push_back(snap());
      std::this_thread::sleep_for(every);
    }
    r.push_back(snap());
    return r;
  }

  json::array history() { return ctl({"history", "--limit", "100"}).at("history").as_array(); }

  /// Waits for a status whose watchdog verdict passes (a conclusive evaluation of a healthy
  /// target), so the fault injected next is the only change.
  Snap wait_pass(Ms timeout = Ms(8000)) {
    Snap last;
    auto s = wait_for([](const Snap& x) { return starts_with(x.verdict, "pass: "); }, timeout, &last);
    if (!s) throw std::runtime_error("no passing verdict within the timeout; last status: " + last.text());
    return *s;
  }

  static double metric(Proxy& p, const std::string& name, const Labels& labels) {
    return metric_value(p.metrics(), name, labels).value_or(-1.0);
  }

  ProxyConfig cfg_;
  Backend* blue_ = nullptr;
  Backend* green_ = nullptr;
  std::string socket_;
};

class WatchdogRollbackTest : public WatchdogTest {};
class WatchdogCanaryTest : public WatchdogTest {};
class WatchdogRestartTest : public WatchdogTest {};
class WatchdogDryRunTest : public WatchdogTest {};

const std::regex kRollbackLine(R"(watchdog: rollback app green: )");
const std::regex kErrorRateReason(R"(^watchdog: error_rate (\d\.\d{3}) > 0\.05 \(n=(\d+), window 3s\)$)");

// ---------------------------------------------------------------------------------------------
// 1. Absolute error rate: green at 50 % starts answering 30 % 500s.

TEST_F(WatchdogRollbackTest, ErrorRateRollsGreenBackWithinWindowPlus3s) {
  Proxy& p = start(Policy{});
  RequestLoop loop(p.port(), 6);
  ctl({"split", "--green", "50"});
  Snap healthy = wait_pass();
  EXPECT_EQ(healthy.phase, "canary") << healthy.text();
  EXPECT_EQ(healthy.target, "green") << healthy.text();
  EXPECT_EQ(healthy.green, 50.0);

  const auto t_fault = Clock::now();
  green_->knobs("error_rate=0.3");
  Snap last;
  auto rb = wait_for([](const Snap& s) { return s.phase == "rolled_back"; }, Ms(15000), &last);
  ASSERT_TRUE(rb) << "no rollback within 15 s of the fault; last status: " << last.text();
  const double delay = secs(rb->at - t_fault);
  std::cout << "[ watchdog ] error-rate rollback " << delay << " s after the fault (bound "
            << kWindow + 3 << " s): " << rb->reason << "\n";
  EXPECT_LE(delay, kWindow + 3);
  EXPECT_EQ(rb->green, 0.0) << rb->text();
  EXPECT_EQ(rb->blue, 100.0) << rb->text();
  EXPECT_EQ(num(rb->svc.at("stable").at("green")), 0.0);

  // Status, history and the log name the error rate and n.
  std::smatch m;
  ASSERT_TRUE(std::regex_match(rb->reason, m, kErrorRateReason)) << rb->reason;
  const double rate = std::stod(m[1]);
  const long n = std::stol(m[2]);
  EXPECT_GT(rate, 0.05);
  EXPECT_LE(rate, 0.31);
  EXPECT_GE(n, 20);
  auto h = history();
  ASSERT_FALSE(h.empty());
  const auto& entry = h.back().as_object();
  EXPECT_EQ(command_and_args(entry), "rollback {}") << json::serialize(entry);
  EXPECT_EQ(entry.at("reason").as_string(), rb->reason) << json::serialize(entry);
  EXPECT_EQ(num(entry.at("before").at("green")), 50.0) << json::serialize(entry);
  EXPECT_EQ(num(entry.at("after").at("green")), 0.0) << json::serialize(entry);
  EXPECT_TRUE(p.process().wait_for_line(
      std::regex(R"(watchdog: rollback app green: error_rate \d\.\d{3} > 0\.05 \(n=\d+, window 3s\))"), Ms(2000)))
      << "no warn line with the figures";
  EXPECT_EQ(metric(p, "bgproxy_rollbacks_total", {{"service", "app"}, {"reason", "watchdog"}}), 1.0);
  EXPECT_EQ(metric(p, "bgproxy_rollbacks_total", {{"service", "app"}, {"reason", "manual"}}), 0.0);
  // No health-triggered rollback exists, so no series that would always read 0 (issue 11).
  EXPECT_EQ(metric(p, "bgproxy_rollbacks_total", {{"service", "app"}, {"reason", "health"}}), -1.0);
  EXPECT_EQ(metric(p, "bgproxy_rollout_phase", {{"service", "app"}, {"phase", "rolled_back"}}), 1.0);
  EXPECT_EQ(metric(p, "bgproxy_weight", {{"service", "app"}, {"color", "green"}}), 0.0);

  // Every later request goes to blue (200 ms allowed for the table to reach every worker), and
  // nothing moves by itself afterwards.
  const auto t_after = rb->at + Ms(200);
  auto later = observe(Ms(2000));
  for (const auto& s : later) {
    EXPECT_EQ(s.phase, "rolled_back") << s.text();
    EXPECT_EQ(s.green, 0.0) << s.text();
  }
  loop.stop();
  Tally t = tally(loop.since(t_after));
  std::cout << "[ watchdog ] after the rollback: " << t.total << " requests, " << t.blue << " blue, " << t.green
            << " green\n";
  EXPECT_GE(t.total, 50u) << "too little traffic to judge routing";
  EXPECT_EQ(t.green, 0u) << "requests reached green after the rollback";
  EXPECT_EQ(t.non_200, 0u) << t.first_problem;
  EXPECT_EQ(count_lines(p.process().stderr_text(), kRollbackLine), 1u);
}

// ---------------------------------------------------------------------------------------------
// 2. Absolute p95: green at 20 % becomes 1.5 s slower than max_p95 1s allows.

TEST_F(WatchdogRollbackTest, P95RollsGreenBackWithinWindowPlus3s) {
  Policy policy;
  policy.min_requests = 5;  // slow requests are few: 16 connections give green ~10/s
  Proxy& p = start(policy);
  RequestLoop loop(p.port(), 16, Ms(5));
  ctl({"split", "--green", "20"});
  wait_pass();

  const auto t_fault = Clock::now();
  green_->knobs("latency_ms=1500");
  Snap last;
  auto rb = wait_for([](const Snap& s) { return s.phase == "rolled_back"; }, Ms(15000), &last);
  green_->knobs("latency_ms=0");  // lets the loop stop quickly whatever happened
  ASSERT_TRUE(rb) << "no rollback within 15 s of the fault; last status: " << last.text();
  const double delay = secs(rb->at - t_fault);
  std::cout << "[ watchdog ] p95 rollback " << delay << " s after the fault (bound " << kWindow + 3
            << " s): " << rb->reason << "\n";
  EXPECT_LE(delay, kWindow + 3);
  EXPECT_EQ(rb->green, 0.0) << rb->text();
  std::smatch m;
  ASSERT_TRUE(std::regex_match(rb->reason, m,
                               std::regex(R"(^watchdog: p95 (\d+\.\d{3})s > 1s \(n=(\d+), window 3s\)$)")))
      << rb->reason;
  EXPECT_GT(std::stod(m[1]), 1.0);
  EXPECT_LT(std::stod(m[1]), 2.5);
  EXPECT_GE(std::stol(m[2]), 5);
  EXPECT_EQ(history().back().at("reason").as_string(), rb->reason);
  EXPECT_EQ(metric(p, "bgproxy_rollbacks_total", {{"service", "app"}, {"reason", "watchdog"}}), 1.0);
  EXPECT_TRUE(p.process().wait_for_line(std::regex(R"(watchdog: rollback app green: p95 \d+\.\d{3}s > 1s)"),
                                        Ms(2000)));
  loop.stop();
}

// ---------------------------------------------------------------------------------------------
// 3. Relative rule: green's error rate against blue's. Both colors need min_requests; 300 keeps
// the deterministic error draws within 1/300 of the set rate in either color.

TEST_F(WatchdogRollbackTest, ErrorRateDeltaAgainstBlueRollsBack) {
  Policy policy;
  policy.min_requests = 300;
  policy.max_error_rate = "0.10";
  policy.max_error_rate_delta = "0.02";
  Proxy& p = start(policy);
  blue_->knobs("error_rate=0.03");
  green_->knobs("error_rate=0.08");
  RequestLoop loop(p.port(), 8, Ms(2));
  Snap last;
  ASSERT_TRUE(wait_for([](const Snap& s) { return window_requests(s, "blue") >= 650; },
                       Ms(8000), &last))
      << "the loop does not reach 650 requests in a 3 s window; status: " << json::serialize(last.svc);

  const auto t0 = Clock::now();
  ctl({"split", "--green", "50"});
  auto rb = wait_for([](const Snap& s) { return s.phase == "rolled_back"; }, Ms(15000), &last);
  ASSERT_TRUE(rb) << "no rollback within 15 s; last status: " << last.text();
  const double delay = secs(rb->at - t0);
  std::cout << "[ watchdog ] delta rollback " << delay << " s after the split: " << rb->reason << "\n";
  EXPECT_LE(delay, kWindow + 3);
  EXPECT_EQ(rb->green, 0.0);
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      rb->reason, m,
      std::regex(R"(^watchdog: error_rate (\d\.\d{3}) exceeds blue's (\d\.\d{3}) by more than 0\.02 \(n=(\d+), window 3s\)$)")))
      << rb->reason;
  EXPECT_NEAR(std::stod(m[1]), 0.08, 0.01);
  EXPECT_NEAR(std::stod(m[2]), 0.03, 0.01);
  EXPECT_GE(std::stol(m[3]), 300);
  EXPECT_EQ(metric(p, "bgproxy_rollbacks_total", {{"service", "app"}, {"reason", "watchdog"}}), 1.0);
  loop.stop();
}

TEST_F(WatchdogRollbackTest, ErrorRateWithinDeltaOfBlueIsNotRolledBack) {
  Policy policy;
  policy.min_requests = 300;
  policy.max_error_rate = "0.10";
  policy.max_error_rate_delta = "0.02";
  Proxy& p = start(policy);
  blue_->knobs("error_rate=0.03");
  green_->knobs("error_rate=0.04");
  RequestLoop loop(p.port(), 8, Ms(2));
  ctl({"split", "--green", "50"});
  Snap first = wait_pass(Ms(10000));  // conclusive: both colors have min_requests

  // Over more than two further windows: always a pass or (if traffic dips) inconclusive, never a
  // rollback.
  auto seen = observe(Ms(7000), Ms(250));
  std::size_t passes = 0;
  double green_rate = 0, blue_rate = 0;
  for (const auto& s : seen) {
    ASSERT_EQ(s.phase, "canary") << s.text();
    ASSERT_EQ(s.green, 50.0) << s.text();
    EXPECT_TRUE(starts_with(s.verdict, "pass: ") || starts_with(s.verdict, "inconclusive: ")) << s.text();
    if (starts_with(s.verdict, "pass: ")) {
      ++passes;
      green_rate = num(s.svc.at("colors").at("green").at("error_rate"));
      blue_rate = num(s.svc.at("colors").at("blue").at("error_rate"));
    }
  }
  std::cout << "[ watchdog ] 4 % vs 3 %: " << passes << " of " << seen.size()
            << " status samples passed; last green " << green_rate << " blue " << blue_rate << " ("
            << first.verdict << ")\n";
  EXPECT_GE(passes * 2, seen.size()) << "the watchdog was mostly inconclusive: too little traffic";
  EXPECT_NEAR(green_rate, 0.04, 0.005);
  EXPECT_NEAR(blue_rate, 0.03, 0.005);
  EXPECT_EQ(metric(p, "bgproxy_rollbacks_total", {{"service", "app"}, {"reason", "watchdog"}}), 0.0);
  EXPECT_EQ(count_lines(p.process().stderr_text(), kRollbackLine), 0u);
  loop.stop();
}

// ---------------------------------------------------------------------------------------------
// 4. Below min_requests nothing is decided.

TEST_F(WatchdogRollbackTest, BelowMinRequestsNothingIsDecidedHoweverBad) {
  Policy policy;
  policy.min_requests = 100000;  // green gets a few hundred per window here
  Proxy& p = start(policy);
  green_->knobs("status=500");
  RequestLoop loop(p.port(), 6);
  const auto t0 = Clock::now();
  ctl({"split", "--green", "10"});

  auto seen = observe(Ms(static_cast<int>(2.5 * kWindow * 1000)), Ms(250));  // > 2 windows
  std::size_t verdicts = 0;
  for (const auto& s : seen) {
    ASSERT_EQ(s.phase, "canary") << s.text();
    ASSERT_EQ(s.green, 10.0) << s.text();
    if (s.verdict.empty()) continue;
    ++verdicts;
    EXPECT_TRUE(std::regex_match(s.verdict,
                                 std::regex(R"(^inconclusive: \d+ requests < min_requests 100000 \(window 3s\)$)")))
        << s.text();
  }
  EXPECT_GE(verdicts, seen.size() / 2) << "status shows no verdict while green is under watch";
  const Snap& end = seen.back();
  const double green_error_rate = num(end.svc.at("colors").at("green").at("error_rate"));
  const double green_requests = num(end.svc.at("colors").at("green").at("requests"));
  loop.stop();
  Tally t = tally(loop.since(t0));
  std::cout << "[ watchdog ] below min_requests: green answered " << t.green_500 << " 500s of " << t.green
            << "; window " << green_requests << " requests, error_rate " << green_error_rate << ": "
            << end.verdict << "\n";
  EXPECT_GE(t.green_500, 20u) << "green got too few requests to show anything";
  EXPECT_EQ(t.green_500, t.green);
  EXPECT_GT(green_requests, 0.0);
  EXPECT_EQ(green_error_rate, 1.0) << json::serialize(end.svc);
  EXPECT_EQ(metric(p, "bgproxy_rollbacks_total", {{"service", "app"}, {"reason", "watchdog"}}), 0.0);
  EXPECT_EQ(count_lines(p.process().stderr_text(), kRollbackLine), 0u);
  EXPECT_EQ(command_and_args(history().back()), R"(split {"green":10})");
}

// ---------------------------------------------------------------------------------------------
// 5. Canary: 10 → 50 → 100, baking, promoted; pause, resume, abort.

TEST_F(WatchdogCanaryTest, HealthyGreenWalksStepsBakesAndIsPromoted) {
  Proxy& p = start(Policy{});
  RequestLoop loop(p.port(), 6);
  const auto history_before = history().size();
  const auto t_start = Clock::now();
  auto started = ctl({"canary", "start", "--steps", "10,50,100", "--interval", "2s"});
  const auto& st = started.at("state");
  EXPECT_EQ(st.at("phase").as_string(), "canary") << json::serialize(st);
  EXPECT_EQ(num(st.at("weights").at("green")), 10.0) << json::serialize(st);
  EXPECT_EQ(num(st.at("canary").at("interval_seconds")), 2.0) << json::serialize(st);
  const auto& steps = st.at("canary").at("steps").as_array();
  ASSERT_EQ(steps.size(), 3u) << json::serialize(st);
  EXPECT_EQ(num(steps[0]), 10.0);
  EXPECT_EQ(num(steps[1]), 50.0);
  EXPECT_EQ(num(steps[2]), 100.0);

  // Record every (phase, green) change until promoted.
  struct Change {
    double at;  // seconds since t_start
    Snap s;
  };
  std::vector<Change> changes;
  Snap prev;
  auto deadline = Clock::now() + Ms(20000);
  while (Clock::now() < deadline) {
    Snap s = snap();
    if (changes.empty() || s.phase != prev.phase || s.green != prev.green || s.step != prev.step)
      changes.push_back({secs(s.at - t_start), s});
    prev = s;
    if (s.phase == "promoted") break;
    std::this_thread::sleep_for(Ms(50));
  }
  std::ostringstream seq;
  for (const auto& c : changes) seq << "  +" << c.at << " s " << c.s.text() << "\n";
  std::cout << "[ watchdog ] canary walk:\n" << seq.str();
  ASSERT_EQ(changes.size(), 4u) << seq.str();
  EXPECT_EQ(changes[0].s.phase, "canary");
  EXPECT_EQ(changes[0].s.green, 10.0);
  EXPECT_EQ(changes[0].s.step, 0);
  EXPECT_EQ(changes[1].s.phase, "canary");
  EXPECT_EQ(changes[1].s.green, 50.0);
  EXPECT_EQ(changes[1].s.step, 1);
  EXPECT_EQ(changes[2].s.phase, "baking");
  EXPECT_EQ(changes[2].s.green, 100.0);
  EXPECT_EQ(changes[2].s.step, 2);
  EXPECT_EQ(changes[3].s.phase, "promoted");
  EXPECT_EQ(changes[3].s.green, 100.0);
  // Each step held a full interval (and moved on within two ticks of it); 100 % held bake_time.
  EXPECT_GE(changes[1].at, 2.0 - 0.1) << seq.str();
  EXPECT_LE(changes[1].at, 2.0 + 2.5) << seq.str();
  EXPECT_GE(changes[2].at - changes[1].at, 2.0 - 0.25) << seq.str();
  EXPECT_LE(changes[2].at - changes[1].at, 2.0 + 2.5) << seq.str();
  EXPECT_GE(changes[3].at - changes[2].at, 3.0 - 0.25) << seq.str();
  EXPECT_LE(changes[3].at - changes[2].at, 3.0 + 2.5) << seq.str();

  // History: start, two advances after passing verdicts, promote.
  auto h = history();
  ASSERT_EQ(h.size(), history_before + 4) << json::serialize(h);
  auto cmd = [&](std::size_t i) { return command_and_args(h[history_before + i]); };
  auto why = [&](std::size_t i) { return std::string(h[history_before + i].at("reason").as_string()); };
  EXPECT_EQ(cmd(0), R"(canary {"action":"start","target":"green","steps":[10,50,100],"interval_seconds":2})");
  EXPECT_EQ(cmd(1), R"(canary {"action":"advance"})");
  EXPECT_TRUE(std::regex_match(
      why(1), std::regex(R"(^canary: step 2 of 3 after pass: error_rate 0\.000, p95 \d+\.\d{3}s \(n=\d+, window 3s\)$)")))
      << why(1);
  EXPECT_EQ(cmd(2), R"(canary {"action":"advance"})");
  EXPECT_TRUE(starts_with(why(2), "canary: step 3 of 3 after pass: ")) << why(2);
  EXPECT_EQ(cmd(3), R"(canary {"action":"promote"})");
  EXPECT_TRUE(starts_with(why(3), "canary: ")) << why(3);
  EXPECT_EQ(num(h[history_before + 3].at("after").at("green")), 100.0);

  // Promoted is final: green keeps everything, nothing is rolled back.
  const auto t_after = changes[3].s.at;
  auto later = observe(Ms(1500));
  for (const auto& s : later) EXPECT_EQ(s.phase, "promoted") << s.text();
  loop.stop();
  Tally t = tally(loop.since(t_after));
  EXPECT_GE(t.total, 50u);
  EXPECT_EQ(t.blue, 0u) << "requests reached blue after green was promoted";
  EXPECT_EQ(t.non_200, 0u) << t.first_problem;
  EXPECT_EQ(metric(p, "bgproxy_rollout_phase", {{"service", "app"}, {"phase", "promoted"}}), 1.0);
  EXPECT_EQ(metric(p, "bgproxy_rollbacks_total", {{"service", "app"}}), 0.0);
}

TEST_F(WatchdogCanaryTest, PauseHoldsResumeRestartsIntervalAbortReturnsToZero) {
  Proxy& p = start(Policy{});
  RequestLoop loop(p.port(), 6);
  ctl({"canary", "start", "--steps", "10,50,100", "--interval", "2s"});
  auto paused = ctl({"canary", "pause"});
  EXPECT_EQ(paused.at("state").at("phase").as_string(), "paused") << json::serialize(paused);

  // Paused for longer than the interval, with passing verdicts: the step holds.
  auto held = observe(Ms(3500), Ms(250));
  std::size_t passes = 0;
  for (const auto& s : held) {
    ASSERT_EQ(s.phase, "paused") << s.text();
    ASSERT_EQ(s.green, 10.0) << s.text();
    ASSERT_EQ(s.step, 0) << s.text();
    if (starts_with(s.verdict, "pass: ")) ++passes;
  }
  EXPECT_GE(passes, 3u) << "no passing verdicts while paused: the hold proves nothing";

  // Resume: the step's interval starts again, so 50 % comes a full interval after the resume
  // (the step itself is already older than that).
  const auto t_resume = Clock::now();
  auto resumed = ctl({"canary", "resume"});
  EXPECT_EQ(resumed.at("state").at("phase").as_string(), "canary") << json::serialize(resumed);
  Snap last;
  auto step1 = wait_for([](const Snap& s) { return s.green == 50.0; }, Ms(8000), &last, Ms(50));
  ASSERT_TRUE(step1) << "no advance after resume; last status: " << last.text();
  const double after_resume = secs(step1->at - t_resume);
  std::cout << "[ watchdog ] advanced " << after_resume << " s after resume (interval 2 s)\n";
  EXPECT_GE(after_resume, 2.0 - 0.1);
  EXPECT_LE(after_resume, 2.0 + 2.5);
  EXPECT_EQ(step1->phase, "canary");
  EXPECT_EQ(step1->step, 1);

  // Abort = manual rollback to the weights before the canary; acknowledged = every worker routes
  // by it.
  auto aborted = ctl({"canary", "abort"});
  const auto t_abort = Clock::now();
  const auto& st = aborted.at("state");
  EXPECT_EQ(st.at("phase").as_string(), "rolled_back") << json::serialize(st);
  EXPECT_EQ(num(st.at("weights").at("green")), 0.0) << json::serialize(st);
  EXPECT_EQ(st.at("reason").as_string(), "manual") << json::serialize(st);
  auto h = history();
  const auto& entry = h.back();
  EXPECT_EQ(command_and_args(entry), R"(canary {"action":"abort"})") << json::serialize(entry);
  EXPECT_EQ(entry.at("reason").as_string(), "manual") << json::serialize(entry);
  EXPECT_EQ(num(entry.at("before").at("green")), 50.0) << json::serialize(entry);
  EXPECT_EQ(num(entry.at("after").at("green")), 0.0) << json::serialize(entry);
  EXPECT_EQ(metric(p, "bgproxy_rollbacks_total", {{"service", "app"}, {"reason", "manual"}}), 1.0);
  EXPECT_EQ(metric(p, "bgproxy_rollbacks_total", {{"service", "app"}, {"reason", "watchdog"}}), 0.0);

  auto after = observe(Ms(2500), Ms(250));
  for (const auto& s : after) {
    EXPECT_EQ(s.phase, "rolled_back") << s.text();
    EXPECT_EQ(s.green, 0.0) << s.text();
  }
  EXPECT_EQ(history().size(), h.size()) << "something moved after the abort";
  loop.stop();
  Tally t = tally(loop.since(t_abort));
  EXPECT_GE(t.total, 50u);
  EXPECT_EQ(t.green, 0u) << "requests reached green after the abort";
  // A paused or aborted canary cannot be resumed.
  EXPECT_EQ(bgctl({"canary", "resume"}).exit_code, 1);
}

// ---------------------------------------------------------------------------------------------
// 6. Restarts.

TEST_F(WatchdogRestartTest, KillNineDuringCanaryStepResumesTheStep) {
  constexpr double interval = 6.0;
  Proxy& p = start(Policy{}, "6s");
  std::optional<RequestLoop> loop;
  loop.emplace(p.port(), 6);
  const auto t_start = Clock::now();
  ctl({"canary", "start", "--steps", "10,50,100", "--interval", "6s"});
  wait_pass();
  std::this_thread::sleep_until(t_start + Ms(3000));  // half-way through step 0
  Snap before = snap();
  ASSERT_EQ(before.phase, "canary") << before.text();
  ASSERT_EQ(before.green, 10.0) << before.text();
  const auto history_before = history();
  loop.reset();

  Proxy& q = kill_and_restart(p);
  const auto t_ready = Clock::now();
  Snap after = snap();
  EXPECT_EQ(after.phase, "canary") << after.text();
  EXPECT_EQ(after.step, 0) << after.text();
  EXPECT_EQ(after.green, 10.0) << after.text();
  EXPECT_EQ(after.target, "green") << after.text();
  ASSERT_TRUE(after.svc.contains("canary")) << json::serialize(after.svc);
  EXPECT_EQ(num(after.svc.at("canary").at("interval_seconds")), interval);
  EXPECT_EQ(json::serialize(history()), json::serialize(history_before));

  // The step goes on from where it was: it advances a full interval after the canary started,
  // which is well before a full interval after the restart.
  loop.emplace(q.port(), 6);
  Snap last;
  auto step1 = wait_for([](const Snap& s) { return s.green == 50.0; }, Ms(12000), &last, Ms(50));
  ASSERT_TRUE(step1) << "the canary did not advance after the restart; last status: " << last.text();
  const double since_start = secs(step1->at - t_start), since_restart = secs(step1->at - t_ready);
  std::cout << "[ watchdog ] advanced " << since_start << " s after canary start, " << since_restart
            << " s after the restart (interval " << interval << " s)\n";
  EXPECT_GE(since_start, interval - 0.1);
  EXPECT_LT(since_restart, interval - 0.5) << "the step's interval started again at the restart";
  EXPECT_EQ(step1->phase, "canary");
  EXPECT_EQ(step1->step, 1);
  EXPECT_EQ(command_and_args(history().back()), R"(canary {"action":"advance"})");
  loop.reset();
}

TEST_F(WatchdogRestartTest, KillNineAfterRollbackStaysRolledBack) {
  Proxy& p = start(Policy{});
  green_->knobs("error_rate=0.3");
  std::optional<RequestLoop> loop;
  loop.emplace(p.port(), 6);
  ctl({"canary", "start", "--steps", "10,50,100", "--interval", "2s"});
  Snap last;
  auto rb = wait_for([](const Snap& s) { return s.phase == "rolled_back"; }, Ms(15000), &last);
  ASSERT_TRUE(rb) << "the failing canary was not rolled back; last status: " << last.text();
  ASSERT_EQ(rb->green, 0.0);
  green_->knobs("reset=1");  // green is healthy now: only the rolled_back state keeps it out
  loop.reset();
  const auto history_before = history();

  Proxy& q = kill_and_restart(p);
  Snap after = snap();
  EXPECT_EQ(after.phase, "rolled_back") << after.text();
  EXPECT_EQ(after.green, 0.0) << after.text();
  EXPECT_EQ(num(after.svc.at("stable").at("green")), 0.0) << after.text();
  EXPECT_TRUE(std::regex_match(after.reason, kErrorRateReason)) << after.text();
  EXPECT_EQ(json::serialize(history()), json::serialize(history_before));

  // Traffic flows, green would pass, more than two intervals and a window go by: nothing moves.
  loop.emplace(q.port(), 6);
  const auto t_restart = Clock::now();
  auto seen = observe(Ms(5000), Ms(250));
  for (const auto& s : seen) {
    EXPECT_EQ(s.phase, "rolled_back") << s.text();
    EXPECT_EQ(s.green, 0.0) << s.text();
  }
  EXPECT_EQ(json::serialize(history()), json::serialize(history_before)) << "a change was made after the restart";
  loop->stop();
  Tally t = tally(loop->since(t_restart));
  EXPECT_GE(t.total, 50u);
  EXPECT_EQ(t.green, 0u) << "requests reached green after the restart";
  EXPECT_EQ(t.non_200, 0u) << t.first_problem;
  loop.reset();
}

// ---------------------------------------------------------------------------------------------
// 7. Dry run: the decision is logged, nothing changes.

TEST_F(WatchdogDryRunTest, FailingGreenIsNotRolledBackButTheDecisionIsLogged) {
  Policy policy;
  policy.dry_run = true;
  Proxy& p = start(policy);
  green_->knobs("error_rate=0.3");
  RequestLoop loop(p.port(), 6);
  const auto t0 = Clock::now();
  ctl({"split", "--green", "50"});
  const std::regex would(R"(watchdog \(dry run\): would roll back app green: error_rate \d\.\d{3} > 0\.05 \(n=\d+, window 3s\))");
  auto line = p.process().wait_for_line(would, Ms(15000));
  ASSERT_TRUE(line) << "no dry-run line within 15 s";
  const double delay = secs(Clock::now() - t0);
  std::cout << "[ watchdog ] dry-run decision logged " << delay << " s after the split: " << (*line)[0] << "\n";
  EXPECT_LE(delay, kWindow + 3);

  // Two more windows: the failing verdict is visible, the weights and phase do not move.
  auto seen = observe(Ms(static_cast<int>(2 * kWindow * 1000)), Ms(250));
  std::size_t failing = 0;
  for (const auto& s : seen) {
    ASSERT_EQ(s.phase, "canary") << s.text();
    ASSERT_EQ(s.green, 50.0) << s.text();
    if (std::regex_match(s.verdict, std::regex(R"(^error_rate \d\.\d{3} > 0\.05 \(n=\d+, window 3s\)$)"))) ++failing;
  }
  EXPECT_GE(failing * 2, seen.size()) << "status does not show the failing verdict";
  EXPECT_TRUE(seen.back().svc.at("watchdog").at("dry_run").as_bool());
  const double gauge = metric(p, "bgproxy_watchdog_error_rate", {{"service", "app"}, {"color", "green"}});
  EXPECT_NEAR(gauge, 0.3, 0.05);
  EXPECT_EQ(metric(p, "bgproxy_rollbacks_total", {{"service", "app"}, {"reason", "watchdog"}}), 0.0);
  EXPECT_EQ(metric(p, "bgproxy_rollout_phase", {{"service", "app"}, {"phase", "canary"}}), 1.0);
  const auto log = p.process().stderr_text();
  EXPECT_EQ(count_lines(log, kRollbackLine), 0u);
  // Logged once, not once a second while the failure lasts (the figures in the line change every
  // second; the decision does not).
  EXPECT_EQ(count_lines(log, would), 1u) << "the dry-run decision is logged again every second";
  auto h = history();
  EXPECT_EQ(command_and_args(h.back()), R"(split {"green":50})") << json::serialize(h.back());
  loop.stop();
}

}  // namespace
}  // namespace bgtest
