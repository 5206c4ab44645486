#pragma once
/// Health checks of an HTTP/2 color (`protocol: h2c`, prior knowledge in clear; or `h2`, TLS with
/// ALPN h2), on libnghttp2 as a client: one connection per server kept between checks, each check
/// one stream on it. `protocol: http` sends `GET path` with :authority = the service's host and
/// checks the status against expect_status; `protocol: grpc` calls grpc.health.v1.Health/Check
/// (control/core/grpc_health) and is healthy only when the server answers SERVING.
/// The connection is read all the time, between checks too, so a server's PING, SETTINGS or GOAWAY
/// is answered or noticed when it comes, not at the next check.
/// Thread: control.

#include <nghttp2/nghttp2.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "bgproxy/config/config.hpp"
#include "control/server/health_connection.hpp"
#include "control/server/health_transport.hpp"

namespace bgproxy::control {

class H2HealthTransport : public HealthTransport, public std::enable_shared_from_this<H2HealthTransport> {
 public:
  /// @param authority :authority, the service's host, as a client of the service would send
  H2HealthTransport(boost::asio::io_context& ioc, HealthConnection::Target target, std::string authority,
                    const config::HealthCheck& hc);
  ~H2HealthTransport() override;
  H2HealthTransport(const H2HealthTransport&) = delete;
  H2HealthTransport& operator=(const H2HealthTransport&) = delete;

  void check(Done done) override;
  void close() override;

 private:
  /// One connection and the nghttp2 session on it; handlers hold the one they were started on.
  struct Link {
    std::shared_ptr<HealthConnection> conn;
    nghttp2_session* session = nullptr;  ///< freed by drop_link(), while this transport is alive
    std::array<std::uint8_t, 16384> in{};
    std::string out;  ///< bytes being written
    bool writing = false;
  };
  using LinkPtr = std::shared_ptr<Link>;

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t flags, void* self);
  static int on_data_chunk_recv(nghttp2_session*, std::uint8_t flags, std::int32_t stream_id, const std::uint8_t* data,
                                std::size_t len, void* self);
  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code, void* self);
  static ssize_t read_body(nghttp2_session*, std::int32_t stream_id, std::uint8_t* buf, std::size_t length,
                           std::uint32_t* data_flags, nghttp2_data_source* source, void* self);

  bool start_session(Link& link);
  void submit();
  void do_read(const LinkPtr& link);
  /// Writes what nghttp2 has to send, hands over a finished check, lets a finished session go.
  void pump(const LinkPtr& link);
  void flush(const LinkPtr& link);
  /// The connection failed: the check in progress, if any, fails with `error`.
  void lost(const std::string& error);
  void drop_link();
  HealthAnswer verdict(std::uint32_t error_code) const;
  void deliver(HealthAnswer answer);

  boost::asio::io_context& ioc_;
  HealthConnection::Target target_;
  std::string authority_;
  config::HealthCheck hc_;  ///< a copy: protocol, path, expect_status, timeout
  std::string request_body_;  ///< grpc: the HealthCheckRequest frame; http: empty (no DATA)
  LinkPtr link_;  ///< the kept connection; null: none
  Done done_;
  bool reused_ = false;

  // The check in progress: its stream and what came back on it.
  std::int32_t stream_id_ = 0;
  std::size_t body_sent_ = 0;
  bool answered_ = false;  ///< a response HEADERS frame arrived
  unsigned status_ = 0;
  std::optional<std::string> grpc_status_;
  std::string grpc_message_;
  std::string body_;
  bool body_too_long_ = false;
  std::optional<HealthAnswer> finished_;  ///< set inside nghttp2's callbacks, delivered after them
};

}  // namespace bgproxy::control
