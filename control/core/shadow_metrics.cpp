#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "control/core/metrics.hpp"

namespace bgproxy::control {

std::string render_shadow_metrics(const config::Config& cfg, const stats::RequestStats* newest) {
  using prometheus::ClientMetric;
  prometheus::MetricFamily requests{"bgproxy_shadow_requests_total",
                                    "Mirrored requests, by the color they went to and what became of them.",
                                    prometheus::MetricType::Counter, {}};
  prometheus::MetricFamily mismatches{"bgproxy_shadow_mismatches_total",
                                      "Mirrored pairs (across colors) whose field differed.",
                                      prometheus::MetricType::Counter, {}};
  for (std::size_t si = 0; newest && si < cfg.services.size() && si < newest->services.size(); ++si) {
    const auto& name = cfg.services[si].name;
    const auto& s = newest->services[si].shadow;
    bool any = false;
    for (const auto& by_color : s.requests)
      for (auto n : by_color) any = any || n != 0;
    if (!any && cfg.services[si].shadow.percent_bp == 0) continue;
    for (auto color : {routing::Color::blue, routing::Color::green}) {
      for (std::size_t r = 0; r < shadow::result_names.size(); ++r) {
        ClientMetric m;
        m.label = {{"service", name}, {"color", std::string(routing::color_name(color))}, {"result", shadow::result_names[r]}};
        m.counter.value = static_cast<double>(s.requests[static_cast<std::size_t>(color)][r]);
        requests.metric.push_back(std::move(m));
      }
    }
    for (const auto& [field, counts] : s.fields) {
      if (counts.differing == 0) continue;
      ClientMetric m;
      m.label = {{"service", name}, {"field", field}};
      m.counter.value = static_cast<double>(counts.differing);
      mismatches.metric.push_back(std::move(m));
    }
  }
  if (requests.metric.empty()) return {};
  return prometheus::TextSerializer().Serialize({requests, mismatches});
}

}  // namespace bgproxy::control
