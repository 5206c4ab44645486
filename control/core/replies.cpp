#include "control/core/replies.hpp"

#include <cmath>

#include <boost/json.hpp>

#include "bgproxy/weights/basis_points.hpp"
#include "control/core/evidence_json.hpp"
#include "control/core/json_line.hpp"
#include "control/core/shadow_reply.hpp"

namespace bgproxy::control {
namespace json = boost::json;
namespace {

json::object weights_json(const Weights& w) {
  return {{"blue", weights::to_percent(weights::full_bp - w.green_bp)}, {"green", weights::to_percent(w.green_bp)}};
}

const config::Pool& pool_of(const config::Service& s, routing::Color c) {
  return c == routing::Color::blue ? s.blue : s.green;
}

AdminState admin_of(const ServiceState& ss, const std::string& address) {
  const auto it = ss.servers.find(address);
  return it == ss.servers.end() ? AdminState::enabled : it->second;
}

/// First server id of each service (routing::enumerate_servers numbers blue then green).
std::uint32_t first_server_id(const config::Config& cfg, std::size_t service) {
  std::uint32_t id = 0;
  for (std::size_t si = 0; si < service; ++si) {
    id += static_cast<std::uint32_t>(cfg.services[si].blue.servers.size() + cfg.services[si].green.servers.size());
  }
  return id;
}

bool is_up(const health::Tracker* health, std::uint32_t id) { return !health || health->is_up(id); }

json::object watchdog_json(const config::Watchdog& w, const std::string* verdict,
                           const std::optional<watchdog::Evidence>* evidence) {
  json::object o{{"enabled", w.enabled},
                 {"dry_run", w.dry_run},
                 {"method", w.method == config::WatchdogMethod::sequential ? "sequential" : "threshold"},
                 {"alpha", w.alpha},
                 {"window_seconds", w.window.count() / 1000.0},
                 {"min_requests", w.min_requests},
                 {"max_error_rate", w.max_error_rate},
                 {"max_p95_seconds", w.max_p95.count() / 1000.0},
                 {"max_error_rate_delta", w.max_error_rate_delta},
                 {"max_p95_ratio", w.max_p95_ratio},
                 {"bake_seconds", w.bake_time.count() / 1000.0}};
  if (verdict && !verdict->empty()) o["verdict"] = *verdict;
  else o["verdict"] = nullptr;
  if (w.method == config::WatchdogMethod::sequential) {
    if (evidence && *evidence) o["evidence"] = evidence_json(**evidence);
    else o["evidence"] = nullptr;
  }
  return o;
}

json::object service_json(const Controller& c, std::size_t si, const WindowFigures& figures,
                          const health::Tracker* health, const std::vector<std::string>* verdicts,
                          const Evidences* evidences) {
  const auto& svc = c.config().services[si];
  const auto& ss = c.state().services[si];
  json::object colors;
  std::uint32_t id = first_server_id(c.config(), si);
  for (auto color : {routing::Color::blue, routing::Color::green}) {
    json::array servers;
    for (const auto& ep : pool_of(svc, color).servers) {
      servers.push_back({{"address", ep.text}, {"state", server_state_name(admin_of(ss, ep.text), is_up(health, id++))}});
    }
    json::object obj{{"servers", std::move(servers)}};
    if (si < figures.size()) {
      const auto& w = figures[si][static_cast<std::size_t>(color)];
      obj["rps"] = std::round(w.rps * 100) / 100;
      obj["requests"] = w.requests;
      obj["error_rate"] = w.error_rate;
      obj["p95_seconds"] = w.p95_seconds;
      // Counted in `requests`, not in p95 (SPEC §13): only a gRPC service has them.
      if (svc.grpc) obj["streaming_calls"] = w.streaming_calls;
    }
    colors[routing::color_name(color)] = std::move(obj);
  }
  json::object out{{"name", svc.name},
                   {"weights", weights_json(ss.weights)},
                   {"stable", weights_json(ss.stable)},
                   {"phase", phase_name(ss.phase)},
                   {"step", ss.step},
                   {"reason", ss.reason},
                   {"colors", std::move(colors)},
                   {"watchdog",
                    watchdog_json(svc.watchdog, verdicts && si < verdicts->size() ? &(*verdicts)[si] : nullptr,
                                  evidences && si < evidences->size() ? &(*evidences)[si] : nullptr)}};
  if (ss.target) out["target"] = routing::color_name(*ss.target);
  else out["target"] = nullptr;
  if (!ss.canary_steps_bp.empty()) {
    json::array steps;
    for (auto s : ss.canary_steps_bp) steps.push_back(weights::to_percent(s));
    out["canary"] = {{"steps", std::move(steps)}, {"interval_seconds", ss.canary_interval_ms / 1000.0}};
  }
  return out;
}

std::string line(const json::object& o) { return to_line(o); }

}  // namespace

std::string status_reply(const Controller& c, int service, const WindowFigures& figures,
                         const health::Tracker* health, const std::vector<std::string>* verdicts,
                         const FleetView* fleet, const Evidences* evidences, const ShadowLedger* shadows) {
  json::array services;
  for (std::size_t si = 0; si < c.config().services.size(); ++si) {
    if (service >= 0 && static_cast<std::size_t>(service) != si) continue;
    auto s = service_json(c, si, figures, health, verdicts, evidences);
    if (shadows) s["shadow"] = shadow_summary_json(shadows->view(si));
    if (fleet && si < fleet->service_revisions.size()) s["revision"] = fleet->service_revisions[si];
    services.push_back(std::move(s));
  }
  json::object out{{"ok", true}, {"services", std::move(services)}};
  if (fleet) {
    json::array members;
    for (const auto& m : fleet->members) {
      members.push_back(
          {{"instance", m.instance}, {"address", m.address}, {"revision", m.revision}, {"connected", m.connected}});
    }
    out["fleet"] = {{"connected", fleet->connected},
                    {"instance", fleet->instance},
                    {"revision", fleet->revision},
                    {"members", std::move(members)}};
  }
  return line(out);
}

std::string health_reply(const Controller& c, int service, const health::Tracker* health,
                         health::Clock::time_point now, const std::vector<stats::ServerStats>* servers_stats) {
  json::array services;
  for (std::size_t si = 0; si < c.config().services.size(); ++si) {
    if (service >= 0 && static_cast<std::size_t>(service) != si) continue;
    const auto& svc = c.config().services[si];
    const auto& ss = c.state().services[si];
    json::array servers;
    std::uint32_t id = first_server_id(c.config(), si);
    for (auto color : {routing::Color::blue, routing::Color::green}) {
      for (const auto& ep : pool_of(svc, color).servers) {
        json::object server{{"color", routing::color_name(color)},
                            {"address", ep.text},
                            {"state", server_state_name(admin_of(ss, ep.text), is_up(health, id))},
                            {"consecutive_failures", 0},
                            {"consecutive_successes", 0},
                            {"last_check", nullptr}};
        // Issue 19: the idle age after which bgproxy retires pooled connections to this server,
        // learned from the backend closing them; absent while nothing was learned.
        if (servers_stats && id < servers_stats->size() && (*servers_stats)[id].learned_idle_us != 0) {
          server["learned_idle_seconds"] = static_cast<double>((*servers_stats)[id].learned_idle_us) / 1e6;
        }
        if (health && svc.health_check.enabled) {
          const auto& h = health->at(id);
          server["consecutive_failures"] = h.consecutive_failures;
          server["consecutive_successes"] = h.consecutive_successes;
          server["since_seconds"] = std::chrono::duration<double>(now - h.since).count();
          if (h.last_check) {
            json::object last{{"ok", h.last_check->ok},
                              {"status", h.last_check->status},
                              {"latency_seconds", h.last_check->latency_seconds}};
            if (!h.last_check->error.empty()) last["error"] = h.last_check->error;
            server["last_check"] = std::move(last);
          }
        }
        servers.push_back(std::move(server));
        ++id;
      }
    }
    services.push_back({{"name", svc.name}, {"health_check", svc.health_check.enabled}, {"servers", std::move(servers)}});
  }
  return line({{"ok", true}, {"services", std::move(services)}});
}

std::string history_reply(const State& s, std::string_view service, std::size_t limit) {
  json::array entries;
  // Newest `limit` entries of the service, returned oldest first.
  std::vector<const HistoryEntry*> picked;
  for (auto it = s.history.rbegin(); it != s.history.rend() && picked.size() < limit; ++it) {
    if (service.empty() || it->service == service) picked.push_back(&*it);
  }
  for (auto it = picked.rbegin(); it != picked.rend(); ++it) {
    const auto& e = **it;
    json::object entry{{"time", e.time},
                       {"service", e.service},
                       {"command", e.command},
                       {"args", e.args},
                       {"by", {{"uid", e.uid}, {"pid", e.pid}}},
                       {"reason", e.reason},
                       {"before", weights_json(e.before)},
                       {"after", weights_json(e.after)}};
    if (!e.instance.empty()) entry["instance"] = e.instance;
    if (e.local) entry["local"] = true;
    entries.push_back(std::move(entry));
  }
  return line({{"ok", true}, {"history", std::move(entries)}});
}

std::string change_reply(const Controller& c, int service, const WindowFigures& figures,
                         const health::Tracker* health, const std::vector<std::string>* verdicts) {
  return line(
      {{"ok", true},
       {"state", service_json(c, static_cast<std::size_t>(service), figures, health, verdicts, nullptr)}});
}

std::string ok_reply(std::string_view message) { return line({{"ok", true}, {"message", message}}); }

std::string error_reply(std::string_view message) { return line({{"ok", false}, {"error", message}}); }

}  // namespace bgproxy::control
