#pragma once
/// bgproxy::routing — the immutable routing snapshot that workers route by.
/// Built on the control thread, published to every worker as a shared_ptr to
/// const; a request pins the snapshot it started with (docs/architecture.md).
/// Thread: any (immutable after construction).

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bgproxy/config/config.hpp"

namespace bgproxy::routing {

enum class Color : std::uint8_t { blue = 0, green = 1 };

constexpr std::string_view color_name(Color c) noexcept { return c == Color::blue ? "blue" : "green"; }
constexpr Color other(Color c) noexcept { return c == Color::blue ? Color::green : Color::blue; }

/// One backend server. `id` indexes the process-wide server list, which is also
/// how worker-local upstream pools and stats shards address it.
struct ServerRoute {
  std::uint32_t id = 0;
  bool enabled = true;  ///< not disabled or draining by an operator
  bool healthy = true;  ///< up by its health checks (always, with `health_check: off`)
  bool usable() const noexcept { return enabled && healthy; }
};

struct ServiceRoute {
  std::string name;
  std::string host;          ///< lower-case; empty = any host
  std::string path_prefix;
  std::uint32_t green_bp = 0;  ///< 0..10000
  config::Sticky sticky;
  config::Override override_color;
  bool expose_color_header = true;
  bool grpc = false;  ///< errors are read from grpc-status (config::Service::grpc)
  config::Shadow shadow;  ///< what is mirrored (SPEC §14); percent_bp 0 = nothing
  /// Where shadows go: the color with no traffic, else the rollout target (set by the control
  /// plane; build_table() picks the color with the smaller weight).
  Color shadow_color = Color::green;
  std::array<std::vector<ServerRoute>, 2> servers;  ///< indexed by Color

  const std::vector<ServerRoute>& pool(Color c) const noexcept {
    return servers[static_cast<std::size_t>(c)];
  }
  bool has_usable(Color c) const noexcept;
  bool has_enabled(Color c) const noexcept;
};

struct RoutingTable {
  std::uint64_t version = 0;
  std::vector<ServiceRoute> services;
};

using RoutingTableConstSharedPtr = std::shared_ptr<const RoutingTable>;

/// A server as the data plane needs to reach and label it.
struct ServerInfo {
  std::uint32_t id = 0;
  std::uint32_t service = 0;  ///< index into Config::services
  Color color = Color::blue;
  config::Endpoint endpoint;
};

/// Flattens every service's blue then green servers into one list; ids are positions.
std::vector<ServerInfo> enumerate_servers(const config::Config& cfg);

/// Builds a snapshot from the config with the given green weights (one per service, basis points).
/// Every server starts enabled and healthy; admin state and health adjust them later.
RoutingTable build_table(const config::Config& cfg, const std::vector<std::uint32_t>& green_bp,
                         std::uint64_t version);

}  // namespace bgproxy::routing
