#pragma once
/// What every worker reads and nobody changes while they run: the settings
/// derived from the config, the server list and the access logger.
/// Thread: any (immutable after start, apart from the connection counter).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "proxy/net/types.hpp"
#include "proxy/net/upstream_tls.hpp"

namespace spdlog {
class logger;
}

namespace bgproxy::proxy {

struct Settings {
  Clock::duration client_header{};
  Clock::duration client_idle{};
  Clock::duration upstream_connect{};
  Clock::duration upstream_response{};
  std::uint64_t max_header_bytes = 0;
  std::uint64_t max_body_bytes = 0;  ///< 0 = unlimited
  std::uint64_t max_connections = 0;
  /// By server id (routing::enumerate_servers): the pool's upstream TLS, null for a plain pool.
  UpstreamTlsServers upstream_tls;

  /// @throws TlsLoadError when an upstream CA, client certificate or key cannot be loaded
  static Settings from(const config::Config& cfg);
};

struct Runtime {
  std::shared_ptr<const config::Config> config;
  Settings settings;
  std::vector<routing::ServerInfo> servers;  ///< by server id
  std::vector<tcp::endpoint> endpoints;      ///< by server id, resolved at start
  std::shared_ptr<spdlog::logger> access_log;  ///< null when `access_log: off`
  /// By server id: consecutive failures (connect, reset, timeout, 5xx) that eject it; 0 = off.
  std::vector<std::uint32_t> passive_threshold;
  /// Called on a worker thread when a server reached its threshold there; must only post.
  std::function<void(std::uint32_t server)> report_ejection;

  /// Counts a new client connection across all workers.
  /// @return false (and counts nothing) when max_connections are already open
  bool open_connections_acquire() const noexcept {
    if (open_connections_.fetch_add(1, std::memory_order_relaxed) >= settings.max_connections) {
      open_connections_.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void open_connections_release() const noexcept { open_connections_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  // Touched once per connection, never per request.
  mutable std::atomic<std::uint64_t> open_connections_{0};
};

}  // namespace bgproxy::proxy
