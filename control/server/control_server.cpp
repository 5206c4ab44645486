// ControlServer: start and stop, the command queue, changes (decide, save, commit, publish),
// health wiring and the rollout loop. Reloads are in control_server_reload.cpp, the binary
// upgrade in control_server_upgrade.cpp.
#include "control/server/control_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "bgproxy/watchdog/policy.hpp"
#include "control/core/json_line.hpp"
#include "control/core/metrics.hpp"
#include "control/core/page_data.hpp"
#include "control/core/replies.hpp"
#include "control/core/rollout.hpp"
#include "control/core/shadow_reply.hpp"
#include "control/core/sequential_track.hpp"
#include "control/core/state_file.hpp"
#include "control/server/wall_clock.hpp"

namespace bgproxy::control {

namespace net = boost::asio;
using error_code = boost::system::error_code;

namespace {

constexpr auto tick_period = std::chrono::seconds(1);

std::string weights_text(const Weights& w) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "blue %.2f%% / green %.2f%%", (10000 - w.green_bp) / 100.0, w.green_bp / 100.0);
  return buf;
}

/// The admin listener as bound: its port when the config asks for 0 (a fleet member's key
/// says where to reach it).
config::Endpoint bound_admin_endpoint(const api::ListeningSockets& sockets, config::Endpoint configured) {
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (sockets.admin_fd < 0 || ::getsockname(sockets.admin_fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    return configured;
  }
  if (local.ss_family == AF_INET) {
    configured.port = ntohs(reinterpret_cast<const sockaddr_in&>(local).sin_port);
  } else if (local.ss_family == AF_INET6) {
    configured.port = ntohs(reinterpret_cast<const sockaddr_in6&>(local).sin6_port);
  }
  const bool v6 = configured.host.find(':') != std::string::npos;
  configured.text = (v6 ? "[" + configured.host + "]" : configured.host) + ":" + std::to_string(configured.port);
  return configured;
}

}  // namespace

ControlServer::ControlServer(net::io_context& ioc, api::DataPlane& data_plane)
    : ioc_(ioc),
      data_plane_(data_plane),
      cfg_(data_plane.config_snapshot()),
      store_(open_store(*cfg_)),
      controller_(*cfg_, Controller::initial_state(*cfg_)),
      runtime_(cfg_->services.size()),
      series_(cfg_->services.size()),
      socket_(ioc, *this),
      tick_timer_(ioc),
      upgrade_timer_(ioc),
      self_{static_cast<std::uint32_t>(::getuid()), static_cast<std::int32_t>(::getpid())},
      notifier_(ioc) {}

ControlServer::~ControlServer() { *alive_ = false; }

std::unique_ptr<StateStore> ControlServer::open_store(const config::Config& cfg) const {
  return std::make_unique<StateFile>(cfg.state_file);
}

