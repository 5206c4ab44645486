#include "bgproxy/routing/routing_table.hpp"

#include <algorithm>
#include <cctype>

#include "bgproxy/weights/basis_points.hpp"

namespace bgproxy::routing {

bool ServiceRoute::has_usable(Color c) const noexcept {
  const auto& p = pool(c);
  return std::any_of(p.begin(), p.end(), [](const ServerRoute& s) { return s.usable(); });
}

bool ServiceRoute::has_enabled(Color c) const noexcept {
  const auto& p = pool(c);
  return std::any_of(p.begin(), p.end(), [](const ServerRoute& s) { return s.enabled; });
}

std::vector<ServerInfo> enumerate_servers(const config::Config& cfg) {
  std::vector<ServerInfo> out;
  for (std::uint32_t si = 0; si < cfg.services.size(); ++si) {
    const auto& svc = cfg.services[si];
    for (Color c : {Color::blue, Color::green}) {
      const auto& pool = c == Color::blue ? svc.blue : svc.green;
      for (const auto& ep : pool.servers) {
        out.push_back(ServerInfo{static_cast<std::uint32_t>(out.size()), si, c, ep});
      }
    }
  }
  return out;
}

RoutingTable build_table(const config::Config& cfg, const std::vector<std::uint32_t>& green_bp,
                         std::uint64_t version) {
  RoutingTable t;
  t.version = version;
  std::uint32_t next_id = 0;
  for (std::size_t si = 0; si < cfg.services.size(); ++si) {
    const auto& svc = cfg.services[si];
    ServiceRoute r;
    r.name = svc.name;
    if (svc.match.host != "*") {
      r.host = svc.match.host;
      std::transform(r.host.begin(), r.host.end(), r.host.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    }
    r.path_prefix = svc.match.path_prefix;
    r.green_bp = si < green_bp.size() ? green_bp[si] : svc.initial_green_bp;
    r.sticky = svc.sticky;
    r.override_color = svc.override_color;
    r.expose_color_header = svc.expose_color_header;
    r.grpc = svc.grpc;
    r.shadow = svc.shadow;
    r.shadow_color = r.green_bp <= weights::full_bp / 2 ? Color::green : Color::blue;
    for (Color c : {Color::blue, Color::green}) {
      const auto& pool = c == Color::blue ? svc.blue : svc.green;
      auto& routes = r.servers[static_cast<std::size_t>(c)];
      for (std::size_t i = 0; i < pool.servers.size(); ++i) routes.push_back(ServerRoute{next_id++, true, true});
    }
    t.services.push_back(std::move(r));
  }
  return t;
}

}  // namespace bgproxy::routing
