#pragma once
/// A scripted HTTP/1.1 origin for the request-smuggling suites: a raw TCP listener on 127.0.0.1
/// inside the test process that records every byte each connection brings, frames requests with
/// a deliberately strict reader, answers each with a scripted reply, and keeps the connection
/// open so that the proxy pools it and sends the next (victim) request down the same one.
///
/// The reader tolerates nothing RFC 9112 lets a recipient tolerate: CRLF only, no obs-fold, at
/// most one Content-Length and one Transfer-Encoding field and never both, a Transfer-Encoding
/// that ends in chunked, then exactly that many body bytes (or strictly parsed chunks). So a
/// proxy that forwards ambiguous framing shows up either as a recorded framing error or as a
/// second request hidden in a body, both of which the tests see in requests().
///
/// Thread: an acceptor thread plus one thread per connection; every public member may be called
/// from the test's thread at any time.

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bgtest {

/// One request as the strict reader framed it (or failed to).
struct RecordedRequest {
  std::size_t connection = 0;  ///< index of the TCP connection it came on, in accept order
  std::string raw;             ///< the whole message as received: head, then the framed body
  std::string method, target, version;
  std::vector<Header> headers;  ///< in the order received, values without surrounding whitespace
  std::string body;             ///< payload: the Content-Length bytes, or the de-chunked data
  std::string error;  ///< non-empty: why it could not be framed; the connection was then closed

  /// Every value of a field (case-insensitive name), one per field line.
  std::vector<std::string> values(std::string_view name) const;
  std::optional<std::string> value(std::string_view name) const;
};

/// What the backend writes after a request, and what it does with the connection then.
struct Reply {
  enum class Then {
    keep_alive,        ///< read the next request
    close,             ///< half-close (ends a close-delimited body) and only record from now on
    switch_protocols,  ///< after a 101: everything that comes later is tunnel bytes, not requests
  };
  std::string bytes;
  Then then = Then::keep_alive;
};

class RecordingBackend {
public:
  /// The reply to a request; nullopt means the default answer().
  using Script = std::function<std::optional<Reply>(const RecordedRequest&)>;

  RecordingBackend();
  ~RecordingBackend();
  RecordingBackend(const RecordingBackend&) = delete;
  RecordingBackend& operator=(const RecordingBackend&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  /// Replaces the script; meant for moments when no request is in flight.
  void set_script(Script script);

  /// The default answer: 200 with a Content-Length body naming the request, so a response
  /// that reaches the wrong client says whose it was.
  static std::string answer_body(std::string_view method, std::string_view target);

  std::vector<RecordedRequest> requests() const;
  /// Waits until at least `n` requests (framing failures included) are recorded.
  bool wait_requests(std::size_t n, Ms timeout) const;

  std::size_t connections() const;
  /// Bytes that came on `connection` after its switch_protocols reply.
  std::string after_switch(std::size_t connection) const;
  bool wait_after_switch(std::size_t connection, std::size_t n, Ms timeout) const;
  /// Waits until the peer (the proxy) has closed `connection`.
  bool wait_closed_by_peer(std::size_t connection, Ms timeout) const;

  /// Every connection's bytes, printable, for failure messages.
  std::string transcript() const;

private:
  struct Connection {
    int fd = -1;
    std::string received;      ///< every byte, in order
    std::string after_switch;  ///< the part of `received` after a 101 was sent
    bool switched = false;
    bool closed_by_peer = false;
  };

  void accept_loop();
  void serve(std::size_t index);
  /// Frames and answers what `pending` holds. @return false once the connection is done with
  /// requests (closed by a reply, switched, or failed framing).
  bool answer_pending(std::size_t index, std::string& pending);
  bool wait(const std::function<bool()>& done, Ms timeout) const;

  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  Script script_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<RecordedRequest> requests_;
  std::vector<std::thread> threads_;  ///< one per connection; joined on destruction
  std::thread acceptor_;
};

/// `s` with CR and LF made visible (at most `max` characters), for failure messages.
std::string printable(std::string_view s, std::size_t max = 600);

}  // namespace bgtest
