#include "control/core/shadow_ledger.hpp"

namespace bgproxy::control {

void ShadowLedger::observe(const config::Config& cfg, const std::vector<routing::ServiceRoute>& routes,
                           const stats::RequestStats& newest, const std::string& now) {
  views_.resize(cfg.services.size());
  for (std::size_t si = 0; si < cfg.services.size(); ++si) {
    auto& v = views_[si];
    const shadow::ServiceShadowStats empty;
    const auto& cumulative = si < newest.services.size() ? newest.services[si].shadow : empty;
    const auto color = si < routes.size() ? routes[si].shadow_color : routing::Color::green;
    if (v.since.empty()) {
      // The first collection: the counters began with the service, under these settings.
      v.settings = cfg.services[si].shadow;
      v.color = color;
      v.since = now;
    } else if (v.settings != cfg.services[si].shadow || v.color != color) {
      v.settings = cfg.services[si].shadow;
      v.color = color;
      v.since = now;
      v.baseline = cumulative;
    }
    v.counts = shadow::since(cumulative, v.baseline);
    v.report = shadow::report(v.counts, routing::color_name(v.color));
  }
}

const ShadowView& ShadowLedger::view(std::size_t service) const {
  static const ShadowView none;
  return service < views_.size() ? views_[service] : none;
}

std::vector<std::optional<ShadowGate>> shadow_gates(const ShadowLedger& ledger, std::size_t services) {
  std::vector<std::optional<ShadowGate>> out(services);
  for (std::size_t si = 0; si < services; ++si) {
    const auto& v = ledger.view(si);
    if (v.report.pairs == 0) continue;
    ShadowGate g{v.color, v.report.pairs, v.report.mismatch_rate, {}};
    for (const auto& f : v.report.reported_fields) g.fields.append(g.fields.empty() ? "" : ", ").append(f);
    out[si] = std::move(g);
  }
  return out;
}

}  // namespace bgproxy::control
