#pragma once
/// Zero-downtime binary upgrade, by fd passing over the control socket: a
/// starting bgproxy asks the running one for its listening sockets (data
/// listeners, admin, the control socket itself) with {"command":"takeover"};
/// the answer line carries them as SCM_RIGHTS. Once the new process serves it
/// says {"command":"takeover_done"}; the old one then stops accepting, drains
/// and exits (after it acknowledged, so the two never both carry on). The sockets never
/// close in between, so no connection is refused
/// and none queued in a backlog is lost (which re-binding SO_REUSEPORT would risk).
/// Thread: control, or main before the loops start.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bgproxy/api/data_plane.hpp"
#include "bgproxy/routing/routing_table.hpp"

namespace bgproxy::control {

/// A server's health as the old process knew it.
struct InheritedHealth {
  std::string service;
  routing::Color color = routing::Color::blue;
  std::string address;
  bool up = false;
};

/// What a new process received from the running one. Owns its fds until handed on.
struct Inherited {
  std::int32_t from_pid = 0;
  api::ListeningSockets sockets;
  int control_fd = -1;
  std::vector<InheritedHealth> health;
  int channel = -1;  ///< the connection to the old process, for finish_takeover()
};

/// Asks whoever listens on `socket_path` for its sockets.
/// @return nullopt when nothing answers there (no socket file, or a stale one): start normally
/// @throws std::runtime_error when a process answers but the takeover fails (it keeps serving)
std::optional<Inherited> request_takeover(const std::string& socket_path);

/// Tells the old process that this one serves now and waits (a few seconds at most) for its
/// acknowledgement; it then drains and exits.
/// @return false when the old process did not acknowledge (it gave up waiting and carries on):
/// this one must not serve
bool finish_takeover(Inherited& inherited);

/// Closes the inherited fds nobody used.
void close_unused(Inherited& inherited);

/// Writes `line` and a newline on a connected Unix socket with `fds` attached (SCM_RIGHTS).
/// @return false (errno set) when it could not be sent whole
bool send_with_fds(int socket, const std::string& line, const std::vector<int>& fds);

}  // namespace bgproxy::control
