// `bgctl release` on the control plane (README "Release in one command"): the same checks as the
// canary it starts, the smoke requests through the proxy, then the canary as a queued change.

#include <utility>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "bgproxy/tls/upstream_tls.hpp"
#include "control/core/change_events.hpp"
#include "control/core/replies.hpp"
#include "control/server/control_server.hpp"
#include "control/server/smoke_run.hpp"
#include "control/server/wall_clock.hpp"

namespace bgproxy::control {

namespace {

boost::json::array smoke_json(const std::vector<SmokeResult>& results) {
  boost::json::array out;
  for (const auto& r : results) {
    boost::json::object o{{"path", r.path}, {"server", r.server}, {"status", r.status},
                          {"latency_seconds", r.latency_seconds}};
    if (!r.ok()) o["error"] = r.error;
    out.push_back(std::move(o));
  }
  return out;
}

/// What the history keeps of a smoke test: the paths and their statuses.
boost::json::array smoke_history(const std::vector<SmokeResult>& results) {
  boost::json::array out;
  for (const auto& r : results) out.push_back(boost::json::object{{"path", r.path}, {"status", r.status}});
  return out;
}

/// An answer line with the smoke results added to its object.
std::string with_smoke(std::string answer, const boost::json::array& smoke) {
  if (answer.empty() || answer.back() != '}') return answer;
  answer.insert(answer.size() - 1, ",\"smoke\":" + boost::json::serialize(smoke));
  return answer;
}

}  // namespace

void ControlServer::announce_release(const boost::json::array& smoke) {
  // The release's own change is the newest history entry: its service, target and steps.
  const auto& entry = controller_.state().history.back();
  const auto* target = entry.args.if_contains("target");
  const auto* steps = entry.args.if_contains("steps");
  if (entry.command != "release" || target == nullptr || steps == nullptr || !steps->is_array()) return;
  const auto color = target->as_string() == "blue" ? routing::Color::blue : routing::Color::green;
  publish_event(release_event(entry.time, entry.service, instance(), color, steps->as_array(), smoke));
}

void ControlServer::start_release(const ClientCommand& p, const Command& c, Done done) {
  // Refused for the target's state before any request is made.
  const auto checked = controller_.decide(c, p.peer, now_rfc3339(), unix_ms());
  if (!checked.error.empty()) return done(error_reply(checked.error));
  std::string error;
  const auto target = controller_.release_target(c, checked.service, error);
  if (!target) return done(error_reply(error));

  const auto release = [this, c, peer = p.peer](boost::json::array history) {
    return [this, c, peer, history = std::move(history)] {
      Controller::Decision d;
      d.service = controller_.resolve_service(c.service, d.error);
      if (d.service < 0) return d;
      return controller_.release(c, d.service, peer, now_rfc3339(), unix_ms(), history);
    };
  };
  if (c.smoke.empty()) {
    return change(
        release({}),
        [this, done = std::move(done)](std::string answer) {
          if (answer.starts_with(R"({"ok":true)")) announce_release({});
          done(std::move(answer));
        },
        Origin::command, false);
  }

  const auto& servers = data_plane_.servers();
  const routing::ServerInfo* smoke_server = nullptr;
  const auto table = controller_.table(0);
  for (const auto& route : table.services[static_cast<std::size_t>(checked.service)].pool(*target)) {
    if (route.usable()) {
      smoke_server = &servers[route.id];
      break;
    }
  }
  if (smoke_server == nullptr) return done(error_reply(std::string(routing::color_name(*target)) + " has no healthy server"));
  tls::UpstreamTlsServers tls;
  try {
    tls = tls::load_upstream_tls(*cfg_, servers);
  } catch (const tls::TlsLoadError& e) {
    return done(error_reply(std::string("smoke test: ") + e.what()));
  }

  // The queue goes on while the smoke requests run; the client is answered when the release
  // is decided.
  auto run = std::make_shared<SmokeRun>(ioc_, cfg_, *smoke_server, tls[smoke_server->id], c.smoke);
  run->start([this, alive = alive_, reply = p.reply, release, service = cfg_->services[static_cast<std::size_t>(checked.service)].name](
                 std::vector<SmokeResult> results) {
    if (!*alive) return;
    const auto smoke = smoke_json(results);
    for (const auto& r : results) {
      spdlog::info("{}: release smoke {} on {}: status {} in {:.1f} ms{}{}", service, r.path, r.server, r.status,
                   r.latency_seconds * 1000, r.ok() ? "" : ": ", r.error);
    }
    if (!results.back().ok()) {
      const auto& failed = results.back();
      return reply(with_smoke(error_reply("smoke " + failed.path + " on " + failed.server + ": " + failed.error +
                                          "; release refused"),
                              smoke));
    }
    submit(InternalTask{
        [this, decide = release(smoke_history(results)), reply, smoke](Done task_done) {
          change(decide,
                 [this, reply, smoke, task_done = std::move(task_done)](std::string answer) {
                   if (answer.starts_with(R"({"ok":true)")) announce_release(smoke);
                   reply(with_smoke(std::move(answer), smoke));
                   task_done({});
                 },
                 Origin::command, false);
        },
        [reply] { reply(error_reply("this process is handing over to a new one (binary upgrade); retry in a moment")); }});
  });
  done({});
}

}  // namespace bgproxy::control
