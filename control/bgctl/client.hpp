#pragma once
/// bgproxy::bgctl — exchanges on the control socket: connect to the Unix socket, send a
/// request line, read answer lines. Plain POSIX, blocking with poll().
/// Thread: any (no shared state).

#include <chrono>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "control/core/fd.hpp"

namespace bgproxy::bgctl {

/// Why there is no answer; bgctl exits 3 with it.
struct ClientError {
  enum class Kind { connect, exchange } kind = Kind::connect;  ///< could not connect / connected, no answer
  std::string reason;  ///< "No such file or directory", "timed out after 5s", ...
  bool timed_out = false;  ///< the deadline passed (not the peer's doing)
};

[[noreturn]] void throw_exception_from_error(const ClientError& e, const boost::source_location& loc);

using Clock = std::chrono::steady_clock;

/// A connection to the control socket, for exchanges of more than one line: a request and its
/// answer, then the lines of a stream (the `events` feed). Blocking with poll(), every call
/// bounded by its deadline.
class ControlConnection {
 public:
  static boost::system::result<ControlConnection, ClientError> open(const std::string& path,
                                                                    Clock::time_point deadline);
  boost::system::result<void, ClientError> send_line(std::string_view line, Clock::time_point deadline);
  /// The next line, without its newline (and without a trailing '\r').
  boost::system::result<std::string, ClientError> read_line(Clock::time_point deadline);

 private:
  explicit ControlConnection(control::Fd fd) : fd_(std::move(fd)) {}

  control::Fd fd_;
  std::string in_;  ///< read, not yet returned as a line
};

/// Longest answer line accepted (a full history is a few hundred KiB).
inline constexpr std::size_t max_answer_bytes = 16 * 1024 * 1024;

/// Sends `line` plus '\n' to the socket at `path` and returns the first answer line without
/// its newline (and without a trailing '\r').
/// @param timeout bounds the whole exchange: connect, write and read
boost::system::result<std::string, ClientError> send_request(const std::string& path, std::string_view line,
                                                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace bgproxy::bgctl
