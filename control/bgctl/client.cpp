#include "control/bgctl/client.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/core/fd.hpp"

namespace bgproxy::bgctl {

void throw_exception_from_error(const ClientError& e, const boost::source_location& loc) {
  boost::throw_exception(std::runtime_error(e.reason), loc);
}

namespace {

using Clock = std::chrono::steady_clock;
using control::Fd;

std::string errno_text(int err) { return std::strerror(err); }

std::string timeout_text(std::chrono::milliseconds timeout) {
  const auto ms = timeout.count();
  return "timed out after " + (ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms");
}

/// Waits for `events` on fd until the deadline. @return 0 when ready, else an errno-like code
/// (ETIMEDOUT on the deadline).
int wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return ETIMEDOUT;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return 0;  // ready, or an error the next call will report
    if (n == 0) return ETIMEDOUT;
    if (errno != EINTR) return errno;
  }
}

}  // namespace

boost::system::result<std::string, ClientError> send_request(const std::string& path, std::string_view line,
                                                         std::chrono::milliseconds timeout) {
  using Kind = ClientError::Kind;
  const auto deadline = Clock::now() + timeout;

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return ClientError{Kind::connect, "empty socket path"};
  if (path.size() >= sizeof(addr.sun_path)) return ClientError{Kind::connect, "socket path too long"};
  std::memcpy(addr.sun_path, path.data(), path.size());

  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return ClientError{Kind::connect, errno_text(errno)};

  // A Unix-socket connect does not normally block; on Linux a full listen backlog makes a
  // non-blocking one fail with EAGAIN, so retry that until the deadline.
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) break;
    int err = errno;
    if (err == EAGAIN) {
      if (Clock::now() >= deadline) return ClientError{Kind::connect, timeout_text(timeout)};
      ::usleep(10'000);
      continue;
    }
    if (err == EINPROGRESS || err == EINTR) {
      if (const int w = wait_for(fd.get(), POLLOUT, deadline); w != 0)
        return ClientError{Kind::connect, w == ETIMEDOUT ? timeout_text(timeout) : errno_text(w)};
      socklen_t len = sizeof(err);
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err == 0) break;
    }
    return ClientError{Kind::connect, errno_text(err)};
  }

  std::string out(line);
  out += '\n';
  std::size_t sent = 0;
  while (sent < out.size()) {
    const ssize_t n = ::send(fd.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN) {
      if (const int w = wait_for(fd.get(), POLLOUT, deadline); w != 0)
        return ClientError{Kind::exchange, w == ETIMEDOUT ? timeout_text(timeout) : errno_text(w)};
      continue;
    }
    return ClientError{Kind::exchange, errno_text(err)};
  }

  std::string in;
  char buf[16 * 1024];
  for (;;) {
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n > 0) {
      const std::size_t old = in.size();
      in.append(buf, static_cast<std::size_t>(n));
      if (const auto nl = in.find('\n', old); nl != std::string::npos) {
        in.resize(nl);
        if (!in.empty() && in.back() == '\r') in.pop_back();
        return in;
      }
      if (in.size() > max_answer_bytes) return ClientError{Kind::exchange, "answer line too long"};
      continue;
    }
    if (n == 0) return ClientError{Kind::exchange, "connection closed before an answer"};
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN) {
      if (const int w = wait_for(fd.get(), POLLIN, deadline); w != 0)
        return ClientError{Kind::exchange,
                           w == ETIMEDOUT ? timeout_text(timeout) + " waiting for an answer" : errno_text(w)};
      continue;
    }
    return ClientError{Kind::exchange, errno_text(err)};
  }
}

}  // namespace bgproxy::bgctl
