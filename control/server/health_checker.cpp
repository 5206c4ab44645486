#include "control/server/health_checker.hpp"

#include <random>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <spdlog/spdlog.h>

#include "bgproxy/tls/upstream_tls.hpp"
#include "control/server/h1_health_transport.hpp"
#include "control/server/h2_health_transport.hpp"

namespace bgproxy::control {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

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
  tcp::resolver resolver(ioc_);
  std::random_device seed;
  for (const auto& s : servers_) {
    const auto& svc = cfg_->services[s.service];
    if (!svc.health_check.enabled) continue;
    const auto& pool = s.color == routing::Color::blue ? svc.blue : svc.green;
    if (pool.tls.enabled && !tls[s.id]) continue;
    error_code ec;
    const auto results = resolver.resolve(s.endpoint.host, std::to_string(s.endpoint.port), ec);
    if (ec || results.empty()) {
      spdlog::error("health check of {}: cannot resolve: {}", s.endpoint.text, ec.message());
      continue;
    }
    // Checks carry the service's host, as a client of the service would.
    const std::string host = svc.match.host != "*" ? svc.match.host : s.endpoint.text;
    const HealthConnection::Target target{*results.begin(), tls[s.id]};
    // Config validation refuses grpc checks of an HTTP/1.1 color, so HTTP/1.1 only ever GETs.
    std::shared_ptr<HealthTransport> transport;
    if (pool.protocol == config::Protocol::http1) {
      transport = std::make_shared<H1HealthTransport>(ioc_, target, host, svc.health_check);
    } else {
      transport = std::make_shared<H2HealthTransport>(ioc_, target, host, svc.health_check);
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
