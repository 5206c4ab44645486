#pragma once
/// The control plane on the control thread: commands from the control socket (README "bgctl
/// walkthrough") applied one at a time — decide → save to the state store → publish the routing
/// table to every worker → commit → answer, so an acknowledged change is durable and routed
/// by — with health wiring, the watchdog and rollout loop, reloads and binary upgrades.
/// By job: control_server.cpp (start, the queue, changes, health, the rollout loop),
/// control_server_fleet.cpp (a fleet's shared state: changes by compare-and-swap in etcd, the
/// others' changes taken from the watch), control_server_reload.cpp (a reload's control-plane
/// part), control_server_release.cpp (`bgctl release`: smoke requests, then the canary),
/// control_server_upgrade.cpp (the old process's side of a binary upgrade),
/// control_server_events.cpp (the change feed's subscribers and events, webhook notifications),
/// control_socket.cpp (listening, connections, lines).
/// Thread: control.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bgproxy/api/data_plane.hpp"
#include "bgproxy/health/tracker.hpp"
#include "control/core/controller.hpp"
#include "control/core/event_feed.hpp"
#include "control/core/fleet_view.hpp"
#include "control/core/series_ring.hpp"
#include "control/core/service_runtime.hpp"
#include "control/core/state_store.hpp"
#include "control/core/shadow_ledger.hpp"
#include "control/core/stats_history.hpp"
#include "control/server/control_socket.hpp"
#include "control/server/fleet.hpp"
#include "control/server/health_checker.hpp"
#include "control/server/notifier.hpp"
#include "control/server/takeover.hpp"

namespace bgproxy::control {

class ControlServer final : private Connection::Handler, private Fleet::Owner {
 public:
  ControlServer(boost::asio::io_context& ioc, api::DataPlane& data_plane);
  ~ControlServer();

  /// Loads the stored state (a corrupt state file is reported and moved aside), publishes
  /// the routing table it implies, and listens on control.socket.
  /// @param inherited a binary upgrade: serve on the old process's control socket and start
  /// from the health it knew (its control_fd is taken)
  /// @return empty on success, else why the control plane cannot start
  std::string start(Inherited* inherited = nullptr);
  void stop();

 private:
  /// Gets a command's answer; empty when there is none to write (yet).
  using Done = std::function<void(std::string answer)>;

  /// A line from a control-socket client, answered through `reply`.
  struct ClientCommand {
    std::string line;
    Peer peer;
    Done reply;
  };
  /// A change the control plane makes itself (a rollout step, a SIGHUP reload), queued behind
  /// the clients' commands.
  struct InternalTask {
    std::function<void(Done)> run;
    std::function<void()> dropped;  ///< runs instead of `run` when a handover froze changes
  };
  using Pending = std::variant<ClientCommand, InternalTask>;

  /// A binary upgrade under way (README "Binary upgrade").
  struct Upgrade {
    enum class Stage : std::uint8_t {
      starting,      ///< `bgctl upgrade` started the new binary; it has not asked for the sockets yet
      handing_over,  ///< a new process has our sockets; no change may start
      handed_over,   ///< it serves; this process drains and exits
    };
    Stage stage = Stage::starting;
    Done reply;  ///< the `bgctl upgrade` waiting for the outcome; none for a takeover started by hand
  };

  // Connection::Handler
  void on_line(std::string line, const Peer& peer, Done reply) override;
  void on_takeover(std::shared_ptr<Connection> c, std::int32_t pid) override;
  void on_events(std::shared_ptr<Connection> c, const Command& command) override;

  // The queue: one command or task at a time, each running until its Done.
  void submit(Pending p);
  void run_next();
  void execute(const ClientCommand& c, Done done);
  void execute(const InternalTask& t, Done done);

