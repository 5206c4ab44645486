// `bgctl release` (SPEC §15, issue 16) through the real bgproxy, bgctl and demo backends: the
// smoke requests are made by the proxy on the target color (their statuses come from the green
// backend itself), a failing one refuses the release and changes nothing, an unhealthy target
// is refused before any request, and `--wait` follows the rollout through the event feed to
// its end with the exit codes a pipeline reads: 0 promoted, 1 rolled back, 4 timeout.

#include <regex>
#include <string>
#include <vector>

#include "harness.hpp"

namespace bgtest {
namespace {

namespace json = boost::json;

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

class ReleaseTest : public IntegrationTest {
 protected:
  /// Blue and green demo backends (green at a refused port when `green_up` is false), health
  /// checks every 100 ms, `sticky: none`, and a watchdog that decides on a few requests.
  void start(bool green_up = true) {
    blue_ = &start_backend("blue");
    ProxyConfig cfg;
    cfg.blue = {blue_->address()};
    if (green_up) {
      green_ = &start_backend("green");
      cfg.green = {green_->address()};
    } else {
      cfg.green = {"127.0.0.1:" + std::to_string(refused_port())};
    }
    cfg.health_check = true;
    cfg.service_extra =
        "sticky: none\n"
        "health_check: { path: /health, interval: 100ms, timeout: 80ms, rise: 1, fall: 1 }\n"
        "watchdog: { window: 2s, min_requests: 10, max_error_rate: 0.05, bake_time: 500ms }\n";
    proxy_ = &start_proxy(cfg);
    socket_ = (dir_ / "control-0.sock").string();
  }

  CommandResult bgctl(std::vector<std::string> args, Ms timeout = Ms(10000)) {
    args.insert(args.begin(), {BGCTL_BIN, "-S", socket_});
    return run_command(std::move(args), dir_.path(), timeout);
  }

