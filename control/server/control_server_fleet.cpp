// ControlServer in a fleet (README "Running a fleet", SPEC §12): every change written to etcd
// by compare-and-swap on the service key before it applies here; the other members' changes
// taken from the watch; what this instance changed alone while cut off settled when it is back.
#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "control/core/replies.hpp"
#include "control/core/service_document.hpp"
#include "control/server/control_server.hpp"

namespace bgproxy::control {

void ControlServer::share_change(Controller::Decision d, std::function<Controller::Decision()> decide, Done done,
                                 Origin origin, int retries) {
  const auto si = static_cast<std::size_t>(d.service);
  const std::string name = cfg_->services[si].name;
  const auto& entry = d.next->history.back();
  auto doc = to_document(*d.next, si, fleet_->instance(), change_summary(entry));
  const std::int64_t expected = fleet_services_[name].revision;
  fleet_->write_service(
      name, expected, doc,
      [this, alive = alive_, d = std::move(d), decide = std::move(decide), done = std::move(done), origin, retries,
       name, doc](Fleet::CasOutcome o) mutable {
        if (!*alive) return;
        std::string unknown;
        const int service = controller_.resolve_service(name, unknown);
        if (service < 0) return done(error_reply(unknown));  // a reload removed it meanwhile
        auto& fs = fleet_services_[name];
        switch (o.kind) {
          case Fleet::CasOutcome::Kind::committed: {
            // What etcd now holds becomes this instance's state; a watch event for another
            // service may have arrived meanwhile, so the document is adopted, not d.next.
            auto parsed = parse_document(doc);
            if (!parsed) return done(error_reply("cannot read back the written state: " + parsed.error()));
            d.next = Controller::reconcile(*cfg_, adopt(controller_.state(), static_cast<std::size_t>(service), *parsed));
            d.service = service;
            fs.revision = o.revision;
            fs.local_pending = false;
            fleet_->set_revision(fleet_revision());
            return apply_change(std::move(d), std::move(done), origin == Origin::watchdog, true);
          }
          case Fleet::CasOutcome::Kind::conflict: {
            ++fs.conflicts;
            const auto lost_to = o.revision;
            if (!o.current.empty()) take_shared(name, o.revision, o.current);
            if (origin == Origin::command && retries > 0) {
              spdlog::info("cluster: {} changed in the fleet meanwhile (rev {}); deciding again on it", name, lost_to);
              return change(std::move(decide), std::move(done), origin, false, retries - 1);
            }
            if (origin != Origin::command) {
              // Every member evaluates the rollout; one decision lands, the others see it land.
              spdlog::info("cluster: {}: another member's decision landed first (rev {})", name, lost_to);
              return done({});
            }
            spdlog::warn("cluster: conflict: {} changed in the fleet meanwhile (rev {}); this change was not made", name,
                         lost_to);
            return done(error_reply("conflict: service " + name + " kept changing in the fleet (now at revision " +
                                    std::to_string(lost_to) + "); not applied, retry"));
          }
          case Fleet::CasOutcome::Kind::unreachable:
            if (origin == Origin::watchdog) {
              // Safety first: the rollback happens here now and reaches etcd when it answers.
              auto again = decide();
              if (!again.next) return done({});
              again.next->history.back().instance = fleet_->instance();
              return apply_local_change(std::move(again), std::move(done), true);
            }
            if (origin != Origin::command) return done({});
            // A write whose answer was lost may have landed; the watch then brings it here.
            if (o.why.find("outcome unknown") != std::string::npos) {
              return done(error_reply("cluster store unreachable: " + o.why +
                                      " (the change may have reached etcd: see `bgctl status` once it answers)"));
            }
            return done(error_reply("cluster store unreachable: " + o.why +
                                    " (nothing changed; `bgctl --local` changes this instance alone)"));
        }
      });
}

void ControlServer::apply_local_change(Controller::Decision d, Done done, bool by_watchdog) {
  const auto& name = cfg_->services[static_cast<std::size_t>(d.service)].name;
  d.next->history.back().local = true;
  fleet_services_[name].local_pending = true;
  if (fleet_->connected()) {
    // etcd answers after all: the change goes there now, behind this one, unless the fleet moved on.
    spdlog::warn("cluster: {} changed on this instance alone; writing it to etcd", name);
    submit(InternalTask{[this, name](Done next) { settle_with_fleet(name, true, std::move(next)); }, [] {}});
  } else {
    spdlog::warn("cluster: {} changed on this instance alone; it goes to etcd when etcd answers", name);
  }
  apply_change(std::move(d), std::move(done), by_watchdog);
}

void ControlServer::on_service_value(const std::string& service, std::int64_t mod_revision, const std::string& value) {
  auto& fs = fleet_services_[service];
  // Settled by on_resynced(): written to etcd unless the fleet moved on, then the fleet wins.
  if (fs.local_pending) return;
  take_shared(service, mod_revision, value);
}

void ControlServer::take_shared(const std::string& service, std::int64_t mod_revision, const std::string& value) {
  std::string unknown;
  const int si = controller_.resolve_service(service, unknown);
  if (si < 0) return;  // a service of the fleet this instance's config does not have
  auto& fs = fleet_services_[service];
  if (mod_revision <= fs.revision && !fs.local_pending) return;  // known already (this instance's own write)
  auto doc = parse_document(value);
  if (!doc) {
    spdlog::error("cluster: value of {} at rev {} unusable, ignored: {}", service, mod_revision, doc.error());
    fs.revision = mod_revision;
    return;
  }
  if (fs.local_pending) {
    spdlog::warn("cluster: conflict: {} changed in the fleet while this instance was cut off; the fleet's state "
                 "(rev {}, {} by instance {}) replaces the local change",
                 service, mod_revision, doc->change, doc->by);
  }
  auto next = Controller::reconcile(*cfg_, adopt(controller_.state(), static_cast<std::size_t>(si), *doc));
  if (auto saved = store_->save(next); saved.has_error()) {
    spdlog::error("state file not updated (the fleet's change applies): {}", saved.error());
  }
  controller_.commit(std::move(next));
  fs.revision = mod_revision;
  fs.local_pending = false;
  fleet_->set_revision(fleet_revision());
  if (doc->by != fleet_->instance()) {
    spdlog::info("cluster: applied {} rev {} from instance {} ({})", service, mod_revision, doc->by, doc->change);
    // The feed of every member tells of every change; its maker alone notifies (Event::here).
    const auto& history = controller_.state().history;
    const auto last = std::find_if(history.rbegin(), history.rend(), [&](const auto& e) { return e.service == service; });
    if (last != history.rend()) {
      publish_change(*last, static_cast<std::size_t>(si), false);
      // Cut once every worker routes by the new table, as where the rollback was made.
      return publish([this, si, entry = *last, alive = alive_] {
        if (*alive) cut_for_fleet_rollback(static_cast<std::size_t>(si), entry);
      });
    }
  }
  publish([] {});
}

void ControlServer::on_resynced(const std::map<std::string, std::int64_t>& present) {
  for (const auto& svc : cfg_->services) {
    const bool exists = present.contains(svc.name);
    if (exists && !fleet_services_[svc.name].local_pending) continue;
    // Behind the commands already queued, like every change.
    submit(InternalTask{[this, name = svc.name, exists](Done done) { settle_with_fleet(name, exists, std::move(done)); },
                        [] {}});
  }
}

void ControlServer::settle_with_fleet(const std::string& service, bool present, Done done) {
  std::string unknown;
  const int si = controller_.resolve_service(service, unknown);
  auto& fs = fleet_services_[service];
  if (si < 0 || !fleet_ || (present && !fs.local_pending)) return done({});
  // A missing key is created from what this instance has (the first member seeds the fleet);
  // a local change goes in unless the fleet moved on since this instance last saw it.
  const std::int64_t expected = present ? fs.revision : 0;
  const auto& state = controller_.state();
  const auto& history = state.history;
  const auto last = std::find_if(history.rbegin(), history.rend(), [&](const auto& e) { return e.service == service; });
  const std::string what = last == history.rend() ? "initial state" : change_summary(*last);
  const auto doc = to_document(state, static_cast<std::size_t>(si), fleet_->instance(), what);
  fleet_->write_service(service, expected, doc,
                        [this, alive = alive_, service, done = std::move(done)](Fleet::CasOutcome o) {
                          if (!*alive) return;
                          auto& fs = fleet_services_[service];
                          if (o.kind == Fleet::CasOutcome::Kind::committed) {
                            spdlog::info("cluster: wrote {} to etcd (rev {}){}", service, o.revision,
                                         fs.local_pending ? ": the change made here alone" : "");
                            fs.revision = o.revision;
                            fs.local_pending = false;
                            fleet_->set_revision(fleet_revision());
                          } else if (o.kind == Fleet::CasOutcome::Kind::conflict) {
                            ++fs.conflicts;
                            if (!o.current.empty()) take_shared(service, o.revision, o.current);
                          }
                          done({});
                        });
}

std::int64_t ControlServer::fleet_revision() const {
  std::int64_t newest = 0;
  for (const auto& [name, fs] : fleet_services_) newest = std::max(newest, fs.revision);
  return newest;
}

std::optional<FleetView> ControlServer::fleet_view() const {
  if (!fleet_) return std::nullopt;
  FleetView v;
  v.connected = fleet_->connected();
  v.instance = fleet_->instance();
  v.revision = fleet_revision();
  v.members = fleet_->members();
  for (const auto& svc : cfg_->services) {
    const auto it = fleet_services_.find(svc.name);
    v.service_revisions.push_back(it == fleet_services_.end() ? 0 : it->second.revision);
    v.conflicts.push_back(it == fleet_services_.end() ? 0 : it->second.conflicts);
  }
  return v;
}

}  // namespace bgproxy::control
