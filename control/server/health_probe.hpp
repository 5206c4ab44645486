#pragma once
/// When and how long one server is checked (README "Health checks"), whatever the protocol: a
/// check every `interval` (±10 % jitter, so that the checks of many servers spread out), failed
/// after `timeout`, retried once on a new connection when a kept one turns out to be gone, and
/// the kept connection dropped after any failure. What a check says on the wire is its
/// HealthTransport's business.
/// Thread: control.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bgproxy/config/config.hpp"
#include "bgproxy/health/tracker.hpp"
#include "control/server/health_transport.hpp"

namespace bgproxy::control {

using HealthResultHandler = std::function<void(std::uint32_t server, const health::CheckResult& result)>;

/// Checks one server, forever, until stopped.
class HealthProbe : public std::enable_shared_from_this<HealthProbe> {
 public:
  /// @param server the id `on_result` reports
  /// @param hc interval and timeout are copied: a probe outlives no config, it keeps none
  HealthProbe(boost::asio::io_context& ioc, std::uint32_t server, const config::HealthCheck& hc,
              std::shared_ptr<HealthTransport> transport, HealthResultHandler on_result, std::uint64_t seed);

  /// The first check runs at once.
  void start() { check(); }
  /// No result is reported after this, and the connection is closed.
  void stop();

 private:
  void schedule();
  void check();
  void ask();
  void on_answer(HealthAnswer answer);
  void finish(HealthAnswer answer);

  boost::asio::steady_timer interval_timer_;
  boost::asio::steady_timer deadline_;
  std::uint32_t server_;
  config::Duration interval_;
  config::Duration timeout_;
  std::shared_ptr<HealthTransport> transport_;
  HealthResultHandler on_result_;
  std::mt19937_64 rng_;
  std::chrono::steady_clock::time_point started_{};
  bool finished_ = false;
  bool retried_ = false;
  bool stopped_ = false;
};

}  // namespace bgproxy::control
