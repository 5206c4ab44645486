// Issue 18 acceptance through the real binaries (SPEC §16, watchdog.method: sequential), with the
// demo backend's fault knobs and a steady keep-alive request loop:
//   - a green answering 30 % 500s at a 10 % split is rolled back after far fewer green requests
//     than min_requests (100 here) would need, and status names the evidence;
//   - a healthy green walks the canary steps and is promoted, each step passed by evidence;
//   - sparse errors (0.75 %, 3 in 400, on green; none on blue) at a 10 % split are rolled back,
//     while the threshold method passes the same green;
//   - in a dry run the failing verdict is logged with its evidence and nothing moves.
// Every wait is bounded and synchronised on a `bgctl --json status` answer.

#include <functional>
#include <iostream>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bgtest {
namespace {

namespace json = boost::json;

struct Status {
  std::string phase, verdict, reason;
  double green = -1;
  json::object watchdog;
};

class SequentialWatchdogTest : public IntegrationTest {
 protected:
  /// Blue and green demo backends, `sticky: none`, a 3 s window, the given watchdog method.
  Proxy& start(const std::string& method, const std::string& alpha = "0.01", bool dry_run = false) {
    blue_ = &start_backend("blue");
    green_ = &start_backend("green");
    cfg_.blue = {blue_->address()};
    cfg_.green = {green_->address()};
    cfg_.service_extra = std::string("sticky: none\nwatchdog: { ") + (dry_run ? "dry_run: true, " : "") +
                         "method: " + method + ", alpha: " + alpha +
                         ", window: 3s, min_requests: 100, max_error_rate: 0.05, max_p95: 1s, bake_time: 2s, "
                         "max_error_rate_delta: 0.02, max_p95_ratio: 1.5 }\n";
    Proxy& p = start_proxy(cfg_);
    socket_ = (dir_ / "control-0.sock").string();
    return p;
  }

  json::object ctl(std::vector<std::string> args) {
    std::vector<std::string> argv{BGCTL_BIN, "-S", socket_, "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = run_command(std::move(argv), dir_.path(), Ms(10000));
    if (r.exit_code != 0) throw std::runtime_error("bgctl: exit " + std::to_string(r.exit_code) + ": " + r.err + r.out);
    auto v = json::parse(r.out);
    if (!v.is_object() || !v.at("ok").as_bool()) throw std::runtime_error("bgctl not ok: " + r.out);
    return v.as_object();
  }

  Status status() {
    const auto svc = ctl({"status"}).at("services").as_array().at(0).as_object();
    Status s;
    s.phase = std::string(svc.at("phase").as_string());
    s.reason = svc.at("reason").is_string() ? std::string(svc.at("reason").as_string()) : "";
    s.green = svc.at("weights").at("green").to_number<double>();
    s.watchdog = svc.at("watchdog").as_object();
    const auto& v = s.watchdog.at("verdict");
    s.verdict = v.is_string() ? std::string(v.as_string()) : "";
    return s;
  }

  std::optional<Status> wait_for(const std::function<bool(const Status&)>& pred, Ms timeout, Status* last) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      Status s = status();
      if (pred(s)) return s;
      *last = s;
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(Ms(100));
    }
  }

  /// The green requests a rollback reason counts: "... green 5 errors of 17, blue 0 of 160".
  static long green_requests_in(const std::string& reason) {
    std::smatch m;
    if (!std::regex_search(reason, m, std::regex(R"(green (\d+) errors of (\d+))"))) return -1;
    return std::stol(m[2]);
  }

  ProxyConfig cfg_;
  Backend* blue_ = nullptr;
  Backend* green_ = nullptr;
  std::string socket_;
};

TEST_F(SequentialWatchdogTest, ThirtyPercentErrorsRollBackFarBelowMinRequests) {
  Proxy& p = start("sequential");
  green_->knobs("error_rate=0.3");
  // Little traffic (about 10 green requests a second): evidence is counted per second.
  RequestLoop loop(p.port(), 2, Ms(20));
  ctl({"split", "--green", "10"});
  Status last;
  auto rb = wait_for([](const Status& s) { return s.phase == "rolled_back"; }, Ms(20000), &last);
  ASSERT_TRUE(rb) << "not rolled back; last verdict: " << last.verdict;
  std::cout << "[ sequential ] " << rb->reason << "\n";
  EXPECT_EQ(rb->green, 0.0);
  EXPECT_TRUE(std::regex_search(rb->reason, std::regex(R"(^watchdog: error_rate(_relative)? evidence [0-9.e+]+, )"
                                                       R"(mean of the rules [0-9.e+]+ >= 100 \(alpha 0\.01\): )")))
      << rb->reason;
  const long n = green_requests_in(rb->reason);
  ASSERT_GT(n, 0) << rb->reason;
  EXPECT_LE(n, 50) << "min_requests is 100: " << rb->reason;
  // The evidence behind it stays in the history and the metric says how strong it was.
  const auto h = ctl({"history", "--limit", "5"}).at("history").as_array();
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(h.back().at("reason").as_string(), rb->reason);
}

