// The watch's plain HTTP stream transport: POST /v3/watch, one JSON line per message, no pings.
#include "control/cluster/etcd_client_impl.hpp"

namespace bgproxy::cluster::detail {

namespace {

/// POST /v3/watch with the create request as the whole body; the answer is a chunked stream of
/// newline-terminated JSON messages, which this splits by line, not by chunk.
class HttpWatchStream : public WatchStream, public std::enable_shared_from_this<HttpWatchStream> {
 public:
  HttpWatchStream(net::io_context& ioc, ssl::context* tls, Ms keepalive_idle)
      : resolver_(ioc), keepalive_idle_(keepalive_idle), stream_(make_http_stream(ioc, tls)) {
    on_chunk_ = [this](std::uint64_t, std::string_view data, error_code& ec) {
      pending_.append(data);
      if (pending_.size() > max_message_bytes) ec = http::error::body_limit;
      return data.size();
    };
  }

  void open(const config::EtcdEndpoint& ep, const std::string& token, std::string create, Clock::time_point deadline) override {
    ep_ = ep;
    request_.method(http::verb::post);
    request_.target(std::string(path::watch));
    request_.version(11);
    request_.set(http::field::host, host_header(ep_));
    request_.set(http::field::content_type, "application/json");
    request_.set("Grpc-Metadata-Hasleader", "true");
    if (!token.empty()) request_.set(http::field::authorization, token);
    request_.body() = std::move(create);
    request_.prepare_payload();
    std::visit(
        [&](auto& s) {
          connect_stream(s, resolver_, ep_, deadline, keepalive_idle_, [self = shared_from_this(), &s](std::optional<EtcdError> e) {
            if (e) return self->fail(std::move(*e));
            self->start(s);
          });
        },
        stream_);
  }

  void ping() override {}

  void close() override {
    closed_ = true;
    std::visit([](auto& s) { beast::get_lowest_layer(s).close(); }, stream_);
  }

 private:
  template <class S>
  void start(S& s) {
    http::async_write(s, request_, [self = shared_from_this(), &s](error_code ec, std::size_t) {
      if (ec) return self->broken(ec);
      self->parser_.emplace();
      self->parser_->body_limit(boost::none);  // an endless stream; on_chunk_ bounds one message
      self->parser_->on_chunk_body(self->on_chunk_);
      http::async_read_header(s, self->buffer_, *self->parser_, [self, &s](error_code ec, std::size_t) {
        if (ec) return self->broken(ec);
        if (self->parser_->get().result() != http::status::ok) return self->refused(s);
        self->read(s);
      });
    });
  }

  template <class S>
  void read(S& s) {
    http::async_read_some(s, buffer_, *parser_, [self = shared_from_this(), &s](error_code ec, std::size_t) {
      if (ec) return self->broken(ec);
      self->deliver_lines();
      if (self->closed_) return;
      if (self->parser_->is_done()) {
        return self->fail(make_error(EtcdError::Kind::unavailable, "watch stream from " + self->ep_.text + " ended"));
      }
      self->read(s);
    });
  }

  void deliver_lines() {
    std::size_t start = 0;
    for (std::size_t nl; !closed_ && (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (nl > start) {
        // The first message proves the watch is served: from here TCP keepalive and the
        // member's leader check watch the stream, not a deadline.
        std::visit([](auto& s) { beast::get_lowest_layer(s).expires_never(); }, stream_);
        message(std::string_view(pending_).substr(start, nl - start));
      }
    }
    pending_.erase(0, start);
  }

  /// A status other than 200: the body says why (an error of either shape).
  template <class S>
  void refused(S& s) {
    http::async_read(s, buffer_, *parser_, [self = shared_from_this()](error_code, std::size_t) {
      const std::string body = self->pending_ + self->parser_->get().body();
      std::optional<EtcdError> e = parse_error(body);
      self->fail(e ? *e
                   : make_error(EtcdError::Kind::protocol, "HTTP " + std::to_string(self->parser_->get().result_int()) +
                                                               " from " + self->ep_.text + ": " + excerpt(body)));
    });
  }

  void broken(error_code ec) {
    fail(make_error(ec == beast::error::timeout ? EtcdError::Kind::timeout : EtcdError::Kind::unavailable,
                    "watch stream with " + ep_.text + ": " + ec.message()));
  }

  tcp::resolver resolver_;
  Ms keepalive_idle_;
  HttpStream stream_;
  config::EtcdEndpoint ep_;
  http::request<http::string_body> request_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::function<std::size_t(std::uint64_t, std::string_view, error_code&)> on_chunk_;
  std::string pending_;
};

}  // namespace

std::shared_ptr<WatchStream> make_http_watch_stream(net::io_context& ioc, ssl::context* tls, Ms keepalive_idle) {
  return std::make_shared<HttpWatchStream>(ioc, tls, keepalive_idle);
}

}  // namespace bgproxy::cluster::detail
