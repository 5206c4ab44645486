#pragma once
/// Wires a loaded configuration into a running proxy: binds listeners, starts
/// one Worker per thread, serves the admin listener on the control thread, and
/// handles signals (SIGTERM/SIGINT drain, SIGHUP reload).
/// Thread: control (the thread that calls run()).

#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bgproxy/api/data_plane.hpp"
#include "bgproxy/config/config.hpp"
#include "bgproxy/stats/request_stats.hpp"
#include "proxy/admin/admin_server.hpp"
#include "proxy/net/runtime.hpp"
#include "proxy/net/worker.hpp"

namespace bgproxy::proxy {

class Server final : public api::DataPlane {
 public:
  explicit Server(config::Config cfg);
  ~Server() override;

  /// Resolves backends, binds every listener and creates the workers (not yet running).
  /// @return false (after logging why) when the proxy cannot start
  bool prepare();
  /// Starts the workers and the admin listener; runs until a stop signal has drained them.
  /// @return the process exit code: 0 after a clean drain
  int run();

  /// The control thread's loop, for the control plane to serve on.
  net::io_context& control_context() noexcept { return ioc_; }

  // bgproxy::api::DataPlane
  void publish(routing::RoutingTableConstSharedPtr t, std::function<void()> done) override;
  void collect(std::function<void(stats::RequestStats)> done) override;
  std::string reload() override;
  void add_metrics_source(std::function<std::string()> render) override;
  void on_stop(std::function<void()> stop) override;
  void on_passive_ejection(std::function<void(std::uint32_t server)> eject) override;
  const config::Config& config() const override { return *runtime_.config; }
  const std::vector<routing::ServerInfo>& servers() const override { return runtime_.servers; }

 private:
  void on_signal(int signo);
  /// systemd: RELOADING=1 with MONOTONIC_USEC before a reload, READY=1 after it.
  void notify_reloading();
  std::string reload_config();
  /// systemd: WATCHDOG=1 every WatchdogSec/3, sent only once every worker answered a ping.
  void feed_systemd_watchdog();
  void shutdown();
  /// Loads every TLS listener's certificates again (paths from `next`) and swaps them in.
  /// @return empty, or "tls: cannot load FILE: REASON" with nothing replaced
  std::string reload_certificates(const config::Config& next);
  std::string render_reload_metrics() const;

  net::io_context ioc_{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;  ///< held until workers drained
  Runtime runtime_;
  routing::RoutingTableConstSharedPtr table_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<AdminServer> admin_;
  net::signal_set signals_;
  net::steady_timer shutdown_timer_;
  net::steady_timer watchdog_timer_{ioc_};
  std::vector<std::function<std::string()>> metrics_sources_;
  std::vector<std::function<void()>> stop_hooks_;
  std::function<void(std::uint32_t)> on_ejection_;
  std::vector<std::shared_ptr<TlsListener>> tls_listeners_;  ///< by listener index; null when plain
  std::uint64_t reloads_ok_ = 0;
  std::uint64_t reloads_failed_ = 0;
  std::string listen_text_;
  std::string admin_text_;
  bool ready_ = false;
  bool stopping_ = false;
  int exit_code_ = 0;
};

}  // namespace bgproxy::proxy