std::string ControlServer::start(Inherited* inherited) {
  const auto& cfg = *cfg_;
  auto loaded = store_->load();
  if (!loaded.problem.empty()) spdlog::error("{}", loaded.problem);
  if (loaded.state) {
    controller_.commit(Controller::reconcile(cfg, *loaded.state));
    spdlog::info("state restored from {}", store_->location());
  } else {
    spdlog::info("no usable state file at {}: starting from the configured initial weights", store_->location());
  }
  for (const auto& ss : controller_.state().services) {
    spdlog::info("service {}: {} (phase {})", ss.name, weights_text(ss.weights), phase_name(ss.phase));
  }
  // Servers start down until their checks pass (README "Health checks"); until some do, the
  // routing falls back to panic mode and serves every enabled server.
  tracker_.emplace(cfg, data_plane_.servers(), std::chrono::steady_clock::now());
  if (inherited) {
    for (const auto& h : inherited->health) {
      for (const auto& s : data_plane_.servers()) {
        if (s.color == h.color && s.endpoint.text == h.address && cfg.services[s.service].name == h.service) {
          tracker_->assume(s.id, h.up, std::chrono::steady_clock::now());
        }
      }
    }
  }
  health_changed();
  // Counting starts now: requests before the first collection count in the first window.
  stats_.push(std::chrono::steady_clock::now(), stats::RequestStats(cfg.services.size(), data_plane_.servers().size()),
              cfg);
  observe_shadows(*stats_.newest());
  data_plane_.on_reload([this](std::shared_ptr<const config::Config> next,
                               const std::vector<routing::ServerInfo>& servers) {
    return prepare_reload(std::move(next), servers);
  });
  data_plane_.on_reload_signal([this, alive = alive_] {
    if (*alive) queue_reload();
  });
  data_plane_.on_passive_ejection([this, alive = alive_](std::uint32_t server) {
    if (!*alive) return;
    if (auto t = tracker_->record_passive_ejection(server, std::chrono::steady_clock::now())) on_transition(*t);
  });

  if (inherited && inherited->control_fd >= 0) {
    if (auto problem = socket_.adopt(inherited->control_fd, cfg.control.socket); !problem.empty()) return problem;
    inherited->control_fd = -1;
  } else if (auto problem = socket_.listen(cfg.control.socket, cfg.control.mode); !problem.empty()) {
    return problem;
  }
  data_plane_.add_metrics_source([this, alive = alive_] {
    if (!*alive) return std::string();
    const auto fleet = fleet_view();
    return render_metrics(*cfg_, controller_.state(), runtime_, data_plane_.servers(), health(), window_figures(),
                          fleet ? &*fleet : nullptr) +
           render_shadow_metrics(*cfg_, stats_.newest());
  });
  data_plane_.set_page_data_source([this, alive = alive_] {
    if (!*alive) return std::string(R"({"ok":false,"error":"stopped"})");
    const auto v = verdicts(runtime_);
    const auto fleet = fleet_view();
    const auto ev = evidences(runtime_);
    return page_data(status_reply(controller_, -1, window_figures(), health(), &v, fleet ? &*fleet : nullptr, &ev),
                     history_reply(controller_.state(), {}, page_history_entries), series_, *cfg_);
  });
  data_plane_.on_stop([this, alive = alive_] {
    if (*alive) stop();
  });
  if (cfg.cluster.enabled) {
    Fleet::Owner& owner = *this;
    const auto admin = bound_admin_endpoint(data_plane_.listening_sockets(), cfg.admin.address);
    fleet_ = std::make_unique<Fleet>(ioc_, cfg, instance_name(cfg, admin.port), admin.text, owner);
    if (auto problem = fleet_->start(); !problem.empty()) return problem;
  }
  start_notifications();
  socket_.start_accepting();
  do_tick();
  start_health_checks();
  return {};
}

void ControlServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  // After a handover, answers still being written (the upgrade's own) finish as the process
  // drains, and the socket file is the new process's.
  if (handed_over()) {
    socket_.stop_accepting();
  } else {
    socket_.close();
  }
  tick_timer_.cancel();
  notifier_.stop();
  if (checker_) checker_->stop();
  if (fleet_ && !handed_over()) fleet_->stop();
}

void ControlServer::on_line(std::string line, const Peer& peer, Done reply) {
  submit(ClientCommand{std::move(line), peer, std::move(reply)});
}

void ControlServer::submit(Pending p) {
  queue_.push_back(std::move(p));
  if (!busy_) run_next();
}

void ControlServer::run_next() {
  if (queue_.empty()) {
    busy_ = false;
    return;
  }
  busy_ = true;
  auto p = std::make_shared<Pending>(std::move(queue_.front()));
  queue_.pop_front();
  auto done = [this, p, alive = alive_](std::string answer) {
    // Empty: answered later by someone else (bgctl upgrade). A task has nobody to answer.
    if (const auto* c = std::get_if<ClientCommand>(p.get()); c && !answer.empty()) c->reply(std::move(answer));
    if (*alive) run_next();
  };
  std::visit([&](const auto& pending) { execute(pending, std::move(done)); }, *p);
}

void ControlServer::execute(const InternalTask& t, Done done) {
  if (changes_frozen()) {
    t.dropped();
    return done({});
  }
  t.run(std::move(done));
}

