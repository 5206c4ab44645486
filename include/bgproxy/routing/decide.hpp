#pragma once
/// bgproxy::routing — pure routing decisions: which service, which color.
/// Thread: any. No I/O, no clock, no randomness of its own.

#include <cstdint>
#include <optional>
#include <string_view>

#include "bgproxy/routing/routing_table.hpp"

namespace bgproxy::routing {

/// @return index of the first service whose match accepts host and path, or -1.
/// @param host the Host header without port, any case
int match_service(const RoutingTable& table, std::string_view host, std::string_view path) noexcept;

/// Stable 64-bit hash of a client key (cookie, header value, source IP). Never changes
/// between releases: stickiness across restarts depends on it.
std::uint64_t stable_hash(std::string_view key) noexcept;

/// Bucket in [0, 10000) for a hashed key; green iff bucket < green_bp.
constexpr std::uint32_t bucket_of(std::uint64_t hash) noexcept {
  return static_cast<std::uint32_t>(hash % 10000);
}

struct Decision {
  Color color = Color::blue;
  bool failover = false;   ///< the chosen color had no usable server, the other one is used
  bool panic = false;      ///< no healthy server in either color: serve by admin state alone
  bool unavailable = false;  ///< no enabled server in either color: answer 503
};

/// Chooses the color for one request.
/// @param bucket the client's bucket (bucket_of(stable_hash(key)), or of a random number)
/// @param forced a color forced by an allowed override header
Decision decide(const ServiceRoute& service, std::uint32_t bucket, std::optional<Color> forced) noexcept;

}  // namespace bgproxy::routing
