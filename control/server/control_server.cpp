#include "control/server/control_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <utility>

#include <boost/asio/read_until.hpp>
#include <boost/json.hpp>
#include <boost/asio/write.hpp>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include "control/core/json_line.hpp"

namespace bgproxy::control {

namespace net = boost::asio;
using local = net::local::stream_protocol;
using error_code = boost::system::error_code;

namespace {

constexpr auto idle_timeout = std::chrono::seconds(60);
constexpr auto linger_time = std::chrono::seconds(1);
constexpr auto tick_period = std::chrono::seconds(1);

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// "2026-11-24T21:30:00.123Z"
std::string now_rfc3339() {
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

std::string weights_text(const Weights& w) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "blue %.2f%% / green %.2f%%", (10000 - w.green_bp) / 100.0, w.green_bp / 100.0);
  return buf;
}

Peer peer_of(local::socket& s) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return {};
  return Peer{cred.uid, cred.pid};
}

}  // namespace

/// One control-socket client: reads a line, answers it, reads the next.
class ControlServer::Connection : public std::enable_shared_from_this<ControlServer::Connection> {
 public:
  Connection(local::socket socket, ControlServer& server)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), server_(server), peer_(peer_of(socket_)) {}

  void start() { do_read(); }

  void close() {
    error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
  }

  const Peer& peer() const noexcept { return peer_; }
  int native_handle() { return socket_.native_handle(); }

  /// Waits up to `limit` for one more line: `done(true, line)`, or `done(false, "")` on EOF,
  /// error or time-out; the connection is closed once `done` returns.
  void await_line(std::chrono::steady_clock::duration limit, std::function<void(bool, std::string)> done) {
    arm(limit);
    net::async_read_until(socket_, net::dynamic_buffer(buffer_, max_line_bytes + 1), '\n',
                          [self = shared_from_this(), done = std::move(done)](error_code ec, std::size_t n) {
                            self->timer_.cancel();
                            std::string line = ec ? std::string() : self->buffer_.substr(0, n - 1);
                            done(!ec, std::move(line));  // may still write on the socket
                            self->close();
                          });
  }

  void write(std::string reply, bool then_close) {
    out_ = std::move(reply);
    out_.push_back('\n');
    arm(idle_timeout);
    net::async_write(socket_, net::buffer(out_), [self = shared_from_this(), then_close](error_code ec, std::size_t) {
      if (ec) return self->close();
      if (then_close) return self->linger();
      self->do_read();
    });
  }

 private:
  void arm(std::chrono::steady_clock::duration d) {
    timer_.expires_after(d);
    timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->close();
    });
  }

  void do_read() {
    arm(idle_timeout);
    net::async_read_until(socket_, net::dynamic_buffer(buffer_, max_line_bytes + 1), '\n',
                          [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(error_code ec, std::size_t n) {
    if (ec == net::error::not_found) {
      // Over 64 KiB without a newline: answer, then close (SPEC §7).
      buffer_.clear();
      return write(error_reply("line too long"), true);
    }
    if (ec) return close();
    std::string line = buffer_.substr(0, n - 1);
    buffer_.erase(0, n);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    timer_.cancel();
    if (const auto pid = parse_takeover(line)) return server_.take_over(shared_from_this(), *pid);
    server_.submit(std::move(line), peer_, [self = shared_from_this()](std::string reply) {
      self->write(std::move(reply), false);
    });
  }

  /// Half-close and drain what the client still sends, so our answer is not
  /// destroyed by a reset when we close with unread input.
  void linger() {
    error_code ignored;
    socket_.shutdown(local::socket::shutdown_send, ignored);
    arm(linger_time);
    socket_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->close();
      self->linger_more();
    });
  }

  void linger_more() {
    socket_.async_read_some(net::buffer(scratch_), [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->close();
      self->linger_more();
    });
  }

  local::socket socket_;
  net::steady_timer timer_;
  ControlServer& server_;
  Peer peer_;
  std::string buffer_;
  std::string out_;
  std::array<char, 4096> scratch_{};
};

