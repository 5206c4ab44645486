#pragma once
/// bgproxy::bgctl — one exchange on the control socket: connect to the Unix
/// socket, send one request line, read one answer line. Plain POSIX, blocking with poll().
/// Thread: any (no shared state).

#include <chrono>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

namespace bgproxy::bgctl {

/// Why there is no answer; bgctl exits 3 with it.
struct ClientError {
  enum class Kind { connect, exchange } kind = Kind::connect;  ///< could not connect / connected, no answer
  std::string reason;  ///< "No such file or directory", "timed out after 5s", ...
};

[[noreturn]] void throw_exception_from_error(const ClientError& e, const boost::source_location& loc);

/// Longest answer line accepted (a full history is a few hundred KiB).
inline constexpr std::size_t max_answer_bytes = 16 * 1024 * 1024;

/// Sends `line` plus '\n' to the socket at `path` and returns the first answer line without
/// its newline (and without a trailing '\r').
/// @param timeout bounds the whole exchange: connect, write and read
boost::system::result<std::string, ClientError> send_request(const std::string& path, std::string_view line,
                                                         std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace bgproxy::bgctl
