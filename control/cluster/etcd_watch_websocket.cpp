// The watch's WebSocket transport: one JSON message per frame, pinged with progress requests.
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "control/cluster/etcd_client_impl.hpp"

namespace bgproxy::cluster::detail {

namespace {

namespace websocket = beast::websocket;

using WsStream = std::variant<websocket::stream<PlainStream>, websocket::stream<TlsStream>>;

WsStream make_ws_stream(net::io_context& ioc, ssl::context* tls) {
  if (tls != nullptr) return WsStream(std::in_place_type<websocket::stream<TlsStream>>, ioc, *tls);
  return WsStream(std::in_place_type<websocket::stream<PlainStream>>, ioc);
}

class WsWatchStream : public WatchStream, public std::enable_shared_from_this<WsWatchStream> {
 public:
  WsWatchStream(net::io_context& ioc, ssl::context* tls, Ms keepalive_idle)
      : resolver_(ioc), keepalive_idle_(keepalive_idle), ws_(make_ws_stream(ioc, tls)) {}

  void open(const config::EtcdEndpoint& ep, const std::string&, std::string create, Clock::time_point deadline) override {
    ep_ = ep;
    std::visit(
        [&](auto& ws) {
          connect_stream(ws.next_layer(), resolver_, ep_, deadline, keepalive_idle_,
                         [self = shared_from_this(), &ws, create = std::move(create)](std::optional<EtcdError> e) mutable {
                           if (e) return self->fail(std::move(*e));
                           self->handshake(ws, std::move(create));
                         });
        },
        ws_);
  }

  void ping() override { send(watch_progress_request()); }

  void close() override {
    closed_ = true;
    std::visit([](auto& ws) { beast::get_lowest_layer(ws).close(); }, ws_);
  }

 private:
  template <class Ws>
  void handshake(Ws& ws, std::string create) {
    ws.set_option(websocket::stream_base::decorator(
        [](websocket::request_type& req) { req.set(http::field::user_agent, "bgproxy-etcd-watch"); }));
    ws.read_message_max(max_message_bytes);
    ws.async_handshake(host_header(ep_), std::string(path::watch),
                       [self = shared_from_this(), &ws, create = std::move(create)](error_code ec) mutable {
                         if (ec) {
                           return self->fail(make_error(EtcdError::Kind::unavailable,
                                                        "watch handshake with " + self->ep_.text + ": " + ec.message()));
                         }
                         // From here the progress pings watch the connection, not a deadline.
                         beast::get_lowest_layer(ws).expires_never();
                         ws.text(true);
                         self->send(std::move(create));
                         self->read(ws);
                       });
  }

  template <class Ws>
  void read(Ws& ws) {
    ws.async_read(buffer_, [self = shared_from_this(), &ws](error_code ec, std::size_t) {
      if (ec) {
        return self->fail(make_error(EtcdError::Kind::unavailable, "watch stream from " + self->ep_.text + ": " + ec.message()));
      }
      const std::string m = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      self->message(m);
      if (!self->closed_) self->read(ws);
    });
  }

  /// One write at a time (Beast allows no second): the rest wait in out_.
  void send(std::string m) {
    if (closed_) return;
    out_.push_back(std::move(m));
    if (out_.size() == 1) write_next();
  }

  void write_next() {
    std::visit(
        [&](auto& ws) {
          ws.async_write(net::buffer(out_.front()), [self = shared_from_this()](error_code ec, std::size_t) {
            if (ec) {
              return self->fail(make_error(EtcdError::Kind::unavailable, "watch stream to " + self->ep_.text + ": " + ec.message()));
            }
            self->out_.pop_front();
            if (!self->out_.empty() && !self->closed_) self->write_next();
          });
        },
        ws_);
  }

  tcp::resolver resolver_;
  Ms keepalive_idle_;
  WsStream ws_;
  config::EtcdEndpoint ep_;
  beast::flat_buffer buffer_;
  std::deque<std::string> out_;
};

}  // namespace

std::shared_ptr<WatchStream> make_websocket_watch_stream(net::io_context& ioc, ssl::context* tls, Ms keepalive_idle) {
  return std::make_shared<WsWatchStream>(ioc, tls, keepalive_idle);
}

}  // namespace bgproxy::cluster::detail
