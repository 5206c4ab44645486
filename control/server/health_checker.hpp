#pragma once
/// Active health checks (README "Health checks"), run on the control thread's loop, off the
/// workers' request path: one HealthProbe per server of every service with `health_check`
/// enabled, speaking the server's color's protocol — HTTP/1.1, or HTTP/2 (h2c, h2) — and asking
/// what the service's `health_check.protocol` says: `GET path`, or grpc.health.v1.Health/Check.
/// Thread: control.

#include <cstdint>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "control/server/health_probe.hpp"

namespace bgproxy::control {

class HealthChecker {
 public:
  using OnResult = HealthResultHandler;

  HealthChecker(boost::asio::io_context& ioc, std::shared_ptr<const config::Config> cfg,
                std::vector<routing::ServerInfo> servers, OnResult on_result);
  ~HealthChecker();

  /// Starts checking every server of every service with `health_check` enabled;
  /// the first round runs at once.
  void start();
  void stop();

 private:
  std::vector<std::shared_ptr<HealthProbe>> probes_;
  boost::asio::io_context& ioc_;
  std::shared_ptr<const config::Config> cfg_;
  std::vector<routing::ServerInfo> servers_;
  OnResult on_result_;
};

}  // namespace bgproxy::control
