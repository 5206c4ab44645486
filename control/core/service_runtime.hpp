#pragma once
/// bgproxy::control — what the control server keeps per configured service beside the stored
/// state: the counters behind /metrics, the watchdog's last verdict, the rollout loop's
/// bookkeeping and panic mode. One ServiceRuntime per service, in one vector indexed like
/// Config::services; a reload renumbers it by service name (ServiceRenumbering), and the stats
/// history with it.
/// Pure. Thread: control.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "bgproxy/watchdog/policy.hpp"
#include "bgproxy/watchdog/sequential.hpp"
#include "control/core/sequential_track.hpp"

namespace bgproxy::control {

struct ServiceRuntime {
  std::uint64_t switches = 0;            ///< accepted weight changes (bgproxy_switches_total)
  std::uint64_t manual_rollbacks = 0;    ///< bgproxy_rollbacks_total{reason="manual"}
  std::uint64_t watchdog_rollbacks = 0;  ///< bgproxy_rollbacks_total{reason="watchdog"}
  std::string verdict;                   ///< the watchdog's last verdict, for status ("" = not watching)
  bool rollout_queued = false;           ///< a rollout step waits in the command queue
  /// The failing rule a dry run last logged, so it says so once per rule rather than every second.
  watchdog::Rule dry_run_logged = watchdog::Rule::none;
  bool panic = false;                    ///< in panic mode (in_panic) at the last health change
  /// watchdog.method sequential: the rollout's evidence; empty while the service is not watched.
  std::optional<SequentialTrack> sequential;
};

/// No usable server in either color: routing then serves every enabled server (panic mode,
/// README "Health checks").
bool in_panic(const routing::ServiceRoute& route) noexcept;

/// The watchdog's last verdict per service, as status answers take them.
std::vector<std::string> verdicts(const std::vector<ServiceRuntime>& runtime);
/// The sequential watchdog's evidence per service (empty where it is not watching).
std::vector<std::optional<watchdog::Evidence>> evidences(const std::vector<ServiceRuntime>& runtime);

/// How a reload renumbers services: each service of the new config takes what the old config's
/// service of the same name had; a service the old config did not have starts afresh.
class ServiceRenumbering {
 public:
  ServiceRenumbering(const config::Config& before, const config::Config& after);

  /// @param by_old_index indexed like `before`'s services (entries beyond them are ignored)
  /// @return indexed like `after`'s services, `fresh` for the new ones
  template <class T>
  std::vector<T> apply(const std::vector<T>& by_old_index, const T& fresh = T{}) const {
    std::vector<T> out;
    out.reserve(old_index_.size());
    for (const auto& old : old_index_) {
      out.push_back(old && *old < by_old_index.size() ? by_old_index[*old] : fresh);
    }
    return out;
  }

 private:
  std::vector<std::optional<std::size_t>> old_index_;  ///< by new index
};

}  // namespace bgproxy::control
