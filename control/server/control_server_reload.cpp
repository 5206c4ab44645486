// ControlServer: the control plane's part of a reload (SIGHUP or `bgctl reload`, README
// "Reload"): the state reconciled with the new config and saved before anything switches;
// health, per-service runtime and the stats history carried over by name when it commits.
#include <chrono>
#include <utility>

#include <spdlog/spdlog.h>

#include "control/server/control_server.hpp"

namespace bgproxy::control {

void ControlServer::queue_reload() {
  submit(InternalTask{[this](Done done) { data_plane_.reload([done = std::move(done)](const auto&) { done({}); }); },
                      [] { spdlog::warn("reload (SIGHUP) dropped: a new process is taking over"); }});
}

api::DataPlane::ReloadPlan ControlServer::prepare_reload(std::shared_ptr<const config::Config> next,
                                                         const std::vector<routing::ServerInfo>& servers) {
  struct Next {
    std::shared_ptr<const config::Config> cfg;
    std::unique_ptr<StateStore> store;
    Controller controller;
    health::Tracker tracker;
  };
  auto state = Controller::reconcile(*next, controller_.state());
  // The new config may keep the state elsewhere (another state_file).
  auto store = open_store(*next);
  // Durable first, as for every change: what runs is what a restart would restore.
  if (auto saved = store->save(state); saved.has_error()) return {saved.error(), nullptr, {}};
  auto n = std::make_shared<Next>(Next{next, std::move(store), Controller(*next, std::move(state)),
                                       health::Tracker(*next, servers, std::chrono::steady_clock::now())});
  n->tracker.carry_over(*tracker_);
  n->controller.set_health(n->tracker.up_flags());
  auto table = std::make_shared<const routing::RoutingTable>(n->controller.table(++table_version_));

  auto commit = [this, n, table] {
    // Per-service figures follow their service by name; a new service starts from zero.
    const ServiceRenumbering renumbering(*cfg_, *n->cfg);
    runtime_ = renumbering.apply(runtime_);
    stats_.renumber(renumbering);
    series_.renumber(renumbering);
    shadows_.renumber(renumbering);
    // Panic mode as the first table has it, without a log line: health_changed() logs the
    // changes from here on.
    for (std::size_t si = 0; si < table->services.size(); ++si) runtime_[si].panic = in_panic(table->services[si]);
    cfg_ = n->cfg;
    store_ = std::move(n->store);
    controller_ = std::move(n->controller);
    controller_.set_shadow_gates(shadow_gates(shadows_, cfg_->services.size()));
    // A shadow comparison whose settings changed begins again from the counts at the switch:
    // each worker answers this collection after taking the new generation (queued before it).
    data_plane_.collect([this, alive = alive_](stats::RequestStats s) {
      if (!*alive) return;
      observe_shadows(s);
    });
    tracker_.reset();
    tracker_.emplace(std::move(n->tracker));
    start_health_checks();
    notifier_.configure(cfg_->notify);
    if (fleet_) fleet_->refresh();
  };
  return {{}, table, std::move(commit)};
}

}  // namespace bgproxy::control