void ControlServer::execute(const ClientCommand& p, Done done) {
  auto parsed = parse_command(p.line);
  if (!parsed) return done(error_reply(parsed.error().message));
  const Command& c = *parsed;
  const bool read_only = c.kind == CommandKind::status || c.kind == CommandKind::health ||
                         c.kind == CommandKind::history || c.kind == CommandKind::shadow;
  if (changes_frozen() && !read_only) {
    return done(error_reply("this process is handing over to a new one (binary upgrade); retry in a moment"));
  }
  std::string error;
  int service = -1;
  if (!c.service.empty()) {
    service = controller_.resolve_service(c.service, error);
    if (service < 0) return done(error_reply(error));
  }
  switch (c.kind) {
    case CommandKind::status: {
      const auto v = verdicts(runtime_);
      const auto fleet = fleet_view();
      const auto ev = evidences(runtime_);
      return done(status_reply(controller_, service, window_figures(), health(), &v, fleet ? &*fleet : nullptr, &ev,
                               &shadows_));
    }
    case CommandKind::shadow:
      return done(shadow_reply(*cfg_, shadows_, service));
    case CommandKind::health: {
      const auto* newest = stats_.newest();
      return done(health_reply(controller_, service, health(), std::chrono::steady_clock::now(),
                               newest ? &newest->servers : nullptr));
    }
    case CommandKind::history:
      return done(history_reply(controller_.state(), c.service, c.limit));
    case CommandKind::upgrade:
      return start_upgrade(p, std::move(done));
    case CommandKind::release:
      return start_release(p, c, std::move(done));
    case CommandKind::reload:
      return data_plane_.reload([done = std::move(done)](const api::DataPlane::ReloadResult& r) {
        if (!r.applied) return done(error_reply(r.message));
        done(ok_reply(r.message.empty() ? "configuration reloaded" : "configuration reloaded; " + r.message));
      });
    default:
      break;
  }
  if (c.kind == CommandKind::rollback && c.drain) done = cut_after_rollback(c.service, std::move(done));
  change([this, c, peer = p.peer] { return controller_.decide(c, peer, now_rfc3339(), unix_ms()); }, std::move(done),
         Origin::command, c.local);
}

void ControlServer::change(std::function<Controller::Decision()> decide, Done done, Origin origin, bool local,
                           int retries) {
  auto d = decide();
  if (!d.error.empty()) return done(origin == Origin::command ? error_reply(d.error) : std::string());
  if (!d.next) return answer_unchanged(d, origin, done);
  if (fleet_) d.next->history.back().instance = fleet_->instance();
  if (!fleet_) return apply_change(std::move(d), std::move(done), origin == Origin::watchdog);
  if (local) return apply_local_change(std::move(d), std::move(done), origin == Origin::watchdog);
  share_change(std::move(d), std::move(decide), std::move(done), origin, retries);
}

void ControlServer::answer_unchanged(const Controller::Decision& d, Origin origin, const Done& done) {
  if (origin != Origin::command) return done({});
  const auto v = verdicts(runtime_);
  done(change_reply(controller_, d.service, window_figures(), health(), &v));
}

void ControlServer::apply_change(Controller::Decision d, Done done, bool by_watchdog, bool shared) {
  // Durable first: a change the store does not hold is refused, so what runs never diverges
  // from what a restart would restore. In a fleet, etcd holds it already.
  if (auto saved = store_->save(*d.next); saved.has_error()) {
    if (shared) {
      spdlog::error("state file not updated (the change is in etcd and applies): {}", saved.error());
    } else {
      spdlog::error("change refused: {}", saved.error());
      return done(error_reply(saved.error() + "; change refused"));
    }
  }
  const auto si = static_cast<std::size_t>(d.service);
  // From the entry: in a fleet, the watch may have brought this very change in already.
  const auto before = d.next->history.back().before;
  controller_.commit(std::move(*d.next));
  const auto& ss = controller_.state().services[si];
  const auto& entry = controller_.state().history.back();
  auto& runtime = runtime_[si];
  if (d.switched) ++runtime.switches;
  if (d.rollback) ++(by_watchdog ? runtime.watchdog_rollbacks : runtime.manual_rollbacks);
  std::string args;
  if (!entry.args.empty()) args.append(" ").append(to_line(entry.args));
  spdlog::info("{}: {}{} by uid {} pid {}: {} -> {}", ss.name, entry.command, args, entry.uid, entry.pid,
               weights_text(before), weights_text(ss.weights));
  const int service = d.service;
  publish_change(entry, si, true);
  publish([this, service, done = std::move(done), alive = alive_] {
    if (!*alive) return;
    const auto v = verdicts(runtime_);
    done(change_reply(controller_, service, window_figures(), health(), &v));
  });
}

