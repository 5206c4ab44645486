// SPEC §2 / issue 7: under systemd bgproxy speaks sd_notify — READY=1 once it listens,
// RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a reload, STOPPING=1 when it
// drains, and WATCHDOG=1 heartbeats while every worker loop answers.

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bgtest {
namespace {

/// The datagram socket systemd would listen on ($NOTIFY_SOCKET). A thread reads it all the time,
/// as systemd does: a queue left full (10 datagrams here, net.unix.max_dgram_qlen) would block
/// the proxy's next sd_notify — its READY=1 or MAINPID= — and the test would measure that.
class NotifySocket {
 public:
  explicit NotifySocket(const std::filesystem::path& path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("cannot bind notify socket " + path.string());
    }
    reader_ = std::thread([this] { read_all(); });
  }
  ~NotifySocket() {
    stop_ = true;
    reader_.join();
    ::close(fd_);
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  /// Next message, or "" after `timeout` without one.
  std::string next(Ms timeout) {
    std::unique_lock lock(mutex_);
    if (!arrived_.wait_for(lock, timeout, [this] { return !queue_.empty(); })) return {};
    std::string m = std::move(queue_.front());
    queue_.pop_front();
    return m;
  }

  /// Reads messages until one contains `what`; returns it, or "" on timeout.
  std::string wait_for(const std::string& what, Ms timeout, std::vector<std::string>* seen = nullptr) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto m = next(std::chrono::duration_cast<Ms>(deadline - Clock::now()));
      if (m.empty()) continue;
      if (seen) seen->push_back(m);
      if (m.find(what) != std::string::npos) return m;
    }
    return {};
  }

 private:
  void read_all() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char buf[4096];
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      {
        std::lock_guard lock(mutex_);
        queue_.emplace_back(buf, static_cast<std::size_t>(n));
      }
      arrived_.notify_one();
    }
  }

  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::deque<std::string> queue_;
  std::thread reader_;
};

class SystemdNotify : public IntegrationTest {};

TEST_F(SystemdNotify, ReadyWatchdogReloadingAndStopping) {
  Backend& blue = start_backend("blue");
  ProxyConfig cfg;
  cfg.blue = {"127.0.0.1:" + std::to_string(blue.port())};
  const auto config_path = dir_.path() / "notify.yaml";
  write_file(config_path, render_config(cfg, dir_.path(), 7));
  NotifySocket notify(dir_.path() / "notify.sock");

  // WATCHDOG_USEC=300ms: bgproxy must heartbeat every 100 ms while its workers answer.
  Process proxy({"/usr/bin/env", "NOTIFY_SOCKET=" + (dir_.path() / "notify.sock").string(), "WATCHDOG_USEC=300000",
                 proxy_bin(), "-c", config_path.string()},
                dir_.path(), "bgproxy-notify");
  ASSERT_FALSE(notify.wait_for("READY=1", Ms(10000)).empty()) << proxy.stderr_text();

  int heartbeats = 0;
  const auto until = Clock::now() + Ms(1000);
  while (Clock::now() < until) {
    if (notify.next(Ms(300)).find("WATCHDOG=1") != std::string::npos) ++heartbeats;
  }
  EXPECT_GE(heartbeats, 5) << "expected a heartbeat about every 100 ms";

  proxy.signal(SIGHUP);
  const auto reloading = notify.wait_for("RELOADING=1", Ms(3000));
  ASSERT_FALSE(reloading.empty());
  EXPECT_NE(reloading.find("MONOTONIC_USEC="), std::string::npos) << reloading;
  EXPECT_FALSE(notify.wait_for("READY=1", Ms(3000)).empty()) << "no READY=1 after the reload";

  proxy.signal(SIGTERM);
  EXPECT_FALSE(notify.wait_for("STOPPING=1", Ms(3000)).empty());
  EXPECT_EQ(proxy.wait_exit(Ms(10000)), 0);
}

// The documented systemd upgrade (`bgctl upgrade` with NotifyAccess=all): the old process
// hands MAINPID to the new one and never says STOPPING=1; the new one says READY=1 and keeps
// the watchdog fed (WATCHDOG_PID names it) after the old one has gone.
TEST_F(SystemdNotify, UpgradeHandsMainPidOverWithoutStopping) {
  Backend& blue = start_backend("blue");
  ProxyConfig cfg;
  cfg.blue = {"127.0.0.1:" + std::to_string(blue.port())};
  const auto config_path = dir_.path() / "notify.yaml";
  write_file(config_path, render_config(cfg, dir_.path(), 8));
  NotifySocket notify(dir_.path() / "notify.sock");
  Process old({"/usr/bin/env", "NOTIFY_SOCKET=" + (dir_.path() / "notify.sock").string(), "WATCHDOG_USEC=300000",
               proxy_bin(), "-c", config_path.string()},
              dir_.path(), "bgproxy-old");
  ASSERT_FALSE(notify.wait_for("READY=1", Ms(10000)).empty()) << old.stderr_text();

  auto r = run_command({BGCTL_BIN, "-S", (dir_.path() / "control-8.sock").string(), "upgrade"}, dir_.path(),
                       Ms(60000));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex(R"(upgraded to pid (\d+))"))) << r.out;
  const pid_t next = std::stoi(m[1].str());
  struct Stop {
    pid_t pid;
    ~Stop() { ::kill(pid, SIGTERM); }
  } stop_next{next};

  std::vector<std::string> seen;
  const auto mainpid = notify.wait_for("MAINPID=" + std::to_string(next), Ms(5000), &seen);
  EXPECT_FALSE(mainpid.empty()) << "the old process did not hand MAINPID to the new one";
  EXPECT_EQ(old.wait_exit(Ms(10000)), 0);
  // Everything up to the old process's exit; then only the new one speaks.
  for (auto msg = notify.next(Ms(50)); !msg.empty(); msg = notify.next(Ms(50))) seen.push_back(msg);
  bool ready = false;
  for (const auto& msg : seen) {
    EXPECT_EQ(msg.find("STOPPING=1"), std::string::npos) << "the old process told systemd the service stops";
    if (msg.find("READY=1") != std::string::npos) ready = true;
  }
  EXPECT_TRUE(ready) << "the new process never said READY=1";
  int heartbeats = 0;
  const auto until = Clock::now() + Ms(1000);
  while (Clock::now() < until) {
    if (notify.next(Ms(300)).find("WATCHDOG=1") != std::string::npos) ++heartbeats;
  }
  EXPECT_GE(heartbeats, 5) << "the new process does not feed the watchdog";
  ::kill(next, SIGTERM);
  EXPECT_FALSE(notify.wait_for("STOPPING=1", Ms(5000)).empty()) << "the new process did not say STOPPING=1";
}

}  // namespace
}  // namespace bgtest
