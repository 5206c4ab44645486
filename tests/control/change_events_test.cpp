// The change feed's events from committed changes, and what a webhook receives for them.
#include <string>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "control/core/change_events.hpp"
#include "control/core/json_line.hpp"
#include "control/core/notification.hpp"

namespace bgproxy::control {
namespace {

namespace json = boost::json;

HistoryEntry entry(std::string command, json::object args, std::string reason, std::uint32_t before_green,
                   std::uint32_t after_green) {
  HistoryEntry e;
  e.time = "2026-12-03T21:30:00.123Z";
  e.service = "app";
  e.command = std::move(command);
  e.args = std::move(args);
  e.reason = std::move(reason);
  e.before = Weights{before_green};
  e.after = Weights{after_green};
  return e;
}

ServiceState state(Phase phase, std::uint32_t step = 0) {
  ServiceState ss;
  ss.name = "app";
  ss.target = routing::Color::green;
  ss.phase = phase;
  ss.step = step;
  return ss;
}

json::value only(const std::vector<Event>& events) {
  EXPECT_EQ(events.size(), 1u);
  return events.empty() ? json::value() : json::parse(event_line(events[0]));
}

TEST(ChangeEvents, ACommandThatMovesTheWeightsIsASwitch) {
  const auto v = only(change_events(entry("switch", {{"color", "green"}}, "manual", 0, 10000), state(Phase::idle),
                                    "edge-a", true));
  EXPECT_EQ(to_line(v),
            R"({"event":"switch","time":"2026-12-03T21:30:00.123Z","service":"app","instance":"edge-a",)"
            R"("command":"switch","args":{"color":"green"},"reason":"manual",)"
            R"("before":{"blue":100.0,"green":0.0},"after":{"blue":0.0,"green":100.0}})");
}

TEST(ChangeEvents, RollbackCanaryStepPromoted) {
  auto v = only(change_events(entry("rollback", {}, "watchdog: error_rate 0.213 > 0.05 (n=412, window 30s)", 5000, 0),
                              state(Phase::rolled_back), "edge-a", true));
  EXPECT_EQ(v.at("event"), "rollback");
  EXPECT_EQ(v.at("color"), "green");
  EXPECT_EQ(v.at("reason"), "watchdog: error_rate 0.213 > 0.05 (n=412, window 30s)");
  EXPECT_EQ(v.at("before").at("green").as_double(), 50.0);
  EXPECT_EQ(v.at("after").at("green").as_double(), 0.0);

  v = only(change_events(entry("canary", {{"action", "abort"}}, "manual", 1000, 0), state(Phase::rolled_back), "e", true));
  EXPECT_EQ(v.at("event"), "rollback");

  v = only(change_events(entry("canary", {{"action", "advance"}}, "canary: step 1 passed", 1000, 5000),
                         state(Phase::canary, 1), "e", true));
  EXPECT_EQ(v.at("event"), "canary_step");
  EXPECT_EQ(v.at("step").as_int64(), 1);
  EXPECT_EQ(v.at("weights").at("green").as_double(), 50.0);

  v = only(change_events(entry("canary", {{"action", "promote"}}, "canary: baked", 10000, 10000),
                         state(Phase::promoted), "e", true));
  EXPECT_EQ(v.at("event"), "promoted");
  EXPECT_EQ(v.at("color"), "green");
}

TEST(ChangeEvents, NothingWhenTheWeightsStay) {
  EXPECT_TRUE(change_events(entry("canary", {{"action", "pause"}}, "manual", 1000, 1000), state(Phase::paused), "e", true)
                  .empty());
  EXPECT_TRUE(change_events(entry("server", {{"action", "disable"}, {"address", "h:1"}}, "manual", 0, 0),
                            state(Phase::idle), "e", true)
                  .empty());
}

TEST(ChangeEvents, HealthVerdictRelease) {
  auto v = json::parse(event_line(health_event("t", "app", "e", routing::Color::green, "127.0.0.1:5006", "down",
                                               "3 consecutive failures: connection refused")));
  EXPECT_EQ(v.at("event"), "health");
  EXPECT_EQ(v.at("color"), "green");
  EXPECT_EQ(v.at("address"), "127.0.0.1:5006");
  EXPECT_EQ(v.at("state"), "down");
  v = json::parse(event_line(verdict_event("t", "app", "e", watchdog::Outcome::fail, "error_rate 0.3 > 0.05")));
  EXPECT_EQ(v.at("outcome"), "fail");
  v = json::parse(event_line(release_event("t", "app", "e", routing::Color::green, json::array{10, 50, 100},
                                           json::array{json::object{{"path", "/health"}, {"status", 200}}})));
  EXPECT_EQ(v.at("event"), "release");
  EXPECT_EQ(v.at("steps").as_array().size(), 3u);
}

TEST(Notification, TextCarriesTheFigures) {
  const auto events = change_events(entry("rollback", {}, "watchdog: error_rate 0.213 > 0.05 (n=412, window 30s)", 5000, 0),
                                    state(Phase::rolled_back), "edge-a", true);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(event_text(events[0]), "rolled back app green: error_rate 0.213 > 0.05 (n=412, window 30s)");
  const auto sw = change_events(entry("split", {{"green", 30}}, "manual", 0, 3000), state(Phase::canary), "e", true);
  EXPECT_EQ(event_text(sw[0]), "app: split blue 100% / green 0% -> blue 70% / green 30% (manual)");
}

TEST(Notification, JsonIsTheEventWithTextSlackIsTextOnly) {
  const auto e = change_events(entry("rollback", {}, "manual", 5000, 0), state(Phase::rolled_back), "edge-a", true)[0];
  const auto body = json::parse(notification_body(e, config::Webhook::Format::json));
  EXPECT_EQ(body.at("event"), "rollback");
  EXPECT_EQ(body.at("instance"), "edge-a");
  EXPECT_EQ(body.at("text"), "rolled back app green: manual");
  EXPECT_EQ(notification_body(e, config::Webhook::Format::slack), R"({"text":"rolled back app green: manual"})");
}

TEST(Notification, AWebhookGetsTheKindsItSelected) {
  config::Webhook w;
  w.events = {"rollback"};
  Event e;
  e.kind = "rollback";
  EXPECT_TRUE(wants(w, e));
  e.kind = "switch";
  EXPECT_FALSE(wants(w, e));
}

}  // namespace
}  // namespace bgproxy::control
