#include "control/core/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

namespace bgproxy::control {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

std::string render_metrics(const config::Config& cfg, const State& state, const std::vector<ServiceRuntime>& runtime,
                           const std::vector<routing::ServerInfo>& servers, const health::Tracker* health,
                           const WindowFigures& figures, const FleetView* fleet) {
  MetricFamily switches{"bgproxy_switches_total", "Accepted weight changes.", MetricType::Counter, {}};
  MetricFamily rollbacks{"bgproxy_rollbacks_total", "Rollbacks, by reason.", MetricType::Counter, {}};
  for (std::size_t si = 0; si < cfg.services.size(); ++si) {
    ClientMetric s;
    s.label = {{"service", cfg.services[si].name}};
    s.counter.value = static_cast<double>(runtime[si].switches);
    switches.metric.push_back(std::move(s));
    // No reason="health" (README "Metrics"): health never rolls a service back. Requests for a
    // color with no healthy server fail over to the other color one by one
    // (bgproxy_failovers_total) while the weights stay; only the watchdog and an operator
    // (rollback, canary abort) move them back. A series that could only ever read 0 would suggest
    // otherwise.
    for (const auto& [reason, count] : {std::pair{"manual", runtime[si].manual_rollbacks},
                                        std::pair{"watchdog", runtime[si].watchdog_rollbacks}}) {
      ClientMetric r;
      r.label = {{"service", cfg.services[si].name}, {"reason", reason}};
      r.counter.value = static_cast<double>(count);
      rollbacks.metric.push_back(std::move(r));
    }
  }
  MetricFamily up{"bgproxy_server_up", "1 when the server passes its health checks.", MetricType::Gauge, {}};
  MetricFamily checks{"bgproxy_health_checks_total", "Active health checks, by result.", MetricType::Counter, {}};
  for (const auto& s : servers) {
    const std::vector<ClientMetric::Label> labels{{"service", cfg.services[s.service].name},
                                                  {"color", std::string(routing::color_name(s.color))},
                                                  {"server", s.endpoint.text}};
    ClientMetric u;
    u.label = labels;
    u.gauge.value = health && health->is_up(s.id) ? 1.0 : 0.0;
    up.metric.push_back(std::move(u));
    if (!health || !cfg.services[s.service].health_check.enabled) continue;
    for (const bool ok : {true, false}) {
      ClientMetric c;
      c.label = labels;
      c.label.push_back({"result", ok ? "success" : "failure"});
      const auto& h = health->at(s.id);
      c.counter.value = static_cast<double>(ok ? h.checks_ok : h.checks_failed);
      checks.metric.push_back(std::move(c));
    }
  }
  MetricFamily error_rate{"bgproxy_watchdog_error_rate", "Error rate over the watchdog window.", MetricType::Gauge,
                          {}};
  MetricFamily p95{"bgproxy_watchdog_p95_seconds", "p95 request duration over the watchdog window.",
                   MetricType::Gauge, {}};
  MetricFamily phase{"bgproxy_rollout_phase", "1 for the rollout phase each service is in.", MetricType::Gauge, {}};
  for (std::size_t si = 0; si < cfg.services.size(); ++si) {
    for (auto color : {routing::Color::blue, routing::Color::green}) {
      const std::vector<ClientMetric::Label> labels{{"service", cfg.services[si].name},
                                                    {"color", std::string(routing::color_name(color))}};
      const auto w = si < figures.size() ? figures[si][static_cast<std::size_t>(color)] : stats::ColorWindow{};
      ClientMetric e;
      e.label = labels;
      e.gauge.value = w.error_rate;
      error_rate.metric.push_back(std::move(e));
      ClientMetric q;
      q.label = labels;
      q.gauge.value = w.p95_seconds;
      p95.metric.push_back(std::move(q));
    }
    for (auto p : {Phase::idle, Phase::canary, Phase::baking, Phase::promoted, Phase::rolled_back, Phase::paused}) {
      ClientMetric m;
      m.label = {{"service", cfg.services[si].name}, {"phase", std::string(phase_name(p))}};
      m.gauge.value = state.services[si].phase == p ? 1.0 : 0.0;
      phase.metric.push_back(std::move(m));
    }
  }
  std::vector<MetricFamily> families{switches, rollbacks, up, checks, error_rate, p95, phase};
  // The sequential watchdog's evidence (SPEC §16), while a rollout is watched: bad reaching
  // 1/alpha rolls back, good reaching it passes the step.
  MetricFamily evidence{"bgproxy_watchdog_evidence",
                        "Sequential watchdog evidence per rule: direction bad (target worse than its limit) or good.",
                        MetricType::Gauge, {}};
  for (std::size_t si = 0; si < cfg.services.size() && si < runtime.size(); ++si) {
    if (!runtime[si].sequential) continue;
    const auto ev = runtime[si].sequential->analysis.evidence();
    for (std::size_t r = 0; r < ev.rules.size(); ++r) {
      for (const auto& [direction, log_e] :
           {std::pair{"bad", ev.rules[r].log_bad}, std::pair{"good", ev.rules[r].log_good}}) {
        ClientMetric m;
        m.label = {{"service", cfg.services[si].name},
                   {"rule", watchdog::sequential_rule_names[r]},
                   {"direction", direction}};
        m.gauge.value = std::exp(std::clamp(log_e, -690.0, 690.0));
        evidence.metric.push_back(std::move(m));
      }
    }
  }
  if (!evidence.metric.empty()) families.push_back(std::move(evidence));
  if (fleet != nullptr) {
    MetricFamily connected{"bgproxy_cluster_connected", "1 while this instance reaches etcd and watches it.",
                           MetricType::Gauge, {}};
    connected.metric.emplace_back().gauge.value = fleet->connected ? 1.0 : 0.0;
    MetricFamily members{"bgproxy_cluster_members", "Fleet members with a live lease, this one included.",
                         MetricType::Gauge, {}};
    members.metric.emplace_back().gauge.value = static_cast<double>(fleet->members.size());
    MetricFamily revision{"bgproxy_cluster_revision", "The etcd revision of the service state this instance routes by.",
                          MetricType::Gauge, {}};
    MetricFamily conflicts{"bgproxy_cluster_conflicts_total",
                           "Changes that lost a compare-and-swap to another member's.", MetricType::Counter, {}};
    for (std::size_t si = 0; si < cfg.services.size(); ++si) {
      auto& r = revision.metric.emplace_back();
      r.label = {{"service", cfg.services[si].name}};
      r.gauge.value = si < fleet->service_revisions.size() ? static_cast<double>(fleet->service_revisions[si]) : 0.0;
      auto& c = conflicts.metric.emplace_back();
      c.label = {{"service", cfg.services[si].name}};
      c.counter.value = si < fleet->conflicts.size() ? static_cast<double>(fleet->conflicts[si]) : 0.0;
    }
    families.insert(families.end(), {connected, revision, members, conflicts});
  }
  return prometheus::TextSerializer().Serialize(families);
}

std::string render_notification_metrics(const NotificationCounts& c) {
  MetricFamily f{"bgproxy_notifications_total", "Webhook notifications, by result.", MetricType::Counter, {}};
  for (const auto& [result, count] : {std::pair{"sent", c.sent}, std::pair{"failed", c.failed},
                                      std::pair{"dropped", c.dropped}, std::pair{"retried", c.retried}}) {
    ClientMetric m;
    m.label = {{"result", result}};
    m.counter.value = static_cast<double>(count);
    f.metric.push_back(std::move(m));
  }
  return prometheus::TextSerializer().Serialize({f});
}

}  // namespace bgproxy::control
