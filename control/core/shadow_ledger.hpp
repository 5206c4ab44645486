#pragma once
/// bgproxy::control — shadow traffic as the control plane reports it (README "Shadow traffic"):
/// per service, what was mirrored and compared since the comparison began, and its report. The
/// workers' counters are cumulative; the first comparison takes them all (they began with the
/// service), and a comparison begins again (from a baseline: the counts at that moment) whenever
/// the service's shadow color or `shadow:` settings change, so a report never mixes
/// green-vs-blue with blue-vs-green, or two configurations.
/// Pure: the caller passes each collection and the time. Thread: control.

#include <cstddef>
#include <string>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"
#include "bgproxy/shadow/report.hpp"
#include "bgproxy/shadow/shadow_stats.hpp"
#include "bgproxy/stats/request_stats.hpp"
#include "control/core/controller.hpp"
#include "control/core/service_runtime.hpp"

namespace bgproxy::control {

/// One service's comparison.
struct ShadowView {
  config::Shadow settings;  ///< the settings it runs under
  routing::Color color = routing::Color::green;  ///< where the shadows go
  std::string since;  ///< RFC 3339 time the comparison began ("" before the first collection)
  shadow::ServiceShadowStats baseline;  ///< the cumulative counts when it began
  shadow::ServiceShadowStats counts;    ///< counted since
  shadow::Report report;                ///< of `counts`
};

class ShadowLedger {
 public:
  /// Takes a collection. @param routes the current routing table's services, indexed like
  /// cfg.services (their shadow color); @param now RFC 3339, for a comparison that begins now
  void observe(const config::Config& cfg, const std::vector<routing::ServiceRoute>& routes,
               const stats::RequestStats& newest, const std::string& now);

  /// The service's comparison; a default one before the first collection.
  const ShadowView& view(std::size_t service) const;

  /// A reload: each comparison follows its service by name; a new service starts with none.
  void renumber(const ServiceRenumbering& renumbering) { views_ = renumbering.apply(views_); }

 private:
  std::vector<ShadowView> views_;  ///< by service
};

/// What the gate of `canary start` and `release` reads, per service of `services` (nullopt where
/// nothing was compared since the comparison began).
std::vector<std::optional<ShadowGate>> shadow_gates(const ShadowLedger& ledger, std::size_t services);

}  // namespace bgproxy::control
