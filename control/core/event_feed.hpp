#pragma once
/// bgproxy::control — the change feed (README "Change feed"): every change the control plane
/// makes, as one JSON line per event, fanned out to the `events` subscribers of the control
/// socket and to in-process listeners (the webhook notifier).
/// Pure: no I/O, no clock. A subscriber's lines wait in a bounded queue of its own until its
/// connection takes them; one that falls too far behind is dropped with a final error line, so
/// a slow or stuck client never holds the control loop up nor makes the process grow.
/// Thread: control.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

namespace bgproxy::control {

/// One thing that happened to a service (README "Change feed" lists the kinds and their fields).
struct Event {
  std::string kind;      ///< switch, canary_step, verdict, rollback, promoted, health, release
  std::string time;      ///< RFC 3339 UTC with milliseconds
  std::string service;
  std::string instance;  ///< the bgproxy that made it: its fleet instance name, else the host name
  boost::json::object fields;  ///< the kind's own fields, written after the common ones
  /// Made by this instance, not taken from the fleet's shared state: only these are notified,
  /// so that a fleet sends one webhook per change, not one per member.
  bool here = true;
};

/// {"event":KIND,"time":...,"service":...,"instance":...,<fields>} on one line, no newline.
std::string event_line(const Event& e);

/// The final line of a dropped subscriber.
std::string dropped_line();

/// How far a subscriber may fall behind before it is dropped.
struct FeedLimits {
  std::size_t max_lines = 256;
  std::size_t max_bytes = 1024 * 1024;
};

class EventFeed {
 public:
  using Id = std::uint64_t;
  /// Told that a subscriber has lines to take; `dropped`: its queue overflowed, what is left to
  /// take is the final error line.
  using Ready = std::function<void(bool dropped)>;
  /// Hears every event as it is published; must return at once (queue, never wait).
  using Listener = std::function<void(const Event&)>;

  explicit EventFeed(FeedLimits limits = {}) : limits_(limits) {}

  /// @param service only its events; empty for every service
  /// @param ready called from publish() whenever lines were queued for this subscriber
  Id subscribe(std::string service, Ready ready);
  /// Forgets a subscriber and its queue; unknown ids (already dropped) are fine.
  void unsubscribe(Id id);
  void listen(Listener l) { listeners_.push_back(std::move(l)); }

  /// Queues the event's line for every subscriber that wants it, then tells the listeners.
  void publish(const Event& e);

  /// What a subscriber's connection writes next.
  struct Taken {
    std::string lines;  ///< each ends with '\n'; empty when nothing waits
    bool last = false;  ///< the subscriber was dropped: close after writing these (it is forgotten)
  };
  /// Takes every line waiting for `id`; they no longer count against its limits.
  Taken take(Id id);

  std::size_t subscribers() const noexcept { return subscribers_.size(); }

 private:
  struct Subscriber {
    std::string service;
    Ready ready;
    std::deque<std::string> lines;
    std::size_t bytes = 0;
    bool dropped = false;
  };

  FeedLimits limits_;
  Id next_id_ = 1;
  std::map<Id, Subscriber> subscribers_;
  std::vector<Listener> listeners_;
};

}  // namespace bgproxy::control
