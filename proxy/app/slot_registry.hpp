#pragma once
/// Stable indexes for worker-local upstream pools and stats shards: the same
/// service name, or the same (service, color, address), gets the same slot in
/// every config generation of a process, and a slot is never reused.
/// Thread: control.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "bgproxy/routing/routing_table.hpp"

namespace bgproxy::proxy {

class SlotRegistry {
 public:
  std::uint32_t service(const std::string& name) { return slot(services_, name); }
  std::uint32_t server(std::string_view service, routing::Color color, std::string_view address) {
    std::string key(service);
    key.append(1, '\0').append(routing::color_name(color)).append(1, '\0').append(address);
    return slot(servers_, key);
  }
  std::size_t services() const noexcept { return services_.size(); }
  std::size_t servers() const noexcept { return servers_.size(); }

 private:
  static std::uint32_t slot(std::map<std::string, std::uint32_t>& m, const std::string& key) {
    return m.try_emplace(key, static_cast<std::uint32_t>(m.size())).first->second;
  }

  std::map<std::string, std::uint32_t> services_;
  std::map<std::string, std::uint32_t> servers_;
};

}  // namespace bgproxy::proxy
