#pragma once
/// One generation of what the workers read and nobody changes: the config, the
/// settings derived from it, the server list and the access logger. A reload
/// builds a new Runtime and publishes it with its first routing table; a request
/// pins the generation it started with, like the table.
/// Thread: any (immutable once published).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "proxy/net/types.hpp"
#include "bgproxy/tls/upstream_tls.hpp"

namespace spdlog {
class logger;
}

namespace bgproxy::proxy {

struct Settings {
  Clock::duration client_header{};
  Clock::duration client_idle{};
  Clock::duration upstream_connect{};
  Clock::duration upstream_response{};
  Clock::duration upstream_idle{};  ///< pooled connections idle longer are not reused
  std::uint64_t max_header_bytes = 0;
  std::uint64_t max_body_bytes = 0;  ///< 0 = unlimited
  std::uint64_t max_connections = 0;
  /// By server id (routing::enumerate_servers): the pool's upstream TLS, null for a plain pool.
  tls::UpstreamTlsServers upstream_tls;
  /// By server id: the pool speaks HTTP/2 to its servers (h2c, or h2 over upstream_tls).
  std::vector<bool> upstream_h2;

  /// @throws TlsLoadError when an upstream CA, client certificate or key cannot be loaded
  static Settings from(const config::Config& cfg);
};

struct Runtime {
  std::uint64_t generation = 0;
  std::shared_ptr<const config::Config> config;
  Settings settings;
  std::vector<routing::ServerInfo> servers;  ///< by server id
  std::vector<tcp::endpoint> endpoints;      ///< by server id, resolved when the generation was built
  std::shared_ptr<spdlog::logger> access_log;  ///< null when `access_log: off`

  /// Worker-local upstream pools and stats shards outlive a generation: they are indexed by
  /// slots, which name the same (service, color, address) in every generation of a process.
  std::vector<std::uint32_t> server_slot;   ///< by server id
  std::vector<std::uint32_t> service_slot;  ///< by service index
  std::size_t server_slots = 0;             ///< slots ever handed out (shards grow to this)
  std::size_t service_slots = 0;
  /// Slots whose pooled upstream connections this generation must not reuse: the address
  /// resolved differently, or the pool speaks TLS (its contexts were loaded again).
  std::vector<std::uint32_t> renewed_slots;
  /// By server slot: consecutive failures (connect, reset, timeout, 5xx) that eject it; 0 = off.
  std::vector<std::uint32_t> passive_threshold;
};

using RuntimeConstSharedPtr = std::shared_ptr<const Runtime>;

/// Open client connections across all workers and generations.
/// Thread: any; touched once per connection, never per request.
class ConnectionLimit {
 public:
  /// @return false (and counts nothing) when `max` connections are already open
  bool acquire(std::uint64_t max) noexcept {
    if (open_.fetch_add(1, std::memory_order_relaxed) >= max) {
      open_.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void release() noexcept { open_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> open_{0};
};

}  // namespace bgproxy::proxy
