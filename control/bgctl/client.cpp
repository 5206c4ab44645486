#include "control/bgctl/client.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
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
    // At most an hour per poll: a far deadline (an event feed followed until interrupted)
    // would not fit poll's int.
    const int n = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 3'600'000)));
    if (n > 0) return 0;  // ready, or an error the next call will report
    if (n == 0) continue;  // the loop's first line tells the deadline from an hour's slice
    if (errno != EINTR) return errno;
  }
}

}  // namespace

boost::system::result<ControlConnection, ClientError> ControlConnection::open(const std::string& path,
                                                                            Clock::time_point deadline) {
  using Kind = ClientError::Kind;
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
      if (Clock::now() >= deadline) return ClientError{Kind::connect, "timed out", true};
      ::usleep(10'000);
      continue;
    }
    if (err == EINPROGRESS || err == EINTR) {
      if (const int w = wait_for(fd.get(), POLLOUT, deadline); w != 0)
        return ClientError{Kind::connect, w == ETIMEDOUT ? "timed out" : errno_text(w), w == ETIMEDOUT};
      socklen_t len = sizeof(err);
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err == 0) break;
    }
    return ClientError{Kind::connect, errno_text(err)};
  }
  return ControlConnection(std::move(fd));
}

boost::system::result<void, ClientError> ControlConnection::send_line(std::string_view line,
                                                                      Clock::time_point deadline) {
  using Kind = ClientError::Kind;
  std::string out(line);
  out += '\n';
  std::size_t sent = 0;
  while (sent < out.size()) {
    const ssize_t n = ::send(fd_.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN) {
      if (const int w = wait_for(fd_.get(), POLLOUT, deadline); w != 0)
        return ClientError{Kind::exchange, w == ETIMEDOUT ? "timed out" : errno_text(w), w == ETIMEDOUT};
      continue;
    }
    return ClientError{Kind::exchange, errno_text(err)};
  }
  return {};
}

boost::system::result<std::string, ClientError> ControlConnection::read_line(Clock::time_point deadline) {
  using Kind = ClientError::Kind;
  for (;;) {
    if (const auto nl = in_.find('\n'); nl != std::string::npos) {
      std::string line = in_.substr(0, nl);
      in_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
    if (in_.size() > max_answer_bytes) return ClientError{Kind::exchange, "answer line too long"};
    char buf[16 * 1024];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (n > 0) {
      in_.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) return ClientError{Kind::exchange, "connection closed before an answer"};
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN) {
      if (const int w = wait_for(fd_.get(), POLLIN, deadline); w != 0)
        return ClientError{Kind::exchange, w == ETIMEDOUT ? "timed out waiting for an answer" : errno_text(w),
                           w == ETIMEDOUT};
      continue;
    }
    return ClientError{Kind::exchange, errno_text(err)};
  }
}

boost::system::result<std::string, ClientError> send_request(const std::string& path, std::string_view line,
                                                         std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  // The reasons say how long: "timed out after 5s".
  const auto with_timeout = [&](ClientError e) {
    if (e.timed_out) e.reason.replace(0, std::string_view("timed out").size(), timeout_text(timeout));
    return e;
  };
  auto conn = ControlConnection::open(path, deadline);
  if (!conn) return with_timeout(conn.error());
  if (auto sent = conn->send_line(line, deadline); !sent) return with_timeout(sent.error());
  auto answer = conn->read_line(deadline);
  if (!answer) return with_timeout(answer.error());
  return answer;
}

}  // namespace bgproxy::bgctl
