#include "control/core/controller.hpp"

#include <algorithm>
#include <cstdio>

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

#include "bgproxy/weights/basis_points.hpp"

namespace bgproxy::control {
namespace {

const config::Pool& pool_of(const config::Service& s, routing::Color c) {
  return c == routing::Color::blue ? s.blue : s.green;
}

bool at_endpoint(const Weights& w) noexcept { return w.green_bp == 0 || w.green_bp == weights::full_bp; }

/// A change's history entry; the fleet fields (instance, local) are the control server's to set.
HistoryEntry history_entry(std::string_view now, const std::string& service, std::string command,
                           boost::json::object args, const Peer& peer, std::string reason, Weights before,
                           Weights after) {
  HistoryEntry e;
  e.time = now;
  e.service = service;
  e.command = std::move(command);
  e.args = std::move(args);
  e.uid = peer.uid;
  e.pid = peer.pid;
  e.reason = std::move(reason);
  e.before = before;
  e.after = after;
  return e;
}

/// A history entry's args with "force":true added when the operator forced the change.
boost::json::object with_force(boost::json::object args, bool force) {
  if (force) args["force"] = true;
  return args;
}

}  // namespace

std::string_view server_state_name(AdminState admin, bool healthy) noexcept {
  switch (admin) {
    case AdminState::disabled:
      return "disabled";
    case AdminState::draining:
      return "draining";
    case AdminState::enabled:
      break;
  }
  return healthy ? "up" : "down";
}

Controller::Controller(const config::Config& cfg, State state) : cfg_(&cfg), state_(std::move(state)) {}

State Controller::initial_state(const config::Config& cfg) {
  State s;
  for (const auto& svc : cfg.services) {
    ServiceState ss;
    ss.name = svc.name;
    ss.weights.green_bp = svc.initial_green_bp;
    ss.stable = ss.weights;
    s.services.push_back(std::move(ss));
  }
  return s;
}

State Controller::reconcile(const config::Config& cfg, const State& loaded) {
  State s = initial_state(cfg);
  s.history = loaded.history;
  for (std::size_t i = 0; i < cfg.services.size(); ++i) {
    const auto it = std::find_if(loaded.services.begin(), loaded.services.end(),
                                 [&](const ServiceState& l) { return l.name == cfg.services[i].name; });
    if (it == loaded.services.end()) continue;
    auto kept = *it;
    std::erase_if(kept.servers, [&](const auto& entry) {
      for (auto c : {routing::Color::blue, routing::Color::green}) {
        for (const auto& ep : pool_of(cfg.services[i], c).servers) {
          if (ep.text == entry.first) return false;
        }
      }
      return true;
    });
    s.services[i] = std::move(kept);
  }
  return s;
}

int Controller::resolve_service(std::string_view name, std::string& error) const {
  if (name.empty()) {
    if (cfg_->services.size() == 1) return 0;
    error = "several services are configured: name one with -s SERVICE";
    return -1;
  }
  for (std::size_t i = 0; i < cfg_->services.size(); ++i) {
    if (cfg_->services[i].name == name) return static_cast<int>(i);
  }
  error = "unknown service \"" + std::string(name) + "\"";
  return -1;
}

bool Controller::color_has_usable_server(int service, routing::Color color) const {
  return table(0).services[static_cast<std::size_t>(service)].has_usable(color);
}

std::string Controller::shadow_gate_error(int service, routing::Color target, bool force) const {
  const auto idx = static_cast<std::size_t>(service);
  const auto& limit = cfg_->services[idx].watchdog.max_shadow_mismatch_rate;
  if (force || !limit || idx >= shadow_gates_.size() || !shadow_gates_[idx]) return {};
  const auto& g = *shadow_gates_[idx];
  if (g.color != target || !(g.mismatch_rate > *limit)) return {};
  char figures[96];
  std::snprintf(figures, sizeof figures, "%.4f over %llu pairs", g.mismatch_rate,
                static_cast<unsigned long long>(g.pairs));
  char threshold[32];
  std::snprintf(threshold, sizeof threshold, "%g", *limit);
  return "the shadow mismatch rate of " + std::string(routing::color_name(target)) + " is " + figures + " (" +
         g.fields + "), above watchdog.max_shadow_mismatch_rate " + threshold +
         " (bgctl shadow shows samples; --force starts anyway)";
}

Controller::Decision Controller::decide(const Command& c, const Peer& peer, std::string_view now,
                                        std::int64_t now_ms) const {
  Decision d;
  if (c.kind == CommandKind::reload || c.kind == CommandKind::upgrade || c.kind == CommandKind::history ||
      c.kind == CommandKind::events || c.kind == CommandKind::shadow || (c.service.empty() && (c.kind == CommandKind::status || c.kind == CommandKind::health))) {
    return d;  // read-only or not about one service
  }
  d.service = resolve_service(c.service, d.error);
  if (d.service < 0) return d;
  switch (c.kind) {
    case CommandKind::split:
      return set_weight(c, d.service, c.green_bp, peer, now, now_ms);
    case CommandKind::switch_color:
      return set_weight(c, d.service, c.color == routing::Color::green ? weights::full_bp : 0, peer, now, now_ms);
    case CommandKind::rollback:
      return rollback(d.service, peer, now, "manual", "rollback",
                      c.drain ? boost::json::object{{"drain", true}} : boost::json::object{});
    case CommandKind::server:
      return set_server(c, d.service, peer, now);
    case CommandKind::canary:
      return canary(c, d.service, peer, now, now_ms);
    case CommandKind::release:
      return release(c, d.service, peer, now, now_ms, {});
    case CommandKind::status:
    case CommandKind::health:
    case CommandKind::history:
    case CommandKind::reload:
    case CommandKind::upgrade:
    case CommandKind::events:
    case CommandKind::shadow:
      break;
  }
  return d;
}

Controller::Decision Controller::set_weight(const Command& c, int service, std::uint32_t green_bp,
                                            const Peer& peer, std::string_view now, std::int64_t now_ms) const {
  Decision d;
  d.service = service;
  const auto idx = static_cast<std::size_t>(service);
  const auto& current = state_.services[idx];
  const Weights before = current.weights;
  const Weights after{green_bp};
  // The color whose share grows is the rollout target; it must be able to serve.
  std::optional<routing::Color> raised;
  if (after.green_bp > before.green_bp) raised = routing::Color::green;
  if (after.green_bp < before.green_bp) raised = routing::Color::blue;
  if (raised && !c.force && !color_has_usable_server(service, *raised)) {
    d.error = std::string(routing::color_name(*raised)) + " has no healthy server (use --force to override)";
    return d;
  }
  if (after == before) return d;  // nothing to change, nothing to record

  State next = state_;
  auto& ss = next.services[idx];
  if (at_endpoint(before)) ss.stable = before;  // a new rollout starts from here
  ss.weights = after;
  ss.target = raised;
  // A hand-made change ends any running canary; the watchdog keeps watching the
  // raised color while it shares traffic, then while it bakes at 100 %.
  ss.canary_steps_bp.clear();
  ss.canary_interval_ms = 0;
  ss.phase = target_share(ss) >= weights::full_bp ? Phase::baking : Phase::canary;
  ss.step_started_ms = now_ms;
  ss.step = 0;
  ss.reason = "manual";
  const bool split = c.kind == CommandKind::split;
  boost::json::object args;
  if (split) args["green"] = percent_arg(green_bp);
  else args["color"] = routing::color_name(c.color);
  next.record(history_entry(now, ss.name, split ? "split" : "switch", with_force(std::move(args), c.force),
                           peer, "manual", before, after));
  d.next = std::move(next);
  d.switched = true;
  return d;
}

Controller::Decision Controller::rollback(int service, const Peer& peer, std::string_view now,
                                          std::string_view reason, std::string_view command,
                                          boost::json::object args) const {
  Decision d;
  d.service = service;
  const auto idx = static_cast<std::size_t>(service);
  const auto& current = state_.services[idx];
  if (current.weights == current.stable && current.phase != Phase::baking) return d;  // nothing to undo
  State next = state_;
  auto& ss = next.services[idx];
  const Weights before = ss.weights;
  ss.weights = ss.stable;
  ss.phase = Phase::rolled_back;
  ss.reason = std::string(reason);
  ss.step = 0;
  ss.canary_steps_bp.clear();
  ss.canary_interval_ms = 0;
  ss.step_started_ms = 0;
  next.record(history_entry(now, ss.name, std::string(command), std::move(args), peer,
                           std::string(reason), before, ss.weights));
  d.next = std::move(next);
  d.rollback = true;
  d.switched = true;
  return d;
}

Controller::Decision Controller::set_server(const Command& c, int service, const Peer& peer,
                                            std::string_view now) const {
  Decision d;
  d.service = service;
  const auto idx = static_cast<std::size_t>(service);
  const auto& svc = cfg_->services[idx];
  bool known = false;
  for (auto color : {routing::Color::blue, routing::Color::green}) {
    for (const auto& ep : pool_of(svc, color).servers) known = known || ep.text == c.address;
  }
  if (!known) {
    d.error = "unknown server \"" + c.address + "\" in service " + svc.name;
    return d;
  }
  const AdminState wanted = c.server == ServerAction::enable    ? AdminState::enabled
                            : c.server == ServerAction::disable ? AdminState::disabled
                                                                : AdminState::draining;
  const auto& admin = state_.services[idx].servers;
  const auto it = admin.find(c.address);
  const AdminState now_state = it == admin.end() ? AdminState::enabled : it->second;
  if (now_state == wanted) return d;
  State next = state_;
  auto& ss = next.services[idx];
  if (wanted == AdminState::enabled) ss.servers.erase(c.address);
  else ss.servers[c.address] = wanted;
  static constexpr std::string_view actions[] = {"enable", "disable", "drain"};
  next.record(history_entry(now, ss.name, "server",
                           {{"action", actions[static_cast<int>(c.server)]}, {"address", c.address}}, peer,
                            "manual", ss.weights, ss.weights));
  d.next = std::move(next);
  return d;
}

Controller::Decision Controller::start_canary(int service, routing::Color target, const Command& c, const Peer& peer,
                                              std::string_view now, std::int64_t now_ms, std::string command,
                                              boost::json::object args) const {
  Decision d;
  d.service = service;
  const auto idx = static_cast<std::size_t>(service);
  const auto& svc = cfg_->services[idx];
  const auto& current = state_.services[idx];
  State next = state_;
  auto& ss = next.services[idx];
  ss.canary_steps_bp = c.steps_bp.empty() ? svc.canary.steps_bp : c.steps_bp;
  ss.canary_interval_ms = (c.interval ? *c.interval : svc.canary.interval).count();
  if (at_endpoint(current.weights)) ss.stable = current.weights;
  ss.target = target;
  ss.step = 0;
  ss.weights.green_bp = green_for(target, ss.canary_steps_bp.front());
  ss.phase = target_share(ss) >= weights::full_bp ? Phase::baking : Phase::canary;
  ss.step_started_ms = now_ms;
  ss.reason = "canary";
  boost::json::array steps;
  for (auto s : ss.canary_steps_bp) steps.push_back(percent_arg(s));
  // Whole seconds as integers (60), like the weights; others with their decimals (1.5).
  const auto interval = ss.canary_interval_ms % 1000 == 0
                            ? boost::json::value(ss.canary_interval_ms / 1000)
                            : boost::json::value(static_cast<double>(ss.canary_interval_ms) / 1000.0);
  args["target"] = routing::color_name(target);
  args["steps"] = std::move(steps);
  args["interval_seconds"] = interval;
  next.record(history_entry(now, ss.name, std::move(command), with_force(std::move(args), c.force), peer, "manual",
                            current.weights, ss.weights));
  d.switched = current.weights != ss.weights;
  d.next = std::move(next);
  return d;
}

std::optional<routing::Color> Controller::release_target(const Command& c, int service, std::string& error) const {
  const auto idx = static_cast<std::size_t>(service);
  const auto& svc = cfg_->services[idx];
  const auto& current = state_.services[idx];
  if (!current.canary_steps_bp.empty() && (current.phase == Phase::canary || current.phase == Phase::paused)) {
    error = "a canary is already running for " + svc.name + " (pause, resume or abort it)";
    return std::nullopt;
  }
  // A release moves traffic to a color that has none: the idle one, unless --to names it.
  const auto idle = current.weights.green_bp == 0               ? std::optional(routing::Color::green)
                    : current.weights.green_bp == weights::full_bp ? std::optional(routing::Color::blue)
                                                                   : std::nullopt;
  const auto target = c.release_to ? c.release_to : idle;
  if (!target || target != idle) {
    const auto green = current.weights.green_bp;
    error = "a release moves traffic to a color that has none, and " + svc.name + " is at blue " +
            weights::format_percent(weights::full_bp - green) + "% / green " + weights::format_percent(green) +
            "% (finish or roll back the rollout first)";
    return std::nullopt;
  }
  if (!color_has_usable_server(service, *target)) {
    error = std::string(routing::color_name(*target)) + " has no healthy server";
    return std::nullopt;
  }
  return target;
}

Controller::Decision Controller::release(const Command& c, int service, const Peer& peer, std::string_view now,
                                         std::int64_t now_ms, boost::json::array smoke) const {
  Decision d;
  d.service = service;
  const auto target = release_target(c, service, d.error);
  if (!target) return d;
  d.error = shadow_gate_error(service, *target, c.force);
  if (!d.error.empty()) return d;
  boost::json::object args;
  if (!smoke.empty()) args["smoke"] = std::move(smoke);
  return start_canary(service, *target, c, peer, now, now_ms, "release", std::move(args));
}

Controller::Decision Controller::canary(const Command& c, int service, const Peer& peer, std::string_view now,
                                        std::int64_t now_ms) const {
  Decision d;
  d.service = service;
  const auto idx = static_cast<std::size_t>(service);
  const auto& svc = cfg_->services[idx];
  const auto& current = state_.services[idx];
  const bool running = !current.canary_steps_bp.empty() &&
                       (current.phase == Phase::canary || current.phase == Phase::paused);
  State next = state_;
  auto& ss = next.services[idx];
  switch (c.canary) {
    case CanaryAction::start: {
      if (running) {
        d.error = "a canary is already running for " + svc.name + " (pause, resume or abort it)";
        return d;
      }
      // The canary moves traffic to the color that has less of it.
      const auto target = current.weights.green_bp <= 5000 ? routing::Color::green : routing::Color::blue;
      if (!c.force && !color_has_usable_server(service, target)) {
        d.error = std::string(routing::color_name(target)) + " has no healthy server (use --force to override)";
        return d;
      }
      d.error = shadow_gate_error(service, target, c.force);
      if (!d.error.empty()) return d;
      return start_canary(service, target, c, peer, now, now_ms, "canary", {{"action", "start"}});
    }
    case CanaryAction::pause:
      if (!running || current.phase != Phase::canary) {
        d.error = "no running canary to pause for " + svc.name;
        return d;
      }
      ss.phase = Phase::paused;
      next.record(history_entry(now, ss.name, "canary", {{"action", "pause"}}, peer,
                               "manual", ss.weights, ss.weights));
      break;
    case CanaryAction::resume:
      if (!running || current.phase != Phase::paused) {
        d.error = "no paused canary to resume for " + svc.name;
        return d;
      }
      ss.phase = Phase::canary;
      ss.step_started_ms = now_ms;  // the step's interval starts again
      next.record(history_entry(now, ss.name, "canary", {{"action", "resume"}}, peer,
                               "manual", ss.weights, ss.weights));
      break;
    case CanaryAction::abort:
      if (!under_watch(current)) {
        d.error = "no rollout to abort for " + svc.name;
        return d;
      }
      return rollback(service, peer, now, "manual", "canary", {{"action", "abort"}});
  }
  d.next = std::move(next);
  return d;
}

Controller::Decision Controller::apply_rollout(int service, const RolloutStep& step, const Peer& peer,
                                               std::string_view now, std::int64_t now_ms) const {
  Decision d;
  d.service = service;
  const auto idx = static_cast<std::size_t>(service);
  const auto& current = state_.services[idx];
  switch (step.kind) {
    case RolloutStep::Kind::hold:
      return d;
    case RolloutStep::Kind::rollback:
      return rollback(service, peer, now, step.reason, "rollback", {});
    case RolloutStep::Kind::advance: {
      if (!current.target || current.step + 1 >= current.canary_steps_bp.size()) return d;
      State next = state_;
      auto& ss = next.services[idx];
      ss.step = current.step + 1;
      ss.weights.green_bp = green_for(*current.target, ss.canary_steps_bp[ss.step]);
      ss.phase = target_share(ss) >= weights::full_bp ? Phase::baking : Phase::canary;
      ss.step_started_ms = now_ms;
      ss.reason = step.reason;
      next.record(history_entry(now, ss.name, "canary", {{"action", "advance"}}, peer,
                               step.reason, current.weights, ss.weights));
      d.next = std::move(next);
      d.switched = true;
      return d;
    }
    case RolloutStep::Kind::promote: {
      State next = state_;
      auto& ss = next.services[idx];
      ss.phase = Phase::promoted;
      ss.stable = ss.weights;  // the next rollback returns here
      ss.canary_steps_bp.clear();
      ss.canary_interval_ms = 0;
      ss.step_started_ms = 0;
      ss.reason = step.reason;
      next.record(history_entry(now, ss.name, "canary", {{"action", "promote"}}, peer,
                               step.reason, ss.weights, ss.weights));
      d.next = std::move(next);
      return d;
    }
  }
  return d;
}

routing::RoutingTable Controller::table(std::uint64_t version) const {
  std::vector<std::uint32_t> weights;
  for (const auto& ss : state_.services) weights.push_back(ss.weights.green_bp);
  auto t = routing::build_table(*cfg_, weights, version);
  for (std::size_t si = 0; si < t.services.size(); ++si) {
    // Shadows go to the color with no traffic; while both have some, to the rollout target.
    const auto& ss = state_.services[si];
    if (!at_endpoint(ss.weights) && ss.target) t.services[si].shadow_color = *ss.target;
    const auto& admin = state_.services[si].servers;
    for (auto color : {routing::Color::blue, routing::Color::green}) {
      const auto& eps = pool_of(cfg_->services[si], color).servers;
      auto& routes = t.services[si].servers[static_cast<std::size_t>(color)];
      for (std::size_t i = 0; i < routes.size(); ++i) {
        const auto it = admin.find(eps[i].text);
        routes[i].enabled = it == admin.end() || it->second == AdminState::enabled;
        routes[i].healthy = routes[i].id >= healthy_.size() || healthy_[routes[i].id];
      }
    }
  }
  return t;
}

}  // namespace bgproxy::control