ControlServer::ControlServer(net::io_context& ioc, api::DataPlane& data_plane)
    : ioc_(ioc),
      data_plane_(data_plane),
      cfg_(data_plane.config_snapshot()),
      state_file_(cfg_->state_file),
      controller_(*cfg_, Controller::initial_state(*cfg_)),
      acceptor_(ioc),
      tick_timer_(ioc),
      upgrade_timer_(ioc),
      switches_(data_plane.config().services.size(), 0),
      manual_rollbacks_(data_plane.config().services.size(), 0),
      watchdog_rollbacks_(data_plane.config().services.size(), 0),
      verdicts_(data_plane.config().services.size()),
      rollout_queued_(data_plane.config().services.size(), false),
      dry_run_logged_(data_plane.config().services.size()),
      panic_(data_plane.config().services.size(), false),
      self_{static_cast<std::uint32_t>(::getuid()), static_cast<std::int32_t>(::getpid())} {}

ControlServer::~ControlServer() { *alive_ = false; }

std::string ControlServer::start(Inherited* inherited) {
  const auto& cfg = *cfg_;
  auto loaded = state_file_.load();
  if (!loaded.problem.empty()) spdlog::error("{}", loaded.problem);
  if (loaded.state) {
    controller_.commit(Controller::reconcile(cfg, *loaded.state));
    spdlog::info("state restored from {}", state_file_.location());
  } else {
    spdlog::info("no usable state file at {}: starting from the configured initial weights", state_file_.location());
  }
  for (const auto& ss : controller_.state().services) {
    spdlog::info("service {}: {} (phase {})", ss.name, weights_text(ss.weights), phase_name(ss.phase));
  }
  // Servers start down until their checks pass (SPEC §5); until some do, the
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

  socket_path_ = cfg.control.socket;
  const std::filesystem::path path(socket_path_);
  error_code ec;
  if (inherited && inherited->control_fd >= 0) {
    acceptor_.assign(local(), inherited->control_fd, ec);
    if (ec) return "cannot serve on the inherited control socket: " + ec.message();
    inherited->control_fd = -1;
    return finish_start();
  }
  std::filesystem::create_directories(path.parent_path(), ec);
  if (std::filesystem::is_socket(path, ec)) {
    // A socket file left by a previous run is stale unless something answers on it.
    local::socket probe(ioc_);
    probe.connect(local::endpoint(path.string()), ec);
    if (!ec) return "control socket " + path.string() + " is in use by another process";
    std::filesystem::remove(path, ec);
  }
  acceptor_.open(local(), ec);
  if (!ec) acceptor_.bind(local::endpoint(path.string()), ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return "cannot listen on control socket " + path.string() + ": " + ec.message();
  if (::chmod(path.c_str(), cfg.control.mode) != 0) {
    return "cannot chmod control socket " + path.string() + ": " + std::strerror(errno);
  }
  return finish_start();
}

std::string ControlServer::finish_start() {
  data_plane_.add_metrics_source([this, alive = alive_] { return *alive ? render_metrics() : std::string(); });
  data_plane_.on_stop([this, alive = alive_] {
    if (*alive) stop();
  });
  do_accept();
  do_tick();
  start_health_checks();
  return {};
}

void ControlServer::take_over(std::shared_ptr<Connection> c, std::int32_t pid) {
  if (handing_over_ || handed_over_ || stopped_) {
    return c->write(error_reply("another process is already taking over"), true);
  }
  if (c->peer().uid != 0 && c->peer().uid != self_.uid) {
    return c->write(error_reply("takeover refused: uid " + std::to_string(c->peer().uid) + " is neither root nor " +
                                std::to_string(self_.uid)),
                    true);
  }
  // From here no change may start: the new process reads the state file we leave behind.
  handing_over_ = true;
  auto sockets = data_plane_.listening_sockets();
  std::vector<int> fds;
  for (const auto& l : sockets.listeners) fds.insert(fds.end(), l.fds.begin(), l.fds.end());
  fds.push_back(sockets.admin_fd);
  fds.push_back(acceptor_.native_handle());
  if (!send_with_fds(c->native_handle(), handover_answer(sockets), fds)) {
    spdlog::error("upgrade: cannot pass the sockets to pid {}: {}", pid, std::strerror(errno));
    c->close();
    return handover_finished(pid, false);
  }
  spdlog::info("upgrade: pid {} is taking over {} listening sockets", pid, fds.size());
  c->await_line(std::chrono::seconds(60), [this, c, pid, alive = alive_](bool ok, const std::string& line) {
    if (!*alive) return;
    // The new process serves only once we acknowledge; after a time-out it hears nothing and
    // exits, so the two never serve side by side.
    static constexpr std::string_view ack = "{\"ok\":true}\n";
    const bool served = ok && line.find("\"takeover_done\"") != std::string::npos &&
                        ::send(c->native_handle(), ack.data(), ack.size(), MSG_NOSIGNAL) ==
                            static_cast<ssize_t>(ack.size());
    handover_finished(pid, served);
  });
}

std::string ControlServer::handover_answer(const api::ListeningSockets& sockets) const {
  boost::json::object o;
  o["ok"] = true;
  o["pid"] = ::getpid();
  boost::json::array listeners;
  for (const auto& l : sockets.listeners) {
    listeners.push_back(boost::json::object{{"address", l.address}, {"count", l.fds.size()}});
  }
  o["listeners"] = std::move(listeners);
  o["admin"] = sockets.admin_address;
  boost::json::array health;
  for (const auto& s : data_plane_.servers()) {
    health.push_back(boost::json::object{{"service", cfg_->services[s.service].name},
                                         {"color", routing::color_name(s.color)},
                                         {"address", s.endpoint.text},
                                         {"up", tracker_ && tracker_->is_up(s.id)}});
  }
  o["health"] = std::move(health);
  return boost::json::serialize(o);
}

void ControlServer::handover_finished(std::int32_t pid, bool served) {
  handing_over_ = false;
  upgrade_timer_.cancel();
  auto reply = std::move(upgrade_reply_);
  upgrade_reply_ = nullptr;
  if (!served) {
    spdlog::warn("upgrade: pid {} went away before it served; this process carries on", pid);
    if (reply) reply(error_reply("upgrade failed: the new process (pid " + std::to_string(pid) +
                                 ") did not take over; see its log. The running one carries on."));
    return;
  }
  handed_over_ = true;
  spdlog::info("upgrade: handed over to pid {}; draining", pid);
  if (reply) reply(ok_reply("upgraded to pid " + std::to_string(pid)));
  error_code ignored;
  acceptor_.close(ignored);
  data_plane_.hand_over(pid);
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

void ControlServer::queue_reload() {
  queue_.push_back(Pending{{}, self_, [](std::string) {},
                           [this](std::function<void(std::string)> done) {
                             data_plane_.reload([done = std::move(done)](const auto&) { done({}); });
                           },
                           [] { spdlog::warn("reload (SIGHUP) dropped: a new process is taking over"); }});
  if (!busy_) run_next();
}

api::DataPlane::ReloadPlan ControlServer::prepare_reload(std::shared_ptr<const config::Config> next,
                                                         const std::vector<routing::ServerInfo>& servers) {
  struct Next {
    std::shared_ptr<const config::Config> cfg;
    StateFile state_file;
    Controller controller;
    health::Tracker tracker;
  };
  auto state = Controller::reconcile(*next, controller_.state());
  StateFile state_file(next->state_file);
  // Durable first, as for every change: what runs is what a restart would restore.
  if (auto saved = state_file.save(state); saved.has_error()) return {saved.error(), nullptr, {}};
  auto n = std::make_shared<Next>(Next{next, std::move(state_file), Controller(*next, std::move(state)),
                                       health::Tracker(*next, servers, std::chrono::steady_clock::now())});
  n->tracker.carry_over(*tracker_);
  n->controller.set_health(n->tracker.up_flags());
  auto table = std::make_shared<const routing::RoutingTable>(n->controller.table(++table_version_));

  auto commit = [this, n, table] {
    const auto old_cfg = cfg_;
    // Per-service figures follow their service by name; a new service starts from zero.
    const auto remap = [&](auto& v, auto fresh) {
      std::remove_reference_t<decltype(v)> out(n->cfg->services.size(), fresh);
      for (std::size_t i = 0; i < n->cfg->services.size(); ++i) {
        for (std::size_t o = 0; o < old_cfg->services.size() && o < v.size(); ++o) {
          if (old_cfg->services[o].name == n->cfg->services[i].name) out[i] = v[o];
        }
      }
      v = std::move(out);
    };
    remap(switches_, std::uint64_t{0});
    remap(manual_rollbacks_, std::uint64_t{0});
    remap(watchdog_rollbacks_, std::uint64_t{0});
    remap(verdicts_, std::string());
    remap(dry_run_logged_, watchdog::Rule::none);
    remap(rollout_queued_, false);
    for (auto& [when, snapshot] : history_) {
      std::vector<stats::ServiceStats> services(snapshot.services);
      remap(services, stats::ServiceStats{});
      snapshot.services = std::move(services);
      snapshot.servers.clear();  // the window reads services only
    }
    panic_.assign(n->cfg->services.size(), false);
    for (std::size_t si = 0; si < table->services.size(); ++si) {
      const auto& route = table->services[si];
      panic_[si] = !route.has_usable(routing::Color::blue) && !route.has_usable(routing::Color::green);
    }
    cfg_ = n->cfg;
    state_file_ = std::move(n->state_file);
    controller_ = std::move(n->controller);
    tracker_.reset();
    tracker_.emplace(std::move(n->tracker));
    start_health_checks();
  };
  return {{}, table, std::move(commit)};
}

void ControlServer::on_transition(const health::Transition& t) {
  const auto& s = data_plane_.servers()[t.server];
  if (t.up) {
    spdlog::info("server {}/{} up: {}", routing::color_name(s.color), s.endpoint.text, t.reason);
  } else {
    spdlog::warn("server {}/{} down: {}", routing::color_name(s.color), s.endpoint.text, t.reason);
  }
  health_changed();
}

void ControlServer::health_changed() {
  controller_.set_health(tracker_->up_flags());
  const auto table = controller_.table(0);
  for (std::size_t si = 0; si < table.services.size(); ++si) {
    const auto& route = table.services[si];
    const bool panic = !route.has_usable(routing::Color::blue) && !route.has_usable(routing::Color::green);
    if (panic == panic_[si]) continue;
    panic_[si] = panic;
    if (panic) {
      spdlog::warn("{}: panic mode: no healthy server in either color; serving every enabled server", route.name);
    } else {
      spdlog::info("{}: left panic mode", route.name);
    }
  }
  publish([] {});
}

void ControlServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  tick_timer_.cancel();
  if (checker_) checker_->stop();
  // After a handover, answers still being written (the upgrade's own) finish as the process drains.
  for (auto& weak : connections_) {
    if (auto c = weak.lock(); c && !handed_over_) c->close();
  }
  connections_.clear();
  // After a handover the path is the new process's socket.
  if (!handed_over_) std::filesystem::remove(socket_path_, ignored);
}

void ControlServer::do_accept() {
  acceptor_.async_accept([this, alive = alive_](error_code ec, local::socket socket) {
    if (!*alive || ec == net::error::operation_aborted || stopped_) return;
    if (!ec) {
      auto c = std::make_shared<Connection>(std::move(socket), *this);
      std::erase_if(connections_, [](const auto& w) { return w.expired(); });
      connections_.push_back(c);
      c->start();
    }
    do_accept();
  });
}

void ControlServer::submit(std::string line, Peer peer, std::function<void(std::string)> reply) {
  queue_.push_back(Pending{std::move(line), peer, std::move(reply), {}, {}});
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
  execute(*p, [this, p, alive = alive_](std::string answer) {
    // Empty: answered later by someone else (bgctl upgrade), or a task with nobody to answer.
    if (!answer.empty()) p->reply(std::move(answer));
    if (*alive) run_next();
  });
}

void ControlServer::execute(const Pending& p, std::function<void(std::string)> done) {
  // A change now would be lost: the new process has read the state file already.
  const bool frozen = handing_over_ || handed_over_;
  if (p.task && frozen && p.cancel) p.cancel();
  if (p.task) return frozen ? done({}) : p.task(std::move(done));
  auto parsed = parse_command(p.line);
  if (!parsed) return done(error_reply(parsed.error().message));
  const Command& c = *parsed;
  const bool read_only = c.kind == CommandKind::status || c.kind == CommandKind::health ||
                         c.kind == CommandKind::history;
  if (frozen && !read_only) {
    return done(error_reply("this process is handing over to a new one (binary upgrade); retry in a moment"));
  }
  std::string error;
  int service = -1;
  if (!c.service.empty()) {
    service = controller_.resolve_service(c.service, error);
    if (service < 0) return done(error_reply(error));
  }
  switch (c.kind) {
    case CommandKind::status:
      return done(status_reply(controller_, service, window_figures(), health(), &verdicts_));
    case CommandKind::health:
      return done(health_reply(controller_, service, health(), std::chrono::steady_clock::now(),
                               history_.empty() ? nullptr : &history_.back().second.servers));
    case CommandKind::history:
      return done(history_reply(controller_.state(), c.service, c.limit));
    case CommandKind::upgrade: {
      if (upgrade_reply_) return done(error_reply("an upgrade is already in progress"));
      auto exited = [this, alive = alive_] {
        if (!*alive || !upgrade_reply_ || handing_over_ || handed_over_) return;
        upgrade_timer_.cancel();
        auto reply = std::move(upgrade_reply_);
        upgrade_reply_ = nullptr;
        reply(error_reply("upgrade failed: the new process exited before taking over (see the log); "
                          "this one carries on"));
      };
      if (auto problem = data_plane_.start_successor(socket_path_, exited); !problem.empty()) {
        return done(error_reply(problem));
      }
      // Answered when the new process serves, or gives up (handover_finished); the queue goes
      // on meanwhile, since the takeover itself freezes changes.
      upgrade_reply_ = p.reply;
      done({});
      upgrade_timer_.expires_after(std::chrono::seconds(60));
      upgrade_timer_.async_wait([this, alive = alive_](error_code ec) {
        if (ec || !*alive || !upgrade_reply_ || handing_over_) return;
        auto reply = std::move(upgrade_reply_);
        upgrade_reply_ = nullptr;
        reply(error_reply("upgrade failed: the new process did not ask for the sockets within 60 s; see its log"));
      });
      return;
    }
    case CommandKind::reload:
      return data_plane_.reload([done = std::move(done)](const api::DataPlane::ReloadResult& r) {
        if (!r.applied) return done(error_reply(r.message));
        done(ok_reply(r.message.empty() ? "configuration reloaded" : "configuration reloaded; " + r.message));
      });
    default:
      break;
  }
  auto d = controller_.decide(c, p.peer, now_rfc3339(), unix_ms());
  if (!d.error.empty()) return done(error_reply(d.error));
  if (!d.next) return done(change_reply(controller_, d.service, window_figures(), health(), &verdicts_));
  apply_change(std::move(d), std::move(done));
}

void ControlServer::apply_change(Controller::Decision d, std::function<void(std::string)> done, bool by_watchdog) {
  // Durable first: a change the state file does not hold is refused, so what
  // runs never diverges from what a restart would restore.
  if (auto saved = state_file_.save(*d.next); saved.has_error()) {
    spdlog::error("change refused: {}", saved.error());
    return done(error_reply(saved.error() + "; change refused"));
  }
  const auto si = static_cast<std::size_t>(d.service);
  const auto before = controller_.state().services[si].weights;
  controller_.commit(std::move(*d.next));
  const auto& ss = controller_.state().services[si];
  const auto& entry = controller_.state().history.back();
  if (d.switched) ++switches_[si];
  if (d.rollback) ++(by_watchdog ? watchdog_rollbacks_ : manual_rollbacks_)[si];
  const std::string args = entry.args.empty() ? std::string() : " " + to_line(entry.args);
  spdlog::info("{}: {}{} by uid {} pid {}: {} -> {}", ss.name, entry.command, args, entry.uid, entry.pid,
               weights_text(before), weights_text(ss.weights));
  const int service = d.service;
  publish([this, service, done = std::move(done), alive = alive_] {
    if (!*alive) return;
    done(change_reply(controller_, service, window_figures(), health(), &verdicts_));
  });
}

void ControlServer::publish(std::function<void()> done) {
  auto table = std::make_shared<const routing::RoutingTable>(controller_.table(++table_version_));
  data_plane_.publish(std::move(table), std::move(done));
}

void ControlServer::do_tick() {
  tick_timer_.expires_after(tick_period);
  tick_timer_.async_wait([this, alive = alive_](error_code ec) {
    if (ec || !*alive) return;
    data_plane_.collect([this, alive](stats::RequestStats s) {
      if (!*alive) return;
      const auto now = std::chrono::steady_clock::now();
      history_.emplace_back(now, std::move(s));
      std::chrono::milliseconds longest{0};
      for (const auto& svc : cfg_->services) longest = std::max(longest, svc.watchdog.window);
      while (history_.size() > 2 && now - history_[1].first >= longest) history_.pop_front();
      evaluate_rollouts();
    });
    do_tick();
  });
}

void ControlServer::evaluate_rollouts() {
  const auto& cfg = *cfg_;
  const auto figures = window_figures();
  const auto now_ms = unix_ms();
  for (std::size_t si = 0; si < cfg.services.size(); ++si) {
    const auto& svc = cfg.services[si];
    const auto& ss = controller_.state().services[si];
    verdicts_[si].clear();
    if (!under_watch(ss) || rollout_queued_[si] || handing_over_ || handed_over_) continue;
    std::optional<watchdog::Verdict> verdict;
    if (svc.watchdog.enabled && si < figures.size()) {
      const auto target = *ss.target;
      const auto& t = figures[si][static_cast<std::size_t>(target)];
      const auto& o = figures[si][static_cast<std::size_t>(routing::other(target))];
      verdict = watchdog::evaluate({t.requests, t.error_rate, t.p95_seconds}, {o.requests, o.error_rate, o.p95_seconds},
                                   svc.watchdog, routing::color_name(routing::other(target)));
      verdicts_[si] = verdict->reason;
    }
    const auto step = next_step(svc, ss, verdict, now_ms);
    if (step.kind != RolloutStep::Kind::rollback) dry_run_logged_[si] = watchdog::Rule::none;
    if (step.kind == RolloutStep::Kind::hold) continue;
    const auto target_name = routing::color_name(*ss.target);
    if (step.kind == RolloutStep::Kind::rollback) {
      if (svc.watchdog.dry_run) {
        // Dry run: say what would happen once per failing rule (the figures move every
        // second), again only after a pass, and leave the weights alone.
        if (dry_run_logged_[si] != verdict->rule) {
          spdlog::warn("watchdog (dry run): would roll back {} {}: {}", svc.name, target_name, verdict->reason);
          dry_run_logged_[si] = verdict->rule;
        }
        continue;
      }
      spdlog::warn("watchdog: rollback {} {}: {}", svc.name, target_name, verdict->reason);
    }
    rollout_queued_[si] = true;
    const bool by_watchdog = step.kind == RolloutStep::Kind::rollback;
    // By name: a reload queued ahead of this step may renumber or remove services.
    const auto unqueue = [this, name = svc.name] {
      std::string unknown;
      const int service = controller_.resolve_service(name, unknown);
      if (service >= 0) rollout_queued_[static_cast<std::size_t>(service)] = false;
      return service;
    };
    queue_.push_back(Pending{{}, self_, [](std::string) {},
                             [this, unqueue, step, by_watchdog](std::function<void(std::string)> done) {
                               const int service = unqueue();
                               if (service < 0) return done({});
                               auto d = controller_.apply_rollout(service, step, self_, now_rfc3339(), unix_ms());
                               if (!d.next) return done({});
                               apply_change(std::move(d), std::move(done), by_watchdog);
                             },
                             // Dropped: the next tick decides again (here, or in the new process).
                             [unqueue] { (void)unqueue(); }});
    if (!busy_) run_next();
  }
}

WindowFigures ControlServer::window_figures() const {
  WindowFigures out;
  if (history_.empty()) return out;
  const auto& cfg = *cfg_;
  const auto& [newest_time, newest] = history_.back();
  for (std::size_t si = 0; si < cfg.services.size(); ++si) {
    // The oldest snapshot still inside this service's window.
    auto oldest = history_.begin();
    while (std::next(oldest) != history_.end() && newest_time - oldest->first > cfg.services[si].watchdog.window) {
      ++oldest;
    }
    const double seconds = std::chrono::duration<double>(newest_time - oldest->first).count();
    std::array<stats::ColorWindow, 2> figures{};
    if (si < newest.services.size() && si < oldest->second.services.size()) {
      for (std::size_t c = 0; c < 2; ++c) {
        figures[c] = stats::window_between(oldest->second.services[si].colors[c], newest.services[si].colors[c],
                                           seconds);
      }
    }
    out.push_back(figures);
  }
  return out;
}

std::string ControlServer::render_metrics() const {
  using prometheus::ClientMetric;
  prometheus::MetricFamily switches{"bgproxy_switches_total", "Accepted weight changes.",
                                    prometheus::MetricType::Counter, {}};
  prometheus::MetricFamily rollbacks{"bgproxy_rollbacks_total", "Rollbacks, by reason.",
                                     prometheus::MetricType::Counter, {}};
  const auto& cfg = *cfg_;
  for (std::size_t si = 0; si < cfg.services.size(); ++si) {
    ClientMetric s;
    s.label = {{"service", cfg.services[si].name}};
    s.counter.value = static_cast<double>(switches_[si]);
    switches.metric.push_back(std::move(s));
    // No reason="health" (SPEC §9 lists it): health never rolls a service back. Requests for a
    // color with no healthy server fail over to the other color one by one
    // (bgproxy_failovers_total) while the weights stay; only the watchdog and an operator
    // (rollback, canary abort) move them back. A series that could only ever read 0 would suggest
    // otherwise.
    for (const auto& [reason, count] : {std::pair{"manual", manual_rollbacks_[si]},
                                        std::pair{"watchdog", watchdog_rollbacks_[si]}}) {
      ClientMetric r;
      r.label = {{"service", cfg.services[si].name}, {"reason", reason}};
      r.counter.value = static_cast<double>(count);
      rollbacks.metric.push_back(std::move(r));
    }
  }
  prometheus::MetricFamily up{"bgproxy_server_up", "1 when the server passes its health checks.",
                              prometheus::MetricType::Gauge, {}};
  prometheus::MetricFamily checks{"bgproxy_health_checks_total", "Active health checks, by result.",
                                  prometheus::MetricType::Counter, {}};
  for (const auto& s : data_plane_.servers()) {
    const std::vector<ClientMetric::Label> labels{{"service", cfg.services[s.service].name},
                                                  {"color", std::string(routing::color_name(s.color))},
                                                  {"server", s.endpoint.text}};
    ClientMetric u;
    u.label = labels;
    u.gauge.value = tracker_ && tracker_->is_up(s.id) ? 1.0 : 0.0;
    up.metric.push_back(std::move(u));
    if (!tracker_ || !cfg.services[s.service].health_check.enabled) continue;
    for (const bool ok : {true, false}) {
      ClientMetric c;
      c.label = labels;
      c.label.push_back({"result", ok ? "success" : "failure"});
      const auto& h = tracker_->at(s.id);
      c.counter.value = static_cast<double>(ok ? h.checks_ok : h.checks_failed);
      checks.metric.push_back(std::move(c));
    }
  }
  prometheus::MetricFamily error_rate{"bgproxy_watchdog_error_rate", "Error rate over the watchdog window.",
                                      prometheus::MetricType::Gauge, {}};
  prometheus::MetricFamily p95{"bgproxy_watchdog_p95_seconds", "p95 request duration over the watchdog window.",
                               prometheus::MetricType::Gauge, {}};
  prometheus::MetricFamily phase{"bgproxy_rollout_phase", "1 for the rollout phase each service is in.",
                                 prometheus::MetricType::Gauge, {}};
  const auto figures = window_figures();
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
      m.gauge.value = controller_.state().services[si].phase == p ? 1.0 : 0.0;
      phase.metric.push_back(std::move(m));
    }
  }
  return prometheus::TextSerializer().Serialize({switches, rollbacks, up, checks, error_rate, p95, phase});
}

}  // namespace bgproxy::control
