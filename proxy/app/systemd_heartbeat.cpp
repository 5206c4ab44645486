#include "proxy/app/systemd_heartbeat.hpp"

#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace bgproxy::proxy {

SystemdHeartbeat::SystemdHeartbeat() {
  const char* env = std::getenv("NOTIFY_SOCKET");
  const std::string_view path = env != nullptr ? env : "";
  if (path.empty() || path.size() >= sizeof address_.sun_path || (path[0] != '/' && path[0] != '@')) return;
  address_.sun_family = AF_UNIX;
  std::memcpy(address_.sun_path, path.data(), path.size());
  // An abstract address starts with a NUL and is exactly as long as its name; a path ends in one.
  if (path[0] == '@') address_.sun_path[0] = '\0';
  address_size_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (path[0] == '@' ? 0 : 1));
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

SystemdHeartbeat::~SystemdHeartbeat() {
  if (fd_ >= 0) ::close(fd_);
}

void SystemdHeartbeat::beat() noexcept {
  if (fd_ < 0) return;
  static constexpr std::string_view message = "WATCHDOG=1";
  // EAGAIN (queue full) and every other failure alike: this heartbeat is lost, not waited for.
  (void)::sendto(fd_, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&address_), address_size_);
}

}  // namespace bgproxy::proxy
