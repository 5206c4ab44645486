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

#include "bgproxy/config/config.hpp"
#include "bgproxy/stats/request_stats.hpp"
#include "proxy/admin/admin_server.hpp"
#include "proxy/net/runtime.hpp"
#include "proxy/net/worker.hpp"

namespace bgproxy::proxy {

class Server {
 public:
  explicit Server(config::Config cfg);
  ~Server();

  /// Runs until a stop signal has drained the workers.
  /// @return the process exit code: 0 after a clean drain, 1 when start-up failed
  int run();

 private:
  bool start();
  void collect(std::function<void(stats::RequestStats)> done);
  void on_signal(int signo);
  void shutdown();
  void reload();

  net::io_context ioc_{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;  ///< held until workers drained
  Runtime runtime_;
  routing::RoutingTableConstSharedPtr table_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<AdminServer> admin_;
  net::signal_set signals_;
  net::steady_timer shutdown_timer_;
  bool ready_ = false;
  bool stopping_ = false;
  int exit_code_ = 0;
};

}  // namespace bgproxy::proxy
