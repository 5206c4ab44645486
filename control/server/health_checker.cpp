#include "control/server/health_checker.hpp"

#include <random>
#include <string>

#include <spdlog/spdlog.h>

#include "bgproxy/tls/upstream_tls.hpp"
#include "control/server/server_transport.hpp"

namespace bgproxy::control {

namespace net = boost::asio;

HealthChecker::HealthChecker(net::io_context& ioc, std::shared_ptr<const config::Config> cfg,
                             std::vector<routing::ServerInfo> servers, OnResult on_result)
    : ioc_(ioc), cfg_(std::move(cfg)), servers_(std::move(servers)), on_result_(std::move(on_result)) {}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::start() {
  tls::UpstreamTlsServers tls;
  try {
    tls = tls::load_upstream_tls(*cfg_, servers_);
  } catch (const tls::TlsLoadError& e) {
    // Start and reload load the same files first and refuse on error; this is a file changed since.
    spdlog::error("health checks of TLS pools: {}", e.what());
    tls.assign(servers_.size(), nullptr);
  }
  std::random_device seed;
  for (const auto& s : servers_) {
    const auto& svc = cfg_->services[s.service];
    if (!svc.health_check.enabled) continue;
    const auto& pool = s.color == routing::Color::blue ? svc.blue : svc.green;
    if (pool.tls.enabled && !tls[s.id]) continue;
    std::string error;
    auto transport = transport_for(ioc_, *cfg_, s, tls[s.id], svc.health_check, error);
    if (!transport) {
      spdlog::error("health check of {}: {}", s.endpoint.text, error);
      continue;
    }
    auto probe = std::make_shared<HealthProbe>(ioc_, s.id, svc.health_check, std::move(transport), on_result_,
                                               (static_cast<std::uint64_t>(seed()) << 32) ^ seed());
    probes_.push_back(probe);
    probe->start();
  }
}

void HealthChecker::stop() {
  for (auto& p : probes_) p->stop();
  probes_.clear();
}

}  // namespace bgproxy::control