  /// The one service of `bgctl --json status`.
  json::object service() {
    const auto r = bgctl({"--json", "status"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out).at("services").at(0).as_object();
  }

  json::array history() {
    const auto r = bgctl({"--json", "history"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out).at("history").as_array();
  }

  /// Waits for the first green server to be in `state` by `bgctl health`.
  void wait_green(std::string_view state) {
    const auto deadline = Clock::now() + Ms(5000);
    std::string last;
    while (Clock::now() < deadline) {
      const auto r = bgctl({"--json", "health"});
      const auto answer = json::parse(r.out);
      for (const auto& s : answer.at("services").at(0).at("servers").as_array()) {
        if (s.at("color") == "green") last = std::string(s.at("state").as_string());
      }
      if (last == state) return;
      std::this_thread::sleep_for(Ms(50));
    }
    FAIL() << "green never became " << state << "; last: " << last;
  }

  Backend* blue_ = nullptr;
  Backend* green_ = nullptr;
  Proxy* proxy_ = nullptr;
  std::string socket_;
};

TEST_F(ReleaseTest, SmokeRequestsReachTheTargetThenItsCanaryStartsAndTheHistorySaysRelease) {
  start();
  wait_green("up");
  // `bgctl events` streams the feed; the release is announced on it with its smoke results.
  Process events({BGCTL_BIN, "-S", socket_, "events"}, dir_.path(), "events");
  ASSERT_TRUE(events.wait_for_line(std::regex("subscribed"), Ms(5000), Stream::Stdout)) << events.stderr_text();
  // ?status= is answered by the demo backend itself: 204 and 302 can only come from green.
  const auto r = bgctl({"release", "--smoke", "/health", "--smoke", "/api/version?status=204", "--smoke",
                        "/old?status=302", "--steps", "10,100", "--interval", "1h"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_TRUE(contains(r.out, "smoke /health on " + green_->address() + ": 200 in ")) << r.out;
  EXPECT_TRUE(contains(r.out, "smoke /api/version?status=204 on " + green_->address() + ": 204 in ")) << r.out;
  EXPECT_TRUE(contains(r.out, "smoke /old?status=302 on " + green_->address() + ": 302 in ")) << r.out;
  EXPECT_TRUE(contains(r.out, "app: blue 90% / green 10%")) << r.out;

  const auto svc = service();
  EXPECT_EQ(svc.at("phase"), "canary");
  EXPECT_EQ(svc.at("target"), "green");
  const auto entry = history().back().as_object();
  EXPECT_EQ(entry.at("command"), "release");
  EXPECT_EQ(json::serialize(entry.at("args")),
            R"({"smoke":[{"path":"/health","status":200},{"path":"/api/version?status=204","status":204},)"
            R"({"path":"/old?status=302","status":302}],"target":"green","steps":[10,100],"interval_seconds":3600})");

  const auto announced = events.wait_for_line(std::regex(R"re(\{"event":"release".*)re"), Ms(5000), Stream::Stdout);
  ASSERT_TRUE(announced) << events.stdout_text();
  const auto release_event = json::parse(announced->at(0)).as_object();
  EXPECT_EQ(release_event.at("service"), "app");
  EXPECT_EQ(release_event.at("color"), "green");
  EXPECT_EQ(json::serialize(release_event.at("steps")), "[10,100]");
  EXPECT_EQ(release_event.at("smoke").as_array().size(), 3u);
  EXPECT_EQ(release_event.at("smoke").at(1).at("status"), 204);

  // A second release while this one runs is refused.
  const auto again = bgctl({"release"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(contains(again.err, "a canary is already running for app")) << again.err;
}

TEST_F(ReleaseTest, AFailingSmokePathRefusesTheReleaseAndChangesNothing) {
  start();
  wait_green("up");
  const auto before = history().size();
  const auto r = bgctl({"release", "--smoke", "/health", "--smoke", "/api?status=500", "--smoke", "/never"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.out, "smoke /health on " + green_->address() + ": 200 in ")) << r.out;
  EXPECT_TRUE(contains(r.out, "smoke /api?status=500 on " + green_->address() + ": 500 in ")) << r.out;
  EXPECT_FALSE(contains(r.out, "/never")) << "the smoke test stops at the first failure: " << r.out;
  EXPECT_TRUE(contains(r.err, "bgctl: smoke /api?status=500 on " + green_->address() +
                                  ": status 500; release refused"))
      << r.err;
  const auto svc = service();
  EXPECT_EQ(svc.at("weights").at("green").to_number<double>(), 0.0);
  EXPECT_EQ(svc.at("phase"), "idle");
  EXPECT_EQ(history().size(), before);
}

TEST_F(ReleaseTest, AnUnhealthyTargetIsRefusedBeforeAnyRequest) {
  start(false);
  wait_green("down");
  const auto r = bgctl({"release", "--smoke", "/health"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "bgctl: green has no healthy server\n");
  EXPECT_EQ(service().at("weights").at("green").to_number<double>(), 0.0);
}

TEST_F(ReleaseTest, WaitFollowsAHealthyReleaseToItsPromotionAndExitsZero) {
  start();
  wait_green("up");
  RequestLoop traffic(proxy_->port(), 2, Ms(5));
  const auto r = bgctl({"release", "--smoke", "/health", "--steps", "50,100", "--interval", "1s", "--wait",
                        "--timeout", "60s"},
                       Ms(60000));
  traffic.stop();
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_TRUE(contains(r.out, "step 1: blue 0% / green 100%")) << r.out;
  EXPECT_TRUE(contains(r.out, "promoted: green has all the traffic (blue 0% / green 100%)")) << r.out;
  EXPECT_EQ(service().at("weights").at("green").to_number<double>(), 100.0);
}

TEST_F(ReleaseTest, WaitExitsOneWhenTheWatchdogRollsTheReleaseBack) {
  start();
  wait_green("up");
  green_->knobs("error_rate=0.5");  // /health stays 200: the smoke test passes, users do not
  RequestLoop traffic(proxy_->port(), 2, Ms(5));
  const auto r = bgctl({"release", "--smoke", "/health", "--steps", "50,100", "--interval", "30s", "--wait",
                        "--timeout", "60s"},
                       Ms(60000));
  traffic.stop();
  EXPECT_EQ(r.exit_code, 1) << r.err << r.out;
  EXPECT_TRUE(contains(r.out, "rolled back: watchdog: error_rate ")) << r.out;
  EXPECT_TRUE(contains(r.out, "(blue 100% / green 0%)")) << r.out;
  EXPECT_EQ(service().at("phase"), "rolled_back");
}

TEST_F(ReleaseTest, WaitExitsFourWhenTheTimeoutPassesFirstAndTheRolloutGoesOn) {
  start();
  wait_green("up");
  const auto r = bgctl({"release", "--interval", "1h", "--wait", "--timeout", "1s"});
  EXPECT_EQ(r.exit_code, 4) << r.err << r.out;
  EXPECT_TRUE(contains(r.err, "--timeout passed before the release ended")) << r.err;
  EXPECT_EQ(service().at("phase"), "canary");
}

}  // namespace
}  // namespace bgtest
