// ControlServer: the old process's side of a binary upgrade (README "Binary upgrade", the
// exchange in takeover.hpp). `bgctl upgrade` starts the new binary; whoever then asks for our
// sockets gets them, and once it says it serves, this process stops accepting and drains. From
// the moment the sockets leave until the new process fails, no change may start: it has read the
// stored state already.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>
#include <utility>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "control/core/replies.hpp"
#include "control/server/control_server.hpp"

namespace bgproxy::control {

namespace {

constexpr auto successor_deadline = std::chrono::seconds(60);  ///< to ask for the sockets
constexpr auto takeover_deadline = std::chrono::seconds(60);   ///< to say it serves, once it has them

}  // namespace

void ControlServer::start_upgrade(const ClientCommand& c, Done done) {
  if (upgrade_) return done(error_reply("an upgrade is already in progress"));
  auto exited = [this, alive = alive_] {
    if (!*alive || !upgrade_ || upgrade_->stage != Upgrade::Stage::starting) return;
    settle_upgrade(false, error_reply("upgrade failed: the new process exited before taking over (see the log); "
                                      "this one carries on"));
  };
  if (auto problem = data_plane_.start_successor(socket_.path(), exited); !problem.empty()) {
    return done(error_reply(problem));
  }
  // Answered when the new process serves, or gives up (handover_finished); the queue goes
  // on meanwhile, since the takeover itself freezes changes.
  upgrade_ = Upgrade{Upgrade::Stage::starting, c.reply};
  done({});
  upgrade_timer_.expires_after(successor_deadline);
  upgrade_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive || !upgrade_ || upgrade_->stage != Upgrade::Stage::starting) return;
    settle_upgrade(false, error_reply("upgrade failed: the new process did not ask for the sockets within 60 s; "
                                      "see its log"));
  });
}

void ControlServer::on_takeover(std::shared_ptr<Connection> c, std::int32_t pid) {
  if (changes_frozen() || stopped_) {
    return c->write(error_reply("another process is already taking over"), true);
  }
  if (c->peer().uid != 0 && c->peer().uid != self_.uid) {
    return c->write(error_reply("takeover refused: uid " + std::to_string(c->peer().uid) + " is neither root nor " +
                                std::to_string(self_.uid)),
                    true);
  }
  // From here no change may start: the new process reads the state we leave behind. A
  // `bgctl upgrade` waiting for this takeover hears how it ends.
  upgrade_ = Upgrade{Upgrade::Stage::handing_over, upgrade_ ? std::move(upgrade_->reply) : nullptr};
  auto sockets = data_plane_.listening_sockets();
  std::vector<int> fds;
  for (const auto& l : sockets.listeners) fds.insert(fds.end(), l.fds.begin(), l.fds.end());
  fds.push_back(sockets.admin_fd);
  fds.push_back(socket_.native_handle());
  if (!send_with_fds(c->native_handle(), handover_answer(sockets), fds)) {
    spdlog::error("upgrade: cannot pass the sockets to pid {}: {}", pid, std::strerror(errno));
    c->close();
    return handover_finished(pid, false);
  }
  spdlog::info("upgrade: pid {} is taking over {} listening sockets", pid, fds.size());
  c->await_line(takeover_deadline, [this, c, pid, alive = alive_](bool ok, const std::string& line) {
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
  if (!served) {
    spdlog::warn("upgrade: pid {} went away before it served; this process carries on", pid);
    return settle_upgrade(false, error_reply("upgrade failed: the new process (pid " + std::to_string(pid) +
                                             ") did not take over; see its log. The running one carries on."));
  }
  spdlog::info("upgrade: handed over to pid {}; draining", pid);
  settle_upgrade(true, ok_reply("upgraded to pid " + std::to_string(pid)));
  socket_.stop_accepting();
  data_plane_.hand_over(pid);
}

void ControlServer::settle_upgrade(bool handed_over, std::string answer) {
  upgrade_timer_.cancel();
  Done reply = upgrade_ ? std::move(upgrade_->reply) : nullptr;
  if (handed_over) {
    upgrade_ = Upgrade{Upgrade::Stage::handed_over, nullptr};
  } else {
    upgrade_.reset();
  }
  if (reply) reply(std::move(answer));
}

}  // namespace bgproxy::control