std::vector<ServiceWindow> ControlServer::with_fleet(std::vector<ServiceWindow> own) const {
  if (fleet_) {
    for (std::size_t si = 0; si < own.size() && si < cfg_->services.size(); ++si) {
      fleet_->add_others(cfg_->services[si].name, own[si]);
    }
  }
  return own;
}

void ControlServer::publish(std::function<void()> done) {
  auto table = std::make_shared<const routing::RoutingTable>(controller_.table(++table_version_));
  data_plane_.publish(std::move(table), std::move(done));
}

void ControlServer::start_health_checks() {
  if (checker_) checker_->stop();
  checker_ = std::make_unique<HealthChecker>(
      ioc_, cfg_, data_plane_.servers(), [this, alive = alive_](std::uint32_t server, const health::CheckResult& r) {
        if (!*alive) return;
        if (auto t = tracker_->record_check(server, r, std::chrono::steady_clock::now())) on_transition(*t);
      });
  checker_->start();
}

void ControlServer::on_transition(const health::Transition& t) {
  const auto& s = data_plane_.servers()[t.server];
  if (t.up) {
    spdlog::info("server {}/{} up: {}", routing::color_name(s.color), s.endpoint.text, t.reason);
  } else {
    spdlog::warn("server {}/{} down: {}", routing::color_name(s.color), s.endpoint.text, t.reason);
  }
  publish_health(t);
  health_changed();
}

void ControlServer::health_changed() {
  controller_.set_health(tracker_->up_flags());
  const auto table = controller_.table(0);
  for (std::size_t si = 0; si < table.services.size(); ++si) {
    const auto& route = table.services[si];
    const bool panic = in_panic(route);
    if (panic == runtime_[si].panic) continue;
    runtime_[si].panic = panic;
    if (panic) {
      spdlog::warn("{}: panic mode: no healthy server in either color; serving every enabled server", route.name);
    } else {
      spdlog::info("{}: left panic mode", route.name);
    }
  }
  publish([] {});
}

void ControlServer::observe_shadows(const stats::RequestStats& newest) {
  const auto table = controller_.table(0);
  shadows_.observe(*cfg_, table.services, newest, now_rfc3339());
  controller_.set_shadow_gates(shadow_gates(shadows_, cfg_->services.size()));
}

void ControlServer::do_tick() {
  tick_timer_.expires_after(tick_period);
  tick_timer_.async_wait([this, alive = alive_](error_code ec) {
    if (ec || !*alive) return;
    data_plane_.collect([this, alive](stats::RequestStats s) {
      if (!*alive) return;
      stats_.push(std::chrono::steady_clock::now(), std::move(s), *cfg_);
      series_.push(unix_ms(), figures_of(stats_.newest_step(*cfg_)));
      observe_shadows(*stats_.newest());
      auto own = stats_.windows(*cfg_);
      if (fleet_) {
        for (std::size_t si = 0; si < own.size(); ++si) fleet_->publish_stats(cfg_->services[si].name, own[si]);
      }
      evaluate_rollouts(with_fleet(std::move(own)));
    });
    do_tick();
  });
}

