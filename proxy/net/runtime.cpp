#include "proxy/net/runtime.hpp"

namespace bgproxy::proxy {

Settings Settings::from(const config::Config& cfg) {
  Settings s;
  s.client_header = cfg.timeouts.client_header;
  s.client_idle = cfg.timeouts.client_idle;
  s.upstream_connect = cfg.timeouts.upstream_connect;
  s.upstream_response = cfg.timeouts.upstream_response;
  s.upstream_idle = cfg.timeouts.upstream_idle;
  s.max_header_bytes = cfg.limits.max_header_bytes;
  s.max_body_bytes = cfg.limits.max_body_bytes;
  s.max_connections = cfg.limits.max_connections;
  const auto servers = routing::enumerate_servers(cfg);
  s.upstream_tls = tls::load_upstream_tls(cfg, servers);
  for (const auto& server : servers) {
    const auto& svc = cfg.services[server.service];
    const auto& pool = server.color == routing::Color::blue ? svc.blue : svc.green;
    s.upstream_h2.push_back(pool.protocol != config::Protocol::http1);
  }
  return s;
}

}  // namespace bgproxy::proxy
