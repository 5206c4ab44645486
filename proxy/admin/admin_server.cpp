#include "proxy/admin/admin_server.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "proxy/admin/page.hpp"

namespace bgproxy::proxy {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class AdminServer::Session : public std::enable_shared_from_this<AdminServer::Session> {
 public:
  Session(tcp::socket socket, const Handlers& handlers) : stream_(std::move(socket)), handlers_(handlers) {}

  void start() { do_read(); }

 private:
  void do_read() {
    req_ = {};
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, req_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->handle();
    });
  }

  void handle() {
    const auto target = std::string_view(req_.target());
    const auto path = target.substr(0, target.find('?'));
    if (req_.method() != http::verb::get && req_.method() != http::verb::head) {
      return send(http::status::method_not_allowed, "text/plain", "read-only: GET only\n");
    }
    if (path == "/metrics") {
      return handlers_.metrics([self = shared_from_this()](std::string body) {
        self->send(http::status::ok, "text/plain; version=0.0.4; charset=utf-8", std::move(body));
      });
    }
    if (path == "/status") {
      return handlers_.status([self = shared_from_this()](std::string body) {
        self->send(http::status::ok, "application/json", std::move(body));
      });
    }
    if (path == "/") return send(http::status::ok, "text/html; charset=utf-8", std::string(page_html()), true);
    if (path == "/ui/data") {
      return handlers_.page_data([self = shared_from_this()](std::string body) {
        self->send(http::status::ok, "application/json", std::move(body), true);
      });
    }
    if (path == "/healthz") return send(http::status::ok, "text/plain", "ok\n");
    if (path == "/readyz") {
      const bool ready = handlers_.ready();
      return send(ready ? http::status::ok : http::status::service_unavailable, "text/plain",
                  ready ? "ready\n" : "not ready\n");
    }
    send(http::status::not_found, "text/plain", "not found\n");
  }

  /// @param page the web page or its data: never cached (both are live), and the page may
  /// load nothing but its own inline style and script and then its data
  void send(http::status status, std::string_view type, std::string body, bool page = false) {
    res_ = {};
    res_.result(status);
    res_.version(req_.version());
    res_.set(http::field::content_type, type);
    if (page) {
      res_.set(http::field::cache_control, "no-store");
      res_.set("Content-Security-Policy", page_csp());
      res_.set("X-Content-Type-Options", "nosniff");
      res_.set("Referrer-Policy", "no-referrer");
    }
    res_.keep_alive(req_.keep_alive());
    res_.body() = std::move(body);
    res_.prepare_payload();
    if (req_.method() == http::verb::head) res_.body().clear();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || !self->res_.keep_alive()) return self->close();
      self->do_read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  const Handlers& handlers_;
};

AdminServer::AdminServer(net::io_context& ioc, tcp::acceptor&& bound, Handlers handlers)
    : ioc_(ioc), acceptor_(std::move(bound)), handlers_(std::move(handlers)) {}

AdminServer::~AdminServer() = default;

void AdminServer::start() { do_accept(); }

void AdminServer::stop() {
  beast::error_code ignored;
  acceptor_.close(ignored);
}

void AdminServer::do_accept() {
  acceptor_.async_accept(ioc_, [this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (!ec) std::make_shared<Session>(std::move(socket), handlers_)->start();
    do_accept();
  });
}

}  // namespace bgproxy::proxy
