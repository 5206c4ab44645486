// The change feed's bus: fan-out, filtering by service, the bounded queue and its final line.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/core/event_feed.hpp"

namespace bgproxy::control {
namespace {

Event event(std::string service, std::string kind = "switch") {
  Event e;
  e.kind = std::move(kind);
  e.time = "2026-12-03T21:30:00.123Z";
  e.service = std::move(service);
  e.instance = "edge-a";
  e.fields = {{"reason", "manual"}};
  return e;
}

TEST(EventLine, CommonFieldsFirstThenTheKindsOwn) {
  EXPECT_EQ(event_line(event("app")),
            R"({"event":"switch","time":"2026-12-03T21:30:00.123Z","service":"app","instance":"edge-a","reason":"manual"})");
  EXPECT_EQ(dropped_line(), R"({"event":"error","error":"subscriber too slow: dropped"})");
}

TEST(EventFeed, FansOutToEverySubscriberAndListener) {
  EventFeed feed;
  int ready_a = 0;
  int ready_b = 0;
  std::vector<std::string> heard;
  const auto a = feed.subscribe({}, [&](bool dropped) { ready_a += dropped ? 100 : 1; });
  const auto b = feed.subscribe({}, [&](bool) { ++ready_b; });
  feed.listen([&](const Event& e) { heard.push_back(e.service); });
  feed.publish(event("app"));
  feed.publish(event("api"));
  EXPECT_EQ(ready_a, 2);
  EXPECT_EQ(ready_b, 2);
  EXPECT_EQ(heard, (std::vector<std::string>{"app", "api"}));
  const auto ta = feed.take(a);
  EXPECT_EQ(ta.lines, event_line(event("app")) + "\n" + event_line(event("api")) + "\n");
  EXPECT_FALSE(ta.last);
  EXPECT_EQ(feed.take(a).lines, "");  // taken once
  EXPECT_EQ(feed.take(b).lines, ta.lines);
}

TEST(EventFeed, ASubscriberForOneServiceGetsOnlyItsEvents) {
  EventFeed feed;
  const auto id = feed.subscribe("app", [](bool) {});
  feed.publish(event("api"));
  feed.publish(event("app", "health"));
  EXPECT_EQ(feed.take(id).lines, event_line(event("app", "health")) + "\n");
}

TEST(EventFeed, OverflowDropsTheQueueForAFinalErrorLine) {
  EventFeed feed(FeedLimits{3, 1 << 20});
  std::vector<bool> told;
  const auto slow = feed.subscribe({}, [&](bool dropped) { told.push_back(dropped); });
  const auto fast = feed.subscribe({}, [](bool) {});
  for (int i = 0; i < 3; ++i) feed.publish(event("app"));
  EXPECT_EQ(told, (std::vector<bool>{false, false, false}));
  (void)feed.take(fast);
  feed.publish(event("app"));  // the fourth does not fit the slow one
  EXPECT_EQ(told.back(), true);
  feed.publish(event("app"));  // nothing more for a dropped subscriber
  EXPECT_EQ(told.size(), 4u);
  const auto t = feed.take(slow);
  EXPECT_EQ(t.lines, dropped_line() + "\n");
  EXPECT_TRUE(t.last);
  EXPECT_EQ(feed.subscribers(), 1u);  // forgotten once its last line was taken
  const auto f = feed.take(fast);
  EXPECT_FALSE(f.last);
  EXPECT_EQ(f.lines, event_line(event("app")) + "\n" + event_line(event("app")) + "\n");
}

TEST(EventFeed, TheByteLimitCountsToo) {
  const std::size_t line = event_line(event("app")).size() + 1;
  EventFeed feed(FeedLimits{1000, 2 * line});
  bool dropped = false;
  const auto id = feed.subscribe({}, [&](bool d) { dropped = d; });
  feed.publish(event("app"));
  feed.publish(event("app"));
  EXPECT_FALSE(dropped);
  feed.publish(event("app"));
  EXPECT_TRUE(dropped);
  EXPECT_TRUE(feed.take(id).last);
}

TEST(EventFeed, ReadyMayUnsubscribeDuringPublish) {
  EventFeed feed;
  EventFeed::Id id = 0;
  int calls = 0;
  id = feed.subscribe({}, [&](bool) {
    ++calls;
    feed.unsubscribe(id);
  });
  feed.subscribe({}, [&](bool) { ++calls; });
  feed.publish(event("app"));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(feed.subscribers(), 1u);
  EXPECT_EQ(feed.take(id).lines, "");
}

TEST(EventFeed, ReadyMayTakeAtOnce) {
  // A connection that is not writing takes what was queued at once.
  EventFeed feed(FeedLimits{1, 1 << 20});
  std::string written;
  EventFeed::Id id = 0;
  id = feed.subscribe({}, [&](bool) {
    const auto t = feed.take(id);
    written += t.lines + (t.last ? "<closed>" : "");
  });
  feed.publish(event("app"));
  EXPECT_EQ(written, event_line(event("app")) + "\n");
  // Taken, so the queue is empty again: the next fits, and overflows only with one more waiting.
  feed.publish(event("app"));
  EXPECT_EQ(feed.subscribers(), 1u);
}

TEST(EventFeed, ADroppedSubscriberTakingItsLastLineInsideReadyIsSafe) {
  EventFeed feed(FeedLimits{1, 1 << 20});
  std::string written;
  EventFeed::Id id = 0;
  bool taking = false;
  id = feed.subscribe({}, [&](bool dropped) {
    if (!taking && !dropped) return;  // stuck: takes nothing until dropped
    const auto t = feed.take(id);
    written += t.lines + (t.last ? "<closed>" : "");
  });
  feed.publish(event("app"));
  taking = true;
  feed.publish(event("app"));  // overflow: ready(true) takes the error line, the subscriber goes
  EXPECT_EQ(written, dropped_line() + "\n<closed>");
  EXPECT_EQ(feed.subscribers(), 0u);
}

}  // namespace
}  // namespace bgproxy::control
