#pragma once
/// One connection of a health check to its server: TCP, and TLS over it for a pool with `tls`
/// (the data plane's settings from bgproxy/tls, so a check reaches a backend as requests do),
/// with ALPN h2 for an HTTP/2 color. A transport makes a new one each time it reconnects, and
/// every handler holds the one it was started on, so the objects its pending operations use live
/// until those operations complete, whatever the transport has moved on to.
/// Thread: control.

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "bgproxy/tls/upstream_tls.hpp"

namespace bgproxy::control {

class HealthConnection : public std::enable_shared_from_this<HealthConnection> {
 public:
  using tcp = boost::asio::ip::tcp;

  /// Where and how to connect; the same for every connection of one server.
  struct Target {
    tcp::endpoint endpoint;
    std::shared_ptr<const tls::UpstreamTlsServer> tls;  ///< null: plain TCP
    bool h2 = false;  ///< over TLS: offer h2 by ALPN and refuse a server that does not choose it
  };

  HealthConnection(boost::asio::io_context& ioc, const Target& target);

  /// Connects and, for TLS, handshakes. `done` gets "" once the connection is usable, else the
  /// reason ("connect: ...", "tls handshake: ...", "tls: the server did not choose h2 by ALPN").
  void open(std::function<void(std::string error)> done);
  /// Cancels what is pending: those operations complete with an error.
  void close();

  /// Calls `f` with the stream to read and write: the TLS stream, or the socket itself.
  template <class F>
  void with_stream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(socket_);
    }
  }

 private:
  void handshake(std::function<void(std::string error)> done);

  tcp::socket socket_;
  std::optional<boost::asio::ssl::stream<tcp::socket&>> tls_;  ///< over socket_, for a TLS pool
  Target target_;
};

}  // namespace bgproxy::control
