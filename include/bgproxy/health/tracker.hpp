#pragma once
/// bgproxy::health — per-server health state from active check results and
/// passive failure reports (README "Health checks"). Pure: the caller passes time and results.
/// Thread: control.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"

namespace bgproxy::health {

using Clock = std::chrono::steady_clock;

/// The outcome of one active check.
struct CheckResult {
  bool ok = false;
  unsigned status = 0;            ///< HTTP status, 0 when none was received
  double latency_seconds = 0;
  std::string error;              ///< "timeout after 500ms", "connect: Connection refused", "status 503", ...
};

struct ServerHealth {
  bool up = false;                 ///< servers start down until `rise` successes
  unsigned consecutive_successes = 0;
  unsigned consecutive_failures = 0;
  std::optional<CheckResult> last_check;
  std::optional<Clock::time_point> last_check_time;
  Clock::time_point since{};       ///< when `up` last changed (or tracking began)
  std::uint64_t checks_ok = 0;     ///< totals, for bgproxy_health_checks_total
  std::uint64_t checks_failed = 0;
};

/// A change of a server's state, with the one-line reason to log, e.g.
/// "3 consecutive failures (timeout after 500ms)" or "2 consecutive successes".
struct Transition {
  std::uint32_t server = 0;
  bool up = false;
  std::string reason;
};

class Tracker {
 public:
  /// @param servers every server (routing::enumerate_servers order: ids are positions)
  /// @param cfg for each server's service health_check settings; must outlive the tracker
  Tracker(const config::Config& cfg, std::vector<routing::ServerInfo> servers, Clock::time_point now);

  /// Records an active check. With `health_check: off` for its service this is never called.
  /// @return a transition when the server crossed `rise` or `fall`
  std::optional<Transition> record_check(std::uint32_t server, const CheckResult& r, Clock::time_point now);

  /// The data plane saw `passive_failures` consecutive connect failures, resets or 5xx from
  /// `server`: mark it down until active checks bring it back (rise successes). Ignored when the
  /// service has passive_failures 0 or no active checks.
  std::optional<Transition> record_passive_ejection(std::uint32_t server, Clock::time_point now);

  /// A reload: takes over what `old` knows of every server still configured with the same
  /// service name, color and address and whose service still runs checks; the others keep
  /// their fresh state (down until `rise` successes, or up without checks).
  void carry_over(const Tracker& old);

  /// A binary upgrade: starts from what the previous process knew (`up` or not), as if
  /// the server had just crossed its threshold. Ignored for a service without checks.
  void assume(std::uint32_t server, bool up, Clock::time_point now);

  /// Servers of services with `health_check: off` are always up.
  bool is_up(std::uint32_t server) const noexcept;
  const ServerHealth& at(std::uint32_t server) const { return health_.at(server); }
  std::size_t size() const noexcept { return health_.size(); }
  /// up flag per server id, for building a routing table
  std::vector<bool> up_flags() const;

  /// True when `status` is inside the service's expect_status ranges.
  static bool status_expected(const config::HealthCheck& hc, unsigned status) noexcept;

 private:
  const config::HealthCheck& settings(std::uint32_t server) const;

  const config::Config& cfg_;
  std::vector<routing::ServerInfo> servers_;
  std::vector<ServerHealth> health_;
};

}  // namespace bgproxy::health
