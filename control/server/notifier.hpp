#pragma once
/// Webhook notifications (README "Notifications", SPEC §15): a listener of the change feed that
/// POSTs each selected event to every `notify.webhooks` receiver, retrying with backoff.
/// It runs on the control io_context with asynchronous sockets only: a receiver that is slow,
/// down or failing costs a pending operation and a timer, never control-thread time, and each
/// receiver's bounded queue drops (and counts) what it cannot keep up with. No thread of its
/// own, so no locks: the queue, the counters and the feed are all the control thread's.
/// Thread: control.

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "bgproxy/config/config.hpp"
#include "control/core/event_feed.hpp"
#include "control/core/metrics.hpp"

namespace bgproxy::control {

class Notifier {
 public:
  /// Attempts per notification: the first, then retries after 0.5 s, 1 s and 2 s.
  static constexpr int max_attempts = 4;
  static constexpr auto first_backoff = std::chrono::milliseconds(500);
  /// Notifications waiting per receiver beyond the one being sent.
  static constexpr std::size_t max_queued = 64;

  explicit Notifier(boost::asio::io_context& ioc);
  ~Notifier();

  /// The receivers from now on (start, reload). Those of the previous configuration still
  /// deliver what they had queued, then go.
  void configure(const config::Notify& notify);
  /// Queues `e` for every receiver that selected its kind. Returns at once.
  void notify(const Event& e);
  /// Stops sending: what is queued is dropped, what is in flight is abandoned.
  void stop();

  const NotificationCounts& counts() const noexcept { return *counts_; }

 private:
  class Hook;
  boost::asio::io_context& ioc_;
  std::shared_ptr<NotificationCounts> counts_ = std::make_shared<NotificationCounts>();
  std::vector<std::shared_ptr<Hook>> hooks_;
};

}  // namespace bgproxy::control
