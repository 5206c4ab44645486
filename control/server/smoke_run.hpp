#pragma once
/// A release's smoke test (README "Release in one command"): each path asked once, in order, of
/// one server of the color about to get traffic, by the proxy itself — so `bgctl release` works
/// from wherever the control socket is reachable, whatever the backends let in. Any 2xx or 3xx
/// passes. The requests go the way health checks do (server_transport.hpp), not through the
/// workers: no user's request shares a connection with them, and the routing table is not
/// touched before the release is decided.
/// Thread: control.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "bgproxy/tls/upstream_tls.hpp"
#include "control/server/health_transport.hpp"

namespace bgproxy::control {

/// How long one smoke request may take, connect to last byte: far above a health check's,
/// because a smoke path may be a real page of the application.
inline constexpr std::chrono::seconds smoke_timeout{5};

struct SmokeResult {
  std::string path;
  std::string server;    ///< the address asked, as written in the config
  unsigned status = 0;   ///< 0 when no answer arrived
  double latency_seconds = 0;
  std::string error;     ///< why it failed: "status 500", "timeout after 5s", "connect: ..."
  bool ok() const noexcept { return error.empty(); }
};

class SmokeRun : public std::enable_shared_from_this<SmokeRun> {
 public:
  using Done = std::function<void(std::vector<SmokeResult>)>;

  /// @param tls the server's pool TLS settings, null for a plain pool
  SmokeRun(boost::asio::io_context& ioc, std::shared_ptr<const config::Config> cfg, routing::ServerInfo server,
           std::shared_ptr<const tls::UpstreamTlsServer> tls, std::vector<std::string> paths);

  /// Asks every path, stopping at the first failure; `done` gets one result per path asked.
  void start(Done done);

 private:
  void ask_next();
  void finish_one(HealthAnswer answer);

  boost::asio::io_context& ioc_;
  std::shared_ptr<const config::Config> cfg_;  ///< what transport_ refers to
  routing::ServerInfo server_;
  std::shared_ptr<const tls::UpstreamTlsServer> tls_;
  std::vector<std::string> paths_;
  std::vector<SmokeResult> results_;
  std::shared_ptr<HealthTransport> transport_;
  boost::asio::steady_timer deadline_;
  std::chrono::steady_clock::time_point started_{};
  Done done_;
};

}  // namespace bgproxy::control
