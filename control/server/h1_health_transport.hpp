#pragma once
/// Health checks of an HTTP/1.1 color: `GET path` with the service's host, the status checked
/// against expect_status, one keep-alive connection reused while the server allows it.
/// Thread: control.

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "bgproxy/config/config.hpp"
#include "control/server/health_connection.hpp"
#include "control/server/health_transport.hpp"

namespace bgproxy::control {

class H1HealthTransport : public HealthTransport, public std::enable_shared_from_this<H1HealthTransport> {
 public:
  /// @param host the Host header: the service's, as a client of the service would send
  H1HealthTransport(boost::asio::io_context& ioc, HealthConnection::Target target, const std::string& host,
                    const config::HealthCheck& hc);
  ~H1HealthTransport() override;

  void check(Done done) override;
  void close() override;

 private:
  using ConnectionPtr = std::shared_ptr<HealthConnection>;

  void drop_connection();
  void send(const ConnectionPtr& conn);
  void read(const ConnectionPtr& conn);
  /// A send or read error: on a kept connection the server may just have closed it.
  void lost(const std::string& error);
  void deliver(HealthAnswer answer);

  boost::asio::io_context& ioc_;
  HealthConnection::Target target_;
  config::HealthCheck hc_;  ///< a copy: expect_status
  boost::beast::http::request<boost::beast::http::empty_body> request_;
  ConnectionPtr conn_;  ///< the kept connection; null: none
  bool reused_ = false;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::string_body>> parser_;
  Done done_;
};

}  // namespace bgproxy::control
