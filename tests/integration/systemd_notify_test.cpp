// SPEC §2 / issue 7: under systemd bgproxy speaks sd_notify — READY=1 once it listens,
// RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a reload, STOPPING=1 when it
// drains, and WATCHDOG=1 heartbeats while every worker loop answers.

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "harness.hpp"

namespace bgtest {
namespace {

/// The datagram socket systemd would listen on ($NOTIFY_SOCKET).
class NotifySocket {
 public:
  explicit NotifySocket(const std::filesystem::path& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("cannot bind notify socket " + path.string());
    }
  }
  ~NotifySocket() { ::close(fd_); }

  /// Next message, or "" after `timeout` without one.
  std::string next(Ms timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
    char buf[4096];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
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
  std::filesystem::path path_;
  int fd_ = -1;
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

}  // namespace
}  // namespace bgtest
