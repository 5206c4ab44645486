#pragma once
/// Active HTTP health checks (README "Health checks"), run on the control thread's loop, off the
/// workers' request path: per server, `GET path` with the service's host every
/// `interval` (±10 % jitter so checks of many servers spread out), failing on
/// timeout, connect error or an unexpected status. One keep-alive connection per
/// server is reused while the server allows it.
/// Thread: control.

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "bgproxy/config/config.hpp"
#include "bgproxy/health/tracker.hpp"
#include "bgproxy/routing/routing_table.hpp"

namespace bgproxy::control {

class HealthChecker {
 public:
  using OnResult = std::function<void(std::uint32_t server, const health::CheckResult& result)>;

  /// Probes keep `cfg` alive: a stopped checker's last handlers may still run after a reload.
  HealthChecker(boost::asio::io_context& ioc, std::shared_ptr<const config::Config> cfg,
                std::vector<routing::ServerInfo> servers, OnResult on_result);
  ~HealthChecker();

  /// Starts checking every server of every service with `health_check` enabled;
  /// the first round runs at once.
  void start();
  void stop();

 private:
  class Probe;
  std::vector<std::shared_ptr<Probe>> probes_;
  boost::asio::io_context& ioc_;
  std::shared_ptr<const config::Config> cfg_;
  std::vector<routing::ServerInfo> servers_;
  OnResult on_result_;
};

}  // namespace bgproxy::control
