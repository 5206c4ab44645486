#pragma once
/// Wires a loaded configuration into a running proxy: binds listeners, starts
/// one Worker per thread, serves the admin listener on the control thread,
/// handles signals (SIGTERM/SIGINT drain, SIGHUP reload) and applies reloads.
/// Thread: control (the thread that calls run()).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bgproxy/api/data_plane.hpp"
#include "bgproxy/config/config.hpp"
#include "bgproxy/stats/request_stats.hpp"
#include "proxy/admin/admin_server.hpp"
#include "proxy/app/slot_registry.hpp"
#include "proxy/app/systemd_heartbeat.hpp"
#include "proxy/net/runtime.hpp"
#include "proxy/net/worker.hpp"

namespace spdlog::details {
class thread_pool;
}

namespace bgproxy::proxy {

class Server final : public api::DataPlane {
 public:
  explicit Server(config::Config cfg);
  ~Server() override;

  /// Resolves backends, loads certificates, binds every listener and creates the workers
  /// (not yet running).
  /// @param inherited a binary upgrade: listening sockets from the old process, used for the
  /// listeners (and admin address) this config still has; the fds taken are set to -1
  /// @return false (after logging why) when the proxy cannot start
  bool prepare(api::ListeningSockets* inherited = nullptr);
  /// What start_successor() runs: this binary's path (resolved now, so a package upgrade
  /// that replaces the file starts the new one) and the arguments it was started with.
  void set_command_line(std::vector<std::string> argv);
  /// Runs once the workers serve, before READY=1 (a takeover confirms it is done): false
  /// stops this process again, without a word to systemd (it was never the service's main).
  void on_ready(std::function<bool()> ready) { on_ready_ = std::move(ready); }
  /// Starts the workers and the admin listener; runs until a stop signal has drained them.
  /// @return the process exit code: 0 after a clean drain
  int run();

  /// The control thread's loop, for the control plane to serve on.
  net::io_context& control_context() noexcept { return ioc_; }

  // bgproxy::api::DataPlane
  void publish(routing::RoutingTableConstSharedPtr t, std::function<void()> done) override;
  void collect(std::function<void(stats::RequestStats)> done) override;
  void cut_exchanges(int service, routing::Color color, std::function<void(std::uint64_t)> done) override;
  void on_reload(PrepareReload prepare) override { prepare_reload_ = std::move(prepare); }
  void reload(std::function<void(ReloadResult)> done) override;
  void on_reload_signal(std::function<void()> request) override { reload_signal_ = std::move(request); }
  void add_metrics_source(std::function<std::string()> render) override;
  void set_page_data_source(std::function<std::string()> render) override;
  void on_stop(std::function<void()> stop) override;
  void on_passive_ejection(std::function<void(std::uint32_t server)> eject) override;
  api::ListeningSockets listening_sockets() const override;
  std::string start_successor(const std::string& takeover_from, std::function<void()> exited) override;
  void hand_over(std::int32_t new_pid) override;
  const config::Config& config() const override { return *runtime_->config; }
  std::shared_ptr<const config::Config> config_snapshot() const override { return runtime_->config; }
  const std::vector<routing::ServerInfo>& servers() const override { return runtime_->servers; }

 private:
  /// A listener of the running config; every worker accepts on its own socket of it.
  struct ListenerState {
    std::string key;         ///< see listener_keys()
    std::string address;     ///< as the config writes it
    std::string bound_text;  ///< the address actually bound (port 0 resolved)
    std::shared_ptr<TlsListener> tls;  ///< null when plain
    std::vector<int> fds;    ///< the workers' sockets (they own them), for a binary upgrade
    bool h2c = false;        ///< `protocols` lists h2c
    bool http1 = true;       ///< `protocols` lists http/1.1
    ListenerInfo info() const { return ListenerInfo{tls, h2c, http1}; }
  };
  /// A reload's changes, prepared without touching anything that runs.
  struct Staged;

  /// Builds a generation for `cfg`: resolves servers, loads upstream TLS, opens the access log.
  /// @throws std::exception (message says what) when any of it fails
  RuntimeConstSharedPtr make_runtime(std::shared_ptr<const config::Config> cfg, const Runtime* previous);
  /// Binds one SO_REUSEPORT socket per worker for `l`, after taking the `inherited` ones.
  /// @throws boost::system::system_error, TlsLoadError
  std::vector<ListeningSocket> bind_listener_sockets(const config::Listener& l, ListenerState& state,
                                                     std::vector<int> inherited = {});
  std::unique_ptr<AdminServer> make_admin(tcp::acceptor&& bound);
  Staged stage_reload(std::shared_ptr<const config::Config> next);
  void commit_reload(Staged staged, routing::RoutingTableConstSharedPtr table, std::function<void()> control_commit,
                     std::function<void(ReloadResult)> done);
  void reload_now();
  void on_signal(int signo);
  /// systemd: RELOADING=1 with MONOTONIC_USEC before a reload, READY=1 after it.
  void notify_reloading();
  /// systemd: WATCHDOG=1 every WatchdogSec/3, sent only once every worker answered a ping.
  void feed_systemd_watchdog();
  void shutdown();
  std::string render_reload_metrics() const;
  /// Merged worker shards are indexed by slot; the control plane reads them by id.
  stats::RequestStats by_id(const stats::RequestStats& by_slot) const;

  net::io_context ioc_{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;  ///< held until workers drained
  std::shared_ptr<spdlog::details::thread_pool> log_pool_;  ///< the access log's writer; outlives every logger
  std::shared_ptr<const config::Config> initial_config_;
  RuntimeConstSharedPtr runtime_;
  SlotRegistry slots_;
  ConnectionLimit connection_limit_;
  routing::RoutingTableConstSharedPtr table_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<ListenerState> listeners_;
  std::unique_ptr<AdminServer> admin_;
  std::vector<std::unique_ptr<AdminServer>> retired_admins_;  ///< stopped; their sessions may still answer
  net::signal_set signals_;
  net::steady_timer shutdown_timer_;
  net::steady_timer watchdog_timer_{ioc_};
  SystemdHeartbeat heartbeat_;
  std::vector<std::function<std::string()>> metrics_sources_;
  std::function<std::string()> page_data_source_;
  std::vector<std::function<void()>> stop_hooks_;
  std::function<void(std::uint32_t)> on_ejection_;
  PrepareReload prepare_reload_;
  std::function<void()> reload_signal_;
  std::function<bool()> on_ready_;
  std::string exe_path_;
  std::vector<std::string> argv_;
  int admin_fd_ = -1;
  std::uint64_t reloads_ok_ = 0;
  std::uint64_t reloads_failed_ = 0;
  std::string admin_text_;
  bool ready_ = false;
  bool stopping_ = false;
  bool handed_over_ = false;  ///< not systemd's main process (any more): it must not hear that we stop
  int exit_code_ = 0;
};

}  // namespace bgproxy::proxy