  /// Who asked for a change: how a lost compare-and-swap or an unreachable etcd is answered.
  enum class Origin : std::uint8_t {
    command,   ///< an operator: retried against the new state, else refused
    rollout,   ///< a canary step: dropped, the next tick decides again
    watchdog,  ///< a rollback: made locally when etcd is out of reach (safety first)
  };
  /// Makes the change `decide` decides: with a fleet, through etcd (decide runs again after a
  /// lost compare-and-swap); without one, or `local`, on this instance. `done` gets the answer
  /// once every worker routes by it.
  void change(std::function<Controller::Decision()> decide, Done done, Origin origin, bool local,
              int retries = 2);
  /// Saves, commits and publishes a decided change; `done` gets the answer once every worker
  /// routes by it. @param shared the change is already in etcd: the state file is a cache then,
  /// and failing to write it is logged, not a refusal
  void apply_change(Controller::Decision d, Done done, bool by_watchdog = false, bool shared = false);
  /// Answers a change that left nothing to do (or a rollout's, which nobody waits for).
  void answer_unchanged(const Controller::Decision& d, Origin origin, const Done& done);
  void publish(std::function<void()> done);

  // control_server_drain.cpp (`bgctl rollback --drain`)
  /// Wraps the answer of a rollback of `service_name`: once it is acknowledged, cuts the
  /// exchanges in flight to the color it left at 0 % and adds {"cut":{"color","exchanges"}}.
  Done cut_after_rollback(const std::string& service_name, Done done);
  /// A fleet member's rollback --drain, applied here: cut here too.
  void cut_for_fleet_rollback(std::size_t service, const HistoryEntry& entry);
  /// Where `cfg` keeps the state: its state file.
  std::unique_ptr<StateStore> open_store(const config::Config& cfg) const;

  // Health.
  void start_health_checks();
  void on_transition(const health::Transition& t);
  /// Publishes the routing table after a health change and logs panic mode entry and exit.
  void health_changed();
  const health::Tracker* health() const noexcept { return tracker_ ? &*tracker_ : nullptr; }

  // The rollout loop: every second, collect the workers' stats, then decide per service.
  void do_tick();
  /// Takes a collection into the shadow comparisons and hands their figures to the gate.
  void observe_shadows(const stats::RequestStats& newest);
  /// @param windows the windows the watchdog judges (the fleet's, in a fleet)
  void evaluate_rollouts(const std::vector<ServiceWindow>& windows);
  /// Per service: `own` (this instance's windows), plus the other fleet members' when in a fleet.
  std::vector<ServiceWindow> with_fleet(std::vector<ServiceWindow> own) const;
  WindowFigures window_figures() const { return figures_of(with_fleet(stats_.windows(*cfg_))); }

  // control_server_fleet.cpp
  /// A fleet's bookkeeping per service (by name: reloads renumber services).
  struct FleetService {
    std::int64_t revision = 0;   ///< mod_revision of the service key this instance's state is
    bool local_pending = false;  ///< changed here alone while etcd was out of reach; not in etcd yet
    std::uint64_t conflicts = 0; ///< changes that lost a compare-and-swap
  };
  void on_service_value(const std::string& service, std::int64_t mod_revision, const std::string& value) override;
  void on_resynced(const std::map<std::string, std::int64_t>& present) override;
  /// Takes etcd's value of a service as this instance's state (the shared state wins).
  void take_shared(const std::string& service, std::int64_t mod_revision, const std::string& value);
  /// Writes the change `d` decided to etcd, then applies it.
  void share_change(Controller::Decision d, std::function<Controller::Decision()> decide, Done done, Origin origin,
                    int retries);
  /// Applies `d` here alone (while etcd is out of reach), to be written to etcd later.
  void apply_local_change(Controller::Decision d, Done done, bool by_watchdog);
  /// Writes what this instance changed alone to etcd, or creates a missing key (an InternalTask).
  void settle_with_fleet(const std::string& service, bool present, Done done);
  /// The revision this instance routes by: the newest of its services'.
  std::int64_t fleet_revision() const;
  std::optional<FleetView> fleet_view() const;

