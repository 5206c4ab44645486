#include "control/core/service_runtime.hpp"

namespace bgproxy::control {

bool in_panic(const routing::ServiceRoute& route) noexcept {
  return !route.has_usable(routing::Color::blue) && !route.has_usable(routing::Color::green);
}

std::vector<std::string> verdicts(const std::vector<ServiceRuntime>& runtime) {
  std::vector<std::string> out;
  out.reserve(runtime.size());
  for (const auto& r : runtime) out.push_back(r.verdict);
  return out;
}

std::vector<std::optional<watchdog::Evidence>> evidences(const std::vector<ServiceRuntime>& runtime) {
  std::vector<std::optional<watchdog::Evidence>> out;
  out.reserve(runtime.size());
  for (const auto& r : runtime) {
    if (r.sequential) out.emplace_back(r.sequential->analysis.evidence());
    else out.emplace_back();
  }
  return out;
}

ServiceRenumbering::ServiceRenumbering(const config::Config& before, const config::Config& after)
    : old_index_(after.services.size()) {
  for (std::size_t i = 0; i < after.services.size(); ++i) {
    for (std::size_t o = 0; o < before.services.size(); ++o) {
      if (before.services[o].name == after.services[i].name) old_index_[i] = o;
    }
  }
}

}  // namespace bgproxy::control
