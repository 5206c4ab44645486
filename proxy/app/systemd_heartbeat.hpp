#pragma once
/// The systemd watchdog's heartbeat (WATCHDOG=1) sent without ever waiting. sd_notify() blocks
/// while the notify socket's queue is full — a busy or wedged PID 1 — and the heartbeat is sent
/// from the control thread, which also serves bgctl: a blocked heartbeat froze `bgctl upgrade`
/// (seen when nothing read the socket for a second). A heartbeat that finds the queue full is
/// dropped; the next one goes a third of the watchdog period later. READY=1, STOPPING=1 and
/// MAINPID= still go through sd_notify(): systemd must get those, and they are sent rarely.
/// Thread: control.

#include <sys/socket.h>
#include <sys/un.h>

namespace bgproxy::proxy {

class SystemdHeartbeat {
 public:
  /// Reads $NOTIFY_SOCKET (a path, or "@name" in the abstract namespace); without it, beat() does
  /// nothing.
  SystemdHeartbeat();
  ~SystemdHeartbeat();
  SystemdHeartbeat(const SystemdHeartbeat&) = delete;
  SystemdHeartbeat& operator=(const SystemdHeartbeat&) = delete;

  /// Sends WATCHDOG=1 if the socket takes it now.
  void beat() noexcept;

 private:
  int fd_ = -1;
  sockaddr_un address_{};
  socklen_t address_size_ = 0;
};

}  // namespace bgproxy::proxy
