#include "control/server/server_transport.hpp"

#include <boost/asio/ip/tcp.hpp>

#include "control/server/h1_health_transport.hpp"
#include "control/server/h2_health_transport.hpp"

namespace bgproxy::control {

std::shared_ptr<HealthTransport> transport_for(boost::asio::io_context& ioc, const config::Config& cfg,
                                               const routing::ServerInfo& server,
                                               std::shared_ptr<const tls::UpstreamTlsServer> tls,
                                               const config::HealthCheck& hc, std::string& error) {
  using tcp = boost::asio::ip::tcp;
  const auto& svc = cfg.services[server.service];
  const auto& pool = server.color == routing::Color::blue ? svc.blue : svc.green;
  tcp::resolver resolver(ioc);
  boost::system::error_code ec;
  const auto results = resolver.resolve(server.endpoint.host, std::to_string(server.endpoint.port), ec);
  if (ec || results.empty()) {
    error = "cannot resolve: " + (ec ? ec.message() : std::string("no address"));
    return nullptr;
  }
  const std::string host = svc.match.host != "*" ? svc.match.host : server.endpoint.text;
  const HealthConnection::Target target{*results.begin(), std::move(tls)};
  // Config validation refuses grpc checks of an HTTP/1.1 color, so HTTP/1.1 only ever GETs.
  if (pool.protocol == config::Protocol::http1) return std::make_shared<H1HealthTransport>(ioc, target, host, hc);
  return std::make_shared<H2HealthTransport>(ioc, target, host, hc);
}

}  // namespace bgproxy::control
