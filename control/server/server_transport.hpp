#pragma once
/// How the control plane asks one backend server something — a health check, a release's smoke
/// request — as a client of its service would: in its color's protocol (HTTP/1.1, h2c, h2), over
/// TLS when its pool has `tls`, with the service's Host.
/// Thread: control.

#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "bgproxy/tls/upstream_tls.hpp"
#include "control/server/health_transport.hpp"

namespace bgproxy::control {

/// @param tls the server's pool TLS settings (tls::load_upstream_tls), null for a plain pool
/// @param hc what to ask: `GET hc.path` checked against hc.expect_status, or the gRPC health check
/// @param error set, and null returned, when the server's address does not resolve
std::shared_ptr<HealthTransport> transport_for(boost::asio::io_context& ioc, const config::Config& cfg,
                                               const routing::ServerInfo& server,
                                               std::shared_ptr<const tls::UpstreamTlsServer> tls,
                                               const config::HealthCheck& hc, std::string& error);

}  // namespace bgproxy::control