void ControlServer::evaluate_rollouts(const std::vector<ServiceWindow>& windows) {
  const auto& cfg = *cfg_;
  const auto now_ms = unix_ms();
  const auto figures = figures_of(windows);
  const stats::RequestStats* newest = stats_.newest();
  for (std::size_t si = 0; si < cfg.services.size(); ++si) {
    const auto& svc = cfg.services[si];
    const auto& ss = controller_.state().services[si];
    auto& runtime = runtime_[si];
    runtime.verdict.clear();
    // The sequential evidence belongs to one rollout: it ends with it, and only then.
    if (!under_watch(ss)) runtime.sequential.reset();
    if (!under_watch(ss)) note_verdict(si, nullptr);
    if (!under_watch(ss) || runtime.rollout_queued || changes_frozen()) continue;
    std::optional<watchdog::Verdict> verdict;
    if (svc.watchdog.enabled && si < figures.size() && svc.watchdog.method == config::WatchdogMethod::sequential) {
      SequentialInput in{nullptr, windows[si].colors, windows[si].seconds};
      // Alone, every second's own counts; in a fleet, the fleet's windows (sequential_track.hpp).
      if (!fleet_ && newest && si < newest->services.size()) in.cumulative = &newest->services[si].colors;
      verdict = sequential_tick(runtime.sequential, svc, ss, now_ms, in);
      runtime.verdict = verdict->reason;
    } else if (svc.watchdog.enabled && si < figures.size()) {
      const auto target = *ss.target;
      const auto& t = figures[si][static_cast<std::size_t>(target)];
      const auto& o = figures[si][static_cast<std::size_t>(routing::other(target))];
      verdict = watchdog::evaluate({t.requests, t.error_rate, t.p95_seconds}, {o.requests, o.error_rate, o.p95_seconds},
                                   svc.watchdog, routing::color_name(routing::other(target)));
      runtime.verdict = verdict->reason;
    }
    note_verdict(si, verdict ? &*verdict : nullptr);
    const auto step = next_step(svc, ss, verdict, now_ms);
    if (step.kind != RolloutStep::Kind::rollback) runtime.dry_run_logged = watchdog::Rule::none;
    if (step.kind == RolloutStep::Kind::hold) continue;
    const auto target_name = routing::color_name(*ss.target);
    if (step.kind == RolloutStep::Kind::rollback) {
      if (svc.watchdog.dry_run) {
        // Dry run: say what would happen once per failing rule (the figures move every
        // second), again only after a pass, and leave the weights alone.
        if (runtime.dry_run_logged != verdict->rule) {
          spdlog::warn("watchdog (dry run): would roll back {} {}: {}", svc.name, target_name, verdict->reason);
          runtime.dry_run_logged = verdict->rule;
        }
        continue;
      }
      spdlog::warn("watchdog: rollback {} {}: {}", svc.name, target_name, verdict->reason);
    }
    runtime.rollout_queued = true;
    const Origin origin = step.kind == RolloutStep::Kind::rollback ? Origin::watchdog : Origin::rollout;
    // In a fleet, the step holds for the shared state it was evaluated on, and for no other.
    const std::int64_t evaluated_revision = fleet_ ? fleet_services_[svc.name].revision : 0;
    // By name: a reload queued ahead of this step may renumber or remove services.
    const auto unqueue = [this, name = svc.name] {
      std::string unknown;
      const int service = controller_.resolve_service(name, unknown);
      if (service >= 0) runtime_[static_cast<std::size_t>(service)].rollout_queued = false;
      return service;
    };
    submit(InternalTask{[this, unqueue, step, origin, evaluated_revision, name = svc.name](Done done) {
                          const int service = unqueue();
                          if (service < 0) return done({});
                          if (fleet_ && fleet_services_[name].revision != evaluated_revision) return done({});
                          // Made locally only when etcd is out of reach, and then only a rollback.
                          const bool local = fleet_ && !fleet_->connected() && origin == Origin::watchdog;
                          if (fleet_ && !fleet_->connected() && !local) return done({});
                          change([this, service, step] {
                                   return controller_.apply_rollout(service, step, self_, now_rfc3339(), unix_ms());
                                 },
                                 std::move(done), origin, local);
                        },
                        // Dropped: the next tick decides again (here, or in the new process).
                        [unqueue] { (void)unqueue(); }});
  }
}

}  // namespace bgproxy::control
