#pragma once
/// Renders the metrics (README "Metrics") from the merged worker stats, in Prometheus text
/// format (prometheus-cpp's model and serializer; we serve it ourselves).
/// Thread: control.

#include <string>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "bgproxy/stats/request_stats.hpp"

namespace bgproxy::proxy {

struct MetricsInput {
  const config::Config& config;
  const std::vector<routing::ServerInfo>& servers;
  const routing::RoutingTable& table;
  const stats::RequestStats& stats;
};

std::string render_metrics(const MetricsInput& in);

}  // namespace bgproxy::proxy
