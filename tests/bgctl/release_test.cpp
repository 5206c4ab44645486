// `bgctl release` (SPEC §15) on bgctl's side: its command line and request line, the smoke
// results as printed, and how each event of the feed moves `--wait` on or ends it with the exit
// code a CI pipeline reads (0 promoted, 1 rolled back or interrupted, 3 feed lost).

#include "control/bgctl/release.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "control/bgctl/cli.hpp"

namespace bgproxy::bgctl {
namespace {

namespace json = boost::json;

TEST(BgctlRelease, CommandLineToRequestLine) {
  auto r = parse_command_line({"release", "-s", "app", "--to", "green", "--smoke", "/health", "--smoke",
                               "/api/version?x=1", "--steps", "10,50,100", "--interval", "30s", "--wait",
                               "--timeout", "10m"},
                              std::nullopt);
  const auto* inv = std::get_if<Invocation>(&r);
  ASSERT_NE(inv, nullptr) << std::get<Finished>(r).err;
  EXPECT_EQ(inv->request,
            R"j({"command":"release","service":"app","to":"green","smoke":["/health","/api/version?x=1"],)j"
            R"j("steps":[10,50,100],"interval":"30s"})j");
  EXPECT_TRUE(inv->wait);
  EXPECT_EQ(inv->timeout, std::chrono::minutes(10));
  EXPECT_EQ(inv->service, "app");

  auto plain = parse_command_line({"release"}, std::nullopt);
  ASSERT_TRUE(std::holds_alternative<Invocation>(plain));
  EXPECT_EQ(std::get<Invocation>(plain).request, R"j({"command":"release"})j");
  EXPECT_FALSE(std::get<Invocation>(plain).wait);
  EXPECT_EQ(std::get<Invocation>(plain).timeout, std::chrono::minutes(30));
}

TEST(BgctlRelease, UsageErrorsAreFoundBeforeConnecting) {
  const std::pair<std::vector<std::string>, std::string> cases[] = {
      {{"release", "--to", "red"}, "--to must be blue or green, not 'red'"},
      {{"release", "--smoke", "health"}, "--smoke must be a path such as /health, not 'health'"},
      {{"release", "--smoke", "/a b"}, "--smoke must be a path such as /health, not '/a b'"},
      {{"release", "--timeout", "5m"}, "--timeout only goes with --wait"},
      {{"release", "--wait", "--timeout", "soon"}, "--timeout must be a duration above 0 such as 90s or 30m, not 'soon'"},
      {{"release", "--steps", "50,10"}, "--steps '50,10': steps must be increasing percentages ending at 100"},
  };
  for (const auto& [args, message] : cases) {
    auto r = parse_command_line(args, std::nullopt);
    const auto* f = std::get_if<Finished>(&r);
    ASSERT_NE(f, nullptr) << message;
    EXPECT_EQ(f->exit_code, exit_usage);
    EXPECT_NE(f->err.find(message), std::string::npos) << f->err;
  }
}

TEST(BgctlRelease, SmokeResultsOneLineEach) {
  const auto answer = json::parse(R"j({"ok":false,"error":"smoke /api ...","smoke":[
      {"path":"/health","server":"127.0.0.1:5006","status":200,"latency_seconds":0.0031},
      {"path":"/api","server":"127.0.0.1:5006","status":500,"latency_seconds":0.002,"error":"status 500"},
      {"path":"/slow","server":"127.0.0.1:5006","status":0,"latency_seconds":5.0,"error":"timeout after 5s"}]})j");
  EXPECT_EQ(render_smoke(answer.as_object()),
            "smoke /health on 127.0.0.1:5006: 200 in 3.1ms\n"
            "smoke /api on 127.0.0.1:5006: 500 in 2ms: status 500\n"
            "smoke /slow on 127.0.0.1:5006: no answer in 5000ms: timeout after 5s\n");
  EXPECT_EQ(render_smoke(json::parse(R"j({"ok":true})j").as_object()), "");
}

FollowStep follow(std::string_view line) { return follow_event(json::parse(line).as_object(), "app"); }

TEST(BgctlRelease, FollowingTheFeed) {
  const auto step = follow(R"j({"event":"canary_step","time":"T","service":"app","step":1,
                               "weights":{"blue":50,"green":50}})j");
  EXPECT_EQ(step.line, "T  step 1: blue 50% / green 50%\n");
  EXPECT_FALSE(step.exit_code);

  const auto verdict = follow(R"j({"event":"verdict","time":"T","service":"app","outcome":"pass",
                                  "reason":"pass: error_rate 0.000, p95 0.004s (n=120, window 30s)"})j");
  EXPECT_EQ(verdict.line, "T  verdict pass: error_rate 0.000, p95 0.004s (n=120, window 30s)\n");
  EXPECT_FALSE(verdict.exit_code);
  const auto failing = follow(R"j({"event":"verdict","time":"T","service":"app","outcome":"fail",
                                  "reason":"error_rate 0.273 > 0.05 (n=22, window 10s)"})j");
  EXPECT_EQ(failing.line, "T  verdict fail: error_rate 0.273 > 0.05 (n=22, window 10s)\n");

  const auto promoted = follow(R"j({"event":"promoted","time":"T","service":"app","color":"green",
                                   "weights":{"blue":0,"green":100}})j");
  EXPECT_EQ(promoted.line, "T  promoted: green has all the traffic (blue 0% / green 100%)\n");
  EXPECT_EQ(promoted.exit_code, exit_ok);

  const auto rolled_back = follow(R"j({"event":"rollback","time":"T","service":"app",
      "reason":"watchdog: error_rate 0.213 > 0.05 (n=412, window 30s)","before":{"blue":90,"green":10},
      "after":{"blue":100,"green":0}})j");
  EXPECT_EQ(rolled_back.line,
            "T  rolled back: watchdog: error_rate 0.213 > 0.05 (n=412, window 30s) (blue 100% / green 0%)\n");
  EXPECT_EQ(rolled_back.exit_code, exit_refused);
}

TEST(BgctlRelease, AChangeByHandEndsTheWaitButTheReleasesOwnDoesNot) {
  const auto own = follow(R"j({"event":"switch","service":"app","command":"release",
                              "after":{"blue":90,"green":10}})j");
  EXPECT_EQ(own.line, "");
  EXPECT_FALSE(own.exit_code);
  const auto by_hand = follow(R"j({"event":"switch","time":"T","service":"app","command":"switch",
                                  "after":{"blue":0,"green":100}})j");
  EXPECT_EQ(by_hand.line, "T  interrupted by switch: blue 0% / green 100%\n");
  EXPECT_EQ(by_hand.exit_code, exit_refused);
}

TEST(BgctlRelease, OtherServicesAreIgnoredAndADroppedFeedEndsTheWait) {
  const auto other = follow(R"j({"event":"rollback","service":"api","reason":"x"})j");
  EXPECT_EQ(other.line, "");
  EXPECT_FALSE(other.exit_code);
  const auto dropped = follow(R"j({"event":"error","error":"subscriber too slow: dropped"})j");
  EXPECT_EQ(dropped.exit_code, exit_unreachable);
  EXPECT_NE(dropped.line.find("subscriber too slow: dropped"), std::string::npos);
  // Terminal control characters from the proxy are not printed as they are.
  const auto hostile = follow("{\"event\":\"verdict\",\"service\":\"app\",\"outcome\":\"fail\",\"reason\":\"\\u001b[2J\"}");
  EXPECT_EQ(hostile.line.find('\x1b'), std::string::npos);
}

}  // namespace
}  // namespace bgproxy::bgctl