TEST_F(SequentialWatchdogTest, HealthyGreenWalksTheStepsOnEvidence) {
  Proxy& p = start("sequential");
  RequestLoop loop(p.port(), 6);
  ctl({"canary", "start", "--steps", "20,100", "--interval", "2s"});
  // The first step passes on evidence (status shows each rule's), then the last, then the bake.
  Status last;
  auto passed = wait_for([](const Status& s) { return s.verdict.rfind("pass: evidence >= 100", 0) == 0; }, Ms(15000),
                         &last);
  ASSERT_TRUE(passed) << "no passing verdict; last: " << last.verdict;
  const auto& ev = passed->watchdog.at("evidence").as_object();
  EXPECT_EQ(ev.at("outcome").as_string(), "pass");
  ASSERT_EQ(ev.at("rules").as_array().size(), 4u);
  for (const auto& r : ev.at("rules").as_array()) EXPECT_EQ(r.at("verdict").as_string(), "pass") << json::serialize(r);
  EXPECT_TRUE(ev.at("error_rate_difference").is_object()) << json::serialize(ev);
  EXPECT_NE(p.metrics().find(R"(bgproxy_watchdog_evidence{service="app",rule="error_rate",direction="good"})"),
            std::string::npos);
  // bgctl status prints the same evidence as a table.
  const auto text = run_command({BGCTL_BIN, "-S", socket_, "status"}, dir_.path(), Ms(10000));
  std::cout << "[ sequential ] bgctl status:\n" << text.out;
  EXPECT_NE(text.out.find("  watchdog: on, sequential, window 3s, last verdict: "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("    evidence (alpha 0.01): "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("      error_rate_relative "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("    error rate, target - other: "), std::string::npos) << text.out;
  auto promoted = wait_for([](const Status& s) { return s.phase == "promoted"; }, Ms(25000), &last);
  ASSERT_TRUE(promoted) << "not promoted; last: phase " << last.phase << " green " << last.green << ": "
                        << last.verdict;
  EXPECT_EQ(promoted->green, 100.0);
  const auto h = ctl({"history", "--limit", "10"}).at("history").as_array();
  bool advanced_on_evidence = false;
  for (const auto& e : h) {
    const std::string reason(e.at("reason").as_string());
    if (reason.find("canary: step 2 of 2 after pass: evidence >= 100 on every rule") == 0) advanced_on_evidence = true;
  }
  EXPECT_TRUE(advanced_on_evidence) << json::serialize(h);
}

// Sparse errors on green: 0.75 % (3 in 400), none on blue, at a 10 % split; alpha 0.05.

TEST_F(SequentialWatchdogTest, SparseErrorsPassTheThresholdMethod) {
  Proxy& p = start("threshold", "0.05");
  green_->knobs("error_rate=0.0075");
  RequestLoop loop(p.port(), 6);
  ctl({"split", "--green", "10"});
  Status last;
  auto pass = wait_for([](const Status& s) { return s.verdict.rfind("pass: ", 0) == 0; }, Ms(10000), &last);
  ASSERT_TRUE(pass) << last.verdict;
  // Conclusive passes go on while green keeps failing: nothing rolls it back.
  std::this_thread::sleep_for(Ms(4000));  // an observation period: more than one window
  const Status after = status();
  EXPECT_EQ(after.phase, "canary") << after.reason;
  EXPECT_EQ(after.verdict.rfind("pass: ", 0), 0u) << after.verdict;
}

TEST_F(SequentialWatchdogTest, SparseErrorsAreCaughtBySequentialAnalysis) {
  Proxy& p = start("sequential", "0.05");
  green_->knobs("error_rate=0.0075");
  RequestLoop loop(p.port(), 6);
  ctl({"split", "--green", "10"});
  Status last;
  auto rb = wait_for([](const Status& s) { return s.phase == "rolled_back"; }, Ms(25000), &last);
  ASSERT_TRUE(rb) << "not rolled back; last verdict: " << last.verdict;
  std::cout << "[ sequential ] sparse errors: " << rb->reason << "\n";
  EXPECT_TRUE(std::regex_search(rb->reason, std::regex(R"(^watchdog: error_rate(_relative)? evidence )")))
      << rb->reason;
}

TEST_F(SequentialWatchdogTest, DryRunLogsTheEvidenceAndChangesNothing) {
  Proxy& p = start("sequential", "0.01", true);
  green_->knobs("error_rate=0.3");
  RequestLoop loop(p.port(), 2, Ms(20));
  ctl({"split", "--green", "10"});
  const std::regex would(R"(watchdog \(dry run\): would roll back app green: error_rate(_relative)? evidence )");
  ASSERT_TRUE(p.process().wait_for_line(would, Ms(20000))) << p.process().stderr_text();
  Status last;
  // The verdict keeps failing (the evidence is never wiped) while the weights stay.
  auto failing = wait_for([](const Status& s) { return s.verdict.rfind("error_rate", 0) == 0; }, Ms(3000), &last);
  ASSERT_TRUE(failing) << last.verdict;
  EXPECT_EQ(failing->phase, "canary");
  EXPECT_EQ(failing->green, 10.0);
  EXPECT_EQ(failing->watchdog.at("evidence").at("outcome").as_string(), "fail");
}

}  // namespace
}  // namespace bgtest
