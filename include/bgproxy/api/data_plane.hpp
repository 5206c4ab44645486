#pragma once
/// bgproxy::api — the only channel between the control plane (control/) and
/// the data plane (proxy/). Implemented by proxy/DataPlaneImpl, wired in
/// proxy/main.cpp (Envoy's envoy/ ↔ source/ rule).
/// Thread: control thread only, for every member; callbacks run on it too.

#include <functional>
#include <string>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "bgproxy/stats/request_stats.hpp"

namespace bgproxy::api {

class DataPlane {
 public:
  virtual ~DataPlane() = default;

  /// Gives `t` to every worker; `done` runs once every worker routes by it,
  /// so a change is acknowledged only when it applies to every new request.
  virtual void publish(routing::RoutingTableConstSharedPtr t, std::function<void()> done) = 0;

  /// Merged copy of every worker's request stats.
  virtual void collect(std::function<void(stats::RequestStats)> done) = 0;

  /// Validates and applies the config file again (SIGHUP's work).
  /// @return empty when done, else why it was refused (the running config stays)
  virtual std::string reload() = 0;

  /// Adds Prometheus text (whole metric families) to every /metrics answer.
  virtual void add_metrics_source(std::function<std::string()> render) = 0;

  /// Registers who hears that a worker saw a server fail `passive_failures` times in a row.
  virtual void on_passive_ejection(std::function<void(std::uint32_t server)> eject) = 0;

  /// Registers what to stop when the proxy shuts down (the control socket, timers).
  virtual void on_stop(std::function<void()> stop) = 0;

  virtual const config::Config& config() const = 0;
  /// Every server of every service, by id (routing::enumerate_servers order).
  virtual const std::vector<routing::ServerInfo>& servers() const = 0;
};

}  // namespace bgproxy::api
