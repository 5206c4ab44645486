// ControlServer's change feed (README "Change feed"): the `events` subscribers of the control
// socket, the events of changes, health transitions and verdicts, and the webhook notifier that
// listens to them.
#include <unistd.h>

#include <array>
#include <utility>

#include <spdlog/spdlog.h>

#include "control/core/change_events.hpp"
#include "control/core/replies.hpp"
#include "control/server/control_server.hpp"
#include "control/server/wall_clock.hpp"

namespace bgproxy::control {

void ControlServer::on_events(std::shared_ptr<Connection> c, const Command& command) {
  if (!command.service.empty()) {
    std::string error;
    if (controller_.resolve_service(command.service, error) < 0) return c->write(error_reply(error), false);
  }
  const std::weak_ptr<Connection> weak = c;
  const auto id = events_.subscribe(command.service, [weak](bool dropped) {
    const auto conn = weak.lock();
    if (!conn) return;
    if (dropped) {
      spdlog::warn("events: a subscriber (pid {}) fell too far behind: dropped", conn->peer().pid);
      conn->finish_soon();
    }
    else conn->wake();
  });
  c->stream(
      R"({"ok":true,"events":"subscribed"})",
      [this, id, alive = alive_] {
        if (!*alive) return Connection::Chunk{{}, true};
        auto t = events_.take(id);
        return Connection::Chunk{std::move(t.lines), t.last};
      },
      [this, id, alive = alive_] {
        if (*alive) events_.unsubscribe(id);
      });
}

void ControlServer::publish_event(Event e) {
  if (e.instance.empty()) e.instance = instance();
  events_.publish(e);
}

std::string ControlServer::instance() const {
  if (fleet_) return fleet_->instance();
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) return "bgproxy";
  return host.data();
}

void ControlServer::publish_change(const HistoryEntry& entry, std::size_t service, bool here) {
  const auto& ss = controller_.state().services[service];
  const std::string who = entry.instance.empty() ? instance() : entry.instance;
  for (auto& e : change_events(entry, ss, who, here)) publish_event(std::move(e));
  if (entry.command != "server") return;
  // An operator's server command: the server's new state, as `bgctl health` shows it.
  const auto* address = entry.args.if_contains("address");
  if (address == nullptr || !address->is_string()) return;
  for (const auto& s : data_plane_.servers()) {
    if (s.service != service || s.endpoint.text != address->get_string()) continue;
    const auto it = ss.servers.find(s.endpoint.text);
    const AdminState admin = it == ss.servers.end() ? AdminState::enabled : it->second;
    const bool up = !tracker_ || tracker_->is_up(s.id);
    Event h = health_event(entry.time, ss.name, who, s.color, s.endpoint.text, server_state_name(admin, up),
                           entry.reason);
    h.here = here;
    publish_event(std::move(h));
  }
}

void ControlServer::publish_health(const health::Transition& t) {
  const auto& s = data_plane_.servers()[t.server];
  publish_event(health_event(now_rfc3339(), cfg_->services[s.service].name, instance(), s.color, s.endpoint.text,
                             t.up ? "up" : "down", t.reason));
}

void ControlServer::note_verdict(std::size_t service, const watchdog::Verdict* verdict) {
  const auto& name = cfg_->services[service].name;
  if (verdict == nullptr) {
    last_outcome_.erase(name);  // not watched: the next rollout's first verdict is news
    return;
  }
  const auto it = last_outcome_.find(name);
  if (it != last_outcome_.end() && it->second == verdict->outcome) return;
  last_outcome_[name] = verdict->outcome;
  publish_event(verdict_event(now_rfc3339(), name, instance(), verdict->outcome, verdict->reason));
}

void ControlServer::start_notifications() {
  notifier_.configure(cfg_->notify);
  events_.listen([this](const Event& e) { notifier_.notify(e); });
  data_plane_.add_metrics_source([this, alive = alive_] {
    return *alive ? render_notification_metrics(notifier_.counts()) : std::string();
  });
}

}  // namespace bgproxy::control
