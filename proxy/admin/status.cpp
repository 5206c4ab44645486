#include "proxy/admin/status.hpp"

#include <boost/json.hpp>

#include "bgproxy/weights/basis_points.hpp"

namespace bgproxy::proxy {

std::string render_status(const config::Config& cfg, const routing::RoutingTable& table) {
  boost::json::array services;
  for (std::size_t si = 0; si < table.services.size() && si < cfg.services.size(); ++si) {
    const auto& route = table.services[si];
    const auto& svc = cfg.services[si];
    boost::json::object colors;
    for (auto color : {routing::Color::blue, routing::Color::green}) {
      const auto& pool = color == routing::Color::blue ? svc.blue : svc.green;
      boost::json::array servers;
      for (std::size_t i = 0; i < pool.servers.size() && i < route.pool(color).size(); ++i) {
        servers.push_back({{"address", pool.servers[i].text}, {"state", !route.pool(color)[i].enabled ? "disabled" : route.pool(color)[i].healthy ? "up" : "down"}});
      }
      colors[routing::color_name(color)] = {{"servers", std::move(servers)}};
    }
    const double green = weights::to_percent(route.green_bp);
    services.push_back({{"name", route.name},
                        {"weights", {{"blue", 100.0 - green}, {"green", green}}},
                        {"colors", std::move(colors)}});
  }
  return boost::json::serialize(boost::json::object{{"ok", true}, {"services", std::move(services)}}) + "\n";
}

}  // namespace bgproxy::proxy
