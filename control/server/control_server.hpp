#pragma once
/// The control socket (SPEC §7): a Unix stream socket speaking one JSON object
/// per line each way, served on the control thread. Commands are applied one at
/// a time: decide → persist the state file → publish the routing table to every
/// worker → commit → answer, so an acknowledged change is durable and routed by.
/// Thread: control.

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bgproxy/api/data_plane.hpp"
#include "control/core/state.hpp"
#include "control/core/state_file.hpp"
#include "bgproxy/stats/request_stats.hpp"
#include "bgproxy/watchdog/policy.hpp"
#include "control/core/controller.hpp"
#include "control/core/replies.hpp"
#include "control/core/rollout.hpp"
#include "control/server/health_checker.hpp"
#include "control/server/takeover.hpp"

namespace bgproxy::control {

class ControlServer {
 public:
  ControlServer(boost::asio::io_context& ioc, api::DataPlane& data_plane);
  ~ControlServer();

  /// Loads the state file (a corrupt one is reported and moved aside), publishes
  /// the routing table it implies, and listens on control.socket.
  /// @param inherited a binary upgrade: serve on the old process's control socket and start
  /// from the health it knew (its control_fd is taken)
  /// @return empty on success, else why the control plane cannot start
  std::string start(Inherited* inherited = nullptr);
  void stop();

 private:
  class Connection;
  /// A control-socket line, or an internal change (the rollout loop) queued behind them.
  struct Pending {
    std::string line;
    Peer peer;
    std::function<void(std::string)> reply;
    std::function<void(std::function<void(std::string)>)> task;
    std::function<void()> cancel;  ///< a task dropped unrun (a handover froze changes)
  };

  std::string finish_start();
  void do_accept();
  /// A new bgproxy asks for our sockets (binary upgrade): freeze changes, pass the sockets,
  /// and hand over once it says it serves; carry on as before if it goes away first.
  void take_over(std::shared_ptr<Connection> c, std::int32_t pid);
  void handover_finished(std::int32_t pid, bool served);
  std::string handover_answer(const api::ListeningSockets& sockets) const;
  /// The control plane's part of a reload: state reconciled with `next` and saved, health
  /// carried over by (service, color, address), the first table; applied by the plan's commit.
  api::DataPlane::ReloadPlan prepare_reload(std::shared_ptr<const config::Config> next,
                                            const std::vector<routing::ServerInfo>& servers);
  /// Queues a reload (SIGHUP) behind the commands already waiting.
  void queue_reload();
  void start_health_checks();
  void submit(std::string line, Peer peer, std::function<void(std::string)> reply);
  void run_next();
  void execute(const Pending& p, std::function<void(std::string)> done);
  void apply_change(Controller::Decision d, std::function<void(std::string)> done, bool by_watchdog = false);
  void evaluate_rollouts();
  void publish(std::function<void()> done);
  void do_tick();
  void on_transition(const health::Transition& t);
  /// Publishes the routing table after a health change and logs panic mode entry and exit.
  void health_changed();
  const health::Tracker* health() const noexcept { return tracker_ ? &*tracker_ : nullptr; }
  WindowFigures window_figures() const;
  std::string render_metrics() const;

  boost::asio::io_context& ioc_;
  api::DataPlane& data_plane_;
  std::shared_ptr<const config::Config> cfg_;  ///< what controller_ and tracker_ refer to
  StateFile state_file_;
  std::string socket_path_;  ///< as bound at start (a reload does not move it)
  Controller controller_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer tick_timer_;
  std::vector<std::weak_ptr<Connection>> connections_;  ///< so stop() can close them
  std::optional<health::Tracker> tracker_;
  std::unique_ptr<HealthChecker> checker_;
  std::deque<Pending> queue_;
  bool busy_ = false;
  bool stopped_ = false;
  bool handing_over_ = false;  ///< a new process has our sockets; no change may start
  bool handed_over_ = false;   ///< it serves; this process drains and exits
  std::function<void(std::string)> upgrade_reply_;  ///< the `bgctl upgrade` waiting for the outcome
  boost::asio::steady_timer upgrade_timer_;
  std::uint64_t table_version_ = 1;
  /// One merged stats snapshot per second, covering the watchdog window.
  std::deque<std::pair<std::chrono::steady_clock::time_point, stats::RequestStats>> history_;
  std::vector<std::uint64_t> switches_;            ///< by service
  std::vector<std::uint64_t> manual_rollbacks_;    ///< by service
  std::vector<std::uint64_t> watchdog_rollbacks_;  ///< by service
  std::vector<std::string> verdicts_;              ///< last verdict per service, for status (""=none)
  std::vector<bool> rollout_queued_;               ///< a rollout step waits in the queue
  std::vector<watchdog::Rule> dry_run_logged_;     ///< failing rule last logged in dry run, per service
  std::vector<bool> panic_;                        ///< no healthy server in either color, per service
  Peer self_;                                      ///< who the watchdog's changes are recorded as
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bgproxy::control