  // control_server_events.cpp
  /// Sends `e` to the change feed's subscribers and the notifier; fills in the instance.
  void publish_event(Event e);
  /// This bgproxy in events: its fleet instance name, else the host name.
  std::string instance() const;
  /// The events of a committed change (`entry`, now in controller_'s state).
  /// @param here made by this instance, not taken from the fleet
  void publish_change(const HistoryEntry& entry, std::size_t service, bool here);
  void publish_health(const health::Transition& t);
  /// The watchdog's verdict of this tick (null: not watching); an event when the outcome changed.
  void note_verdict(std::size_t service, const watchdog::Verdict* verdict);
  /// The notifier as a listener of the feed, with `notify:` of cfg_ and its metric.
  void start_notifications();

  // control_server_reload.cpp
  /// The control plane's part of a reload: state reconciled with `next` and saved, health
  /// carried over by (service, color, address), the first table; applied by the plan's commit.
  api::DataPlane::ReloadPlan prepare_reload(std::shared_ptr<const config::Config> next,
                                            const std::vector<routing::ServerInfo>& servers);
  /// Queues a reload (SIGHUP) behind the commands already waiting.
  void queue_reload();

  // control_server_release.cpp
  /// `bgctl release`: the checks, then the smoke requests (off the queue: other commands and
  /// the rollout loop go on meanwhile), then the canary, queued as a change; `c` is answered
  /// with the smoke results and the new state, or why not.
  void start_release(const ClientCommand& p, const Command& c, Done done);
  /// The `release` event of the release just committed, with what its smoke requests answered.
  void announce_release(const boost::json::array& smoke);

  // control_server_upgrade.cpp
  /// `bgctl upgrade`: starts this binary again, which takes over through the control socket;
  /// `c` is answered once it serves or gives up.
  void start_upgrade(const ClientCommand& c, Done done);
  std::string handover_answer(const api::ListeningSockets& sockets) const;
  void handover_finished(std::int32_t pid, bool served);
  /// Ends the upgrade under way, handed over or not (then this process carries on), and answers
  /// the `bgctl upgrade` waiting for it, if any, with `answer`.
  void settle_upgrade(bool handed_over, std::string answer);
  /// A change now would be lost: the new process has read the stored state already.
  bool changes_frozen() const noexcept { return upgrade_ && upgrade_->stage != Upgrade::Stage::starting; }
  bool handed_over() const noexcept { return upgrade_ && upgrade_->stage == Upgrade::Stage::handed_over; }

  boost::asio::io_context& ioc_;
  api::DataPlane& data_plane_;
  std::shared_ptr<const config::Config> cfg_;  ///< what controller_ and tracker_ refer to
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<Fleet> fleet_;  ///< with a `cluster:` section
  std::map<std::string, FleetService> fleet_services_;
  Controller controller_;
  std::vector<ServiceRuntime> runtime_;  ///< by service, like cfg_->services
  StatsHistory stats_;
  SeriesRing series_;  ///< the web page's charts
  ShadowLedger shadows_;  ///< the shadow comparisons, for `bgctl shadow`, status and the gate
  std::optional<health::Tracker> tracker_;
  std::unique_ptr<HealthChecker> checker_;
  ControlSocket socket_;
  boost::asio::steady_timer tick_timer_;
  std::deque<Pending> queue_;
  bool busy_ = false;  ///< a command or task runs; the next waits for its Done
  bool stopped_ = false;
  std::optional<Upgrade> upgrade_;
  boost::asio::steady_timer upgrade_timer_;  ///< how long the new binary may take to ask for the sockets
  std::uint64_t table_version_ = 1;
  Peer self_;  ///< who the watchdog's changes are recorded as
  EventFeed events_;
  Notifier notifier_;
  std::map<std::string, watchdog::Outcome> last_outcome_;  ///< by service name: the last verdict published
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bgproxy::control
