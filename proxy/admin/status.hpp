#pragma once
/// JSON view of the routing state for the admin listener's GET /status.
/// Thread: control.

#include <string>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"

namespace bgproxy::proxy {

/// {"ok":true,"services":[{"name":..,"weights":{"blue":..,"green":..},
///   "colors":{"blue":{"servers":[{"address":..,"state":"up"}]},"green":{..}}}]}
std::string render_status(const config::Config& cfg, const routing::RoutingTable& table);

}  // namespace bgproxy::proxy
