#pragma once
/// bgproxy::api — the only channel between the control plane (control/) and
/// the data plane (proxy/). Implemented by proxy/app/Server, wired in
/// proxy/main.cpp (Envoy's envoy/ ↔ source/ rule).
/// Thread: control thread only, for every member; callbacks run on it too.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "bgproxy/stats/request_stats.hpp"

namespace bgproxy::api {

/// The listening sockets a new bgproxy process takes over in a binary upgrade (fd passing).
struct ListeningSockets {
  struct Listener {
    std::string address;  ///< as the config writes it ("0.0.0.0:8080")
    std::vector<int> fds;  ///< one SO_REUSEPORT socket per worker
  };
  std::vector<Listener> listeners;
  std::string admin_address;  ///< as the config writes it
  int admin_fd = -1;
};

class DataPlane {
 public:
  virtual ~DataPlane() = default;

  /// Gives `t` to every worker; `done` runs once every worker routes by it,
  /// so a change is acknowledged only when it applies to every new request.
  virtual void publish(routing::RoutingTableConstSharedPtr t, std::function<void()> done) = 0;

  /// Merged copy of every worker's request stats.
  virtual void collect(std::function<void(stats::RequestStats)> done) = 0;

  /// Cuts every exchange in flight to `color` of `service` (`bgctl rollback --drain`): one not
  /// answered yet gets a 503 (gRPC: UNAVAILABLE), one answering is closed (HTTP/2: its stream is
  /// reset), a tunnel is closed. `done` gets how many were cut, once every worker has cut its own.
  virtual void cut_exchanges(int service, routing::Color color, std::function<void(std::uint64_t)> done) = 0;

  /// What the control plane makes of a config that a reload is about to apply.
  struct ReloadPlan {
    std::string error;  ///< non-empty: the reload is refused and nothing changes
    routing::RoutingTableConstSharedPtr table;  ///< the new config's first table (carried-over state)
    /// Runs once the data plane has switched to the new config (config() and servers() are the
    /// new ones), before anything else can publish; must not publish itself.
    std::function<void()> commit;
  };
  using PrepareReload = std::function<ReloadPlan(std::shared_ptr<const config::Config> next,
                                                 const std::vector<routing::ServerInfo>& servers)>;

  /// Registers the control plane's part of a reload.
  virtual void on_reload(PrepareReload prepare) = 0;

  struct ReloadResult {
    bool applied = false;
    /// Refused: why (nothing changed). Applied: what the reload left as it was and why
    /// ("threads: ... applies at the next restart"), or empty.
    std::string message;
  };

  /// Reads the config file again and applies it as one step (SIGHUP's work): parsed and
  /// validated, servers resolved, certificates loaded and new listeners bound first; then the
  /// control plane's plan; then every worker switches. `done` runs once every worker routes by
  /// the new config, or at once when it is refused.
  virtual void reload(std::function<void(ReloadResult)> done) = 0;

  /// Registers who queues a reload asked for by SIGHUP behind running control commands.
  virtual void on_reload_signal(std::function<void()> request) = 0;

  /// Adds Prometheus text (whole metric families) to every /metrics answer.
  virtual void add_metrics_source(std::function<std::string()> render) = 0;

  /// Registers who writes the JSON the admin web page polls (GET /ui/data).
  virtual void set_page_data_source(std::function<std::string()> render) = 0;

  /// Registers who hears that a worker saw a server fail `passive_failures` times in a row.
  virtual void on_passive_ejection(std::function<void(std::uint32_t server)> eject) = 0;

  /// The sockets to pass to a new process; they stay owned (and open) here.
  virtual ListeningSockets listening_sockets() const = 0;

  /// Starts this binary again (same path and arguments) to take over from this process through
  /// the control socket at `takeover_from` (the new process must not start on its own).
  /// @param exited runs (on the control thread) when the new process has exited, whenever
  /// that is: before it took over, the upgrade failed
  /// @return empty once it was started, else why not
  virtual std::string start_successor(const std::string& takeover_from, std::function<void()> exited) = 0;

  /// A new process serves on our sockets: tell systemd it is the main process now, stop
  /// accepting, let in-flight requests finish, then exit 0 (the stop hooks run as for SIGTERM).
  virtual void hand_over(std::int32_t new_pid) = 0;

  /// Registers what to stop when the proxy shuts down (the control socket, timers).
  virtual void on_stop(std::function<void()> stop) = 0;

  virtual const config::Config& config() const = 0;
  /// The running config, shared: it stays valid across a reload for whoever holds it.
  virtual std::shared_ptr<const config::Config> config_snapshot() const = 0;
  /// Every server of every service, by id (routing::enumerate_servers order).
  virtual const std::vector<routing::ServerInfo>& servers() const = 0;
};

}  // namespace bgproxy::api
