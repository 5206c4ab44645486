#include "bgproxy/routing/decide.hpp"

#include <algorithm>
#include <cctype>

namespace bgproxy::routing {
namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

int match_service(const RoutingTable& table, std::string_view host, std::string_view path) noexcept {
  for (std::size_t i = 0; i < table.services.size(); ++i) {
    const auto& s = table.services[i];
    if (!s.host.empty() && !iequals(s.host, host)) continue;
    if (path.substr(0, s.path_prefix.size()) != s.path_prefix) continue;
    return static_cast<int>(i);
  }
  return -1;
}

std::uint64_t stable_hash(std::string_view key) noexcept {
  // FNV-1a followed by a splitmix64 finaliser: FNV alone spreads short, similar
  // keys (sequential ids) poorly across the low decimal digits used for buckets.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

Decision decide(const ServiceRoute& service, std::uint32_t bucket, std::optional<Color> forced) noexcept {
  Decision d;
  d.color = forced ? *forced : (bucket < service.green_bp ? Color::green : Color::blue);
  if (service.has_usable(d.color)) return d;
  if (service.has_usable(other(d.color))) {
    d.color = other(d.color);
    d.failover = true;
    return d;
  }
  // Panic mode (README "Health checks", Envoy's panic threshold): with no healthy server left
  // anywhere, a possibly-failing server beats a certain 503.
  d.panic = true;
  if (service.has_enabled(d.color)) return d;
  if (service.has_enabled(other(d.color))) {
    d.color = other(d.color);
    d.failover = true;
    return d;
  }
  d.panic = false;
  d.unavailable = true;
  return d;
}

}  // namespace bgproxy::routing
