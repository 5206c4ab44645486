#include "control/server/h1_health_transport.hpp"

#include <utility>

#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "bgproxy/health/tracker.hpp"

namespace bgproxy::control {

namespace http = boost::beast::http;
using error_code = boost::system::error_code;

H1HealthTransport::H1HealthTransport(boost::asio::io_context& ioc, HealthConnection::Target target,
                                     const std::string& host, const config::HealthCheck& hc)
    : ioc_(ioc), target_(std::move(target)), hc_(hc) {
  request_.method(http::verb::get);
  request_.target(hc.path);
  request_.version(11);
  request_.set(http::field::host, host);
  request_.set(http::field::user_agent, "bgproxy-health-check");
}

H1HealthTransport::~H1HealthTransport() { close(); }

void H1HealthTransport::check(Done done) {
  done_ = std::move(done);
  if (conn_) {
    reused_ = true;
    return send(conn_);
  }
  reused_ = false;
  buffer_.clear();
  conn_ = std::make_shared<HealthConnection>(ioc_, target_);
  conn_->open([self = shared_from_this(), conn = conn_](std::string error) {
    if (conn != self->conn_) return;  // closed meanwhile
    if (!error.empty()) return self->deliver(HealthAnswer{false, 0, std::move(error), false});
    self->send(conn);
  });
}

void H1HealthTransport::close() {
  done_ = nullptr;
  drop_connection();
}

void H1HealthTransport::drop_connection() {
  if (!conn_) return;
  conn_->close();
  conn_.reset();
}

void H1HealthTransport::send(const ConnectionPtr& conn) {
  conn->with_stream([&](auto& stream) {
    http::async_write(stream, request_, [self = shared_from_this(), conn](error_code ec, std::size_t) {
      if (conn != self->conn_) return;
      if (ec) return self->lost("send: " + ec.message());
      self->read(conn);
    });
  });
}

void H1HealthTransport::read(const ConnectionPtr& conn) {
  parser_.emplace();
  parser_->body_limit(max_health_body);
  conn->with_stream([&](auto& stream) {
    http::async_read(stream, buffer_, *parser_, [self = shared_from_this(), conn](error_code ec, std::size_t) {
      if (conn != self->conn_) return;
      if (ec) return self->lost("read: " + ec.message());
      const auto& res = self->parser_->get();
      const unsigned status = res.result_int();
      if (!res.keep_alive()) self->drop_connection();
      if (health::Tracker::status_expected(self->hc_, status)) {
        self->deliver(HealthAnswer{true, status, {}, false});
      } else {
        self->deliver(HealthAnswer{false, status, "status " + std::to_string(status), false});
      }
    });
  });
}

void H1HealthTransport::lost(const std::string& error) { deliver(HealthAnswer{false, 0, error, reused_}); }

void H1HealthTransport::deliver(HealthAnswer answer) {
  if (!done_) return;
  auto done = std::move(done_);
  done_ = nullptr;
  done(std::move(answer));
}

}  // namespace bgproxy::control
