#include "control/cluster/etcd_client.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace bgproxy::cluster {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

namespace {

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using HttpStream = std::variant<PlainStream, TlsStream>;
using WsStream = std::variant<websocket::stream<PlainStream>, websocket::stream<TlsStream>>;

/// Largest answer or watch message taken: the state of every service of a fleet is far below.
constexpr std::uint64_t max_message_bytes = 64 * 1024 * 1024;

/// TCP keepalive idle time of request connections: a pooled one whose peer vanished is found
/// out and closed while idle (watch streams use their ping interval).
constexpr Ms request_keepalive_idle{2000};

EtcdError make_error(EtcdError::Kind kind, std::string message) { return EtcdError{kind, 0, std::move(message)}; }

std::string host_header(const config::EtcdEndpoint& ep) {
  const bool v6 = ep.host.find(':') != std::string::npos;
  return (v6 ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port);
}

std::string excerpt(std::string_view body) {
  constexpr std::size_t max = 200;
  std::string s(body.substr(0, max));
  if (body.size() > max) s += "…";
  return s;
}

std::string millis(Ms d) { return std::to_string(d.count()) + "ms"; }

/// Nagle off (one small request per exchange), and TCP keepalive so a peer that vanished
/// without a word (host down, link cut) breaks an otherwise silent watch stream.
void tune_socket(tcp::socket& s, Ms keepalive_idle) {
  error_code ignored;
  s.set_option(tcp::no_delay(true), ignored);
  s.set_option(net::socket_base::keep_alive(true), ignored);
  const int idle = std::max<int>(1, static_cast<int>((keepalive_idle.count() + 999) / 1000));
  const int interval = 1;
  const int count = 3;
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

/// An idle kept-alive connection that has become readable was closed by the server (or holds
/// bytes nobody asked for): it must not carry a request whose outcome we could then not know.
bool unusable_when_idle(tcp::socket& s) {
  pollfd p{s.native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;
}

bool is_ip_address(const std::string& host) {
  error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

/// Resolves, connects and (for TLS) shakes hands, all by `deadline`; `done(nullopt)` on success.
/// `stream` and `resolver` must outlive the operation: `done` keeps their owner alive.
template <class Stream>
void connect_stream(Stream& stream, tcp::resolver& resolver, const config::EtcdEndpoint& ep, Clock::time_point deadline,
                    Ms keepalive_idle, std::function<void(std::optional<EtcdError>)> done) {
  resolver.async_resolve(ep.host, std::to_string(ep.port), [&stream, &ep, deadline, keepalive_idle, done = std::move(done)](
                                                                error_code ec, tcp::resolver::results_type results) mutable {
    if (ec) return done(make_error(EtcdError::Kind::unavailable, "resolve " + ep.text + ": " + ec.message()));
    auto& tcp_layer = beast::get_lowest_layer(stream);
    tcp_layer.expires_at(deadline);
    tcp_layer.async_connect(results, [&stream, &ep, keepalive_idle, done = std::move(done)](error_code ec, const tcp::endpoint&) mutable {
      if (ec) return done(make_error(EtcdError::Kind::unavailable, "connect " + ep.text + ": " + ec.message()));
      tune_socket(beast::get_lowest_layer(stream).socket(), keepalive_idle);
      if constexpr (std::is_same_v<Stream, TlsStream>) {
        // SNI for names only (RFC 6066); the certificate must name the host or carry the address.
        if (!is_ip_address(ep.host)) SSL_set_tlsext_host_name(stream.native_handle(), ep.host.c_str());
        stream.set_verify_callback(ssl::host_name_verification(ep.host));
        stream.async_handshake(ssl::stream_base::client, [&ep, done = std::move(done)](error_code ec) mutable {
          if (ec) return done(make_error(EtcdError::Kind::unavailable, "TLS handshake with " + ep.text + ": " + ec.message()));
          done(std::nullopt);
        });
      } else {
        done(std::nullopt);
      }
    });
  });
}

HttpStream make_http_stream(net::io_context& ioc, ssl::context* tls) {
  if (tls != nullptr) return HttpStream(std::in_place_type<TlsStream>, ioc, *tls);
  return HttpStream(std::in_place_type<PlainStream>, ioc);
}

WsStream make_ws_stream(net::io_context& ioc, ssl::context* tls) {
  if (tls != nullptr) return WsStream(std::in_place_type<websocket::stream<TlsStream>>, ioc, *tls);
  return WsStream(std::in_place_type<websocket::stream<PlainStream>>, ioc);
}

EtcdResult<std::shared_ptr<ssl::context>> make_tls_context(const ClientOptions& o) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  error_code ec;
  ctx->set_verify_mode(ssl::verify_peer, ec);
  auto failed = [&](const std::string& what, const std::string& file) {
    return make_error(EtcdError::Kind::config, "cluster TLS: cannot load " + what + " " + file + ": " + ec.message());
  };
  if (!o.ca_file.empty()) {
    ctx->load_verify_file(o.ca_file, ec);
    if (ec) return failed("CA", o.ca_file);
  } else {
    ctx->set_default_verify_paths(ec);
    if (ec) return failed("the system CAs", "");
  }
  if (!o.certificate_file.empty()) {
    ctx->use_certificate_chain_file(o.certificate_file, ec);
    if (ec) return failed("certificate", o.certificate_file);
    ctx->use_private_key_file(o.private_key_file, ssl::context::pem, ec);
    if (ec) return failed("private key", o.private_key_file);
  }
  return ctx;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// One kept-alive HTTP/1.1 connection to one endpoint.

namespace {

class HttpConn : public std::enable_shared_from_this<HttpConn> {
 public:
  HttpConn(net::io_context& ioc, std::size_t endpoint, ssl::context* tls)
      : endpoint_(endpoint), resolver_(ioc), stream_(make_http_stream(ioc, tls)) {}

  std::size_t endpoint() const { return endpoint_; }
  http::request<http::string_body>& request() { return request_; }
  http::response<http::string_body>& response() { return parser_->get(); }
  tcp::socket& socket() {
    return std::visit([](auto& s) -> tcp::socket& { return beast::get_lowest_layer(s).socket(); }, stream_);
  }
  Clock::time_point idle_since{};

  void connect(const config::EtcdEndpoint& ep, Clock::time_point deadline, std::function<void(std::optional<EtcdError>)> done) {
    std::visit(
        [&](auto& s) {
          connect_stream(s, resolver_, ep, deadline, request_keepalive_idle,
                         [self = shared_from_this(), done = std::move(done)](std::optional<EtcdError> e) { done(std::move(e)); });
        },
        stream_);
  }

  /// Writes request(), reads the answer into response(), both by `deadline`.
  /// `answered`: bytes of an answer arrived (a failure before that left the request unanswered).
  void exchange(Clock::time_point deadline, std::function<void(error_code ec, bool answered)> done) {
    done_ = std::move(done);
    parser_.emplace();
    parser_->body_limit(max_message_bytes);
    std::visit(
        [&](auto& s) {
          beast::get_lowest_layer(s).expires_at(deadline);
          http::async_write(s, request_, [self = shared_from_this(), &s](error_code ec, std::size_t) {
            if (ec) return self->complete(ec);
            http::async_read(s, self->buffer_, *self->parser_,
                             [self](error_code ec, std::size_t) { self->complete(ec); });
          });
        },
        stream_);
  }

  void close() {
    std::visit([](auto& s) { beast::get_lowest_layer(s).close(); }, stream_);
  }

 private:
  void complete(error_code ec) {
    const bool answered = parser_->got_some() || buffer_.size() > 0;
    if (!ec) std::visit([](auto& s) { beast::get_lowest_layer(s).expires_never(); }, stream_);
    auto done = std::move(done_);
    done(ec, answered);
  }

  std::size_t endpoint_;
  tcp::resolver resolver_;
  HttpStream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::function<void(error_code, bool)> done_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Client::Impl: requests, connections, endpoints, the token.

class Client::Impl : public std::enable_shared_from_this<Client::Impl> {
 public:
  Impl(net::io_context& ioc, ClientOptions options, std::shared_ptr<ssl::context> tls)
      : ioc_(ioc), options_(std::move(options)), tls_(std::move(tls)) {}

  struct Call {
    std::string_view target;
    std::string body;
    bool idempotent = false;
    bool with_token = true;
    std::function<void(EtcdResult<std::string>)> done;
    Clock::time_point deadline{};
    std::size_t endpoints_tried = 0;
    bool token_retried = false;
    bool fresh_retried = false;
    std::string token;  ///< the token it was sent with
  };
  using CallPtr = std::shared_ptr<Call>;

  net::io_context& ioc() { return ioc_; }
  const ClientOptions& options() const { return options_; }
  ssl::context* tls() const { return tls_.get(); }
  bool closed() const { return closed_; }
  std::size_t current() const { return current_; }
  const config::EtcdEndpoint& endpoint(std::size_t i) const { return options_.endpoints[i]; }
  const std::string& token() const { return token_; }
  bool needs_token() const { return !options_.username.empty() && !auth_disabled_; }

  /// Sends `body` to `target`; `done` gets the answer's body when it holds no error.
  void submit(std::string_view target, std::string body, bool idempotent, std::function<void(EtcdResult<std::string>)> done,
              bool with_token = true) {
    auto c = std::make_shared<Call>();
    c->target = target;
    c->body = std::move(body);
    c->idempotent = idempotent;
    c->with_token = with_token;
    c->done = std::move(done);
    c->deadline = Clock::now() + options_.timeout;
    // Never inside the caller's call: its handler may touch what the caller is still building.
    net::post(ioc_, [self = shared_from_this(), c] { self->execute(c); });
  }

  template <class T, class Parse>
  void request(std::string_view target, std::string body, bool idempotent, Parse parse, Handler<T> h) {
    submit(target, std::move(body), idempotent, [parse, h = std::move(h)](EtcdResult<std::string> r) {
      if (!r) return h(r.error());
      h(parse(*r));
    });
  }

  /// Runs `then` once a token is there (authenticating first when needed), or with the reason
  /// there is none. Concurrent callers share one authentication.
  void with_token(std::function<void(std::optional<EtcdError>)> then) {
    if (!needs_token() || !token_.empty()) {
      net::post(ioc_, [then = std::move(then)] { then(std::nullopt); });
      return;
    }
    token_waiters_.push_back(std::move(then));
    if (authenticating_) return;
    authenticating_ = true;
    authenticate([self = shared_from_this()](EtcdResult<AuthResult> r) {
      self->authenticating_ = false;
      std::optional<EtcdError> error;
      if (!r) error = r.error();
      auto waiters = std::move(self->token_waiters_);
      for (auto& w : waiters) w(error);
    });
  }

  void authenticate(Handler<AuthResult> h) {
    submit(
        path::authenticate, authenticate_request(options_.username, options_.password), true,
        [self = shared_from_this(), h = std::move(h)](EtcdResult<std::string> body) {
          EtcdResult<AuthResult> r = body ? parse_authenticate(*body) : EtcdResult<AuthResult>(body.error());
          if (!r && r.error().message == "etcdserver: authentication is not enabled") {
            // Credentials configured for a cluster without auth: send no token until it asks.
            self->auth_disabled_ = true;
            self->token_.clear();
            return h(AuthResult{});
          }
          if (!r && r.error().kind == EtcdError::Kind::server && r.error().code == grpc_code::invalid_argument) {
            EtcdError e = r.error();
            e.kind = EtcdError::Kind::auth;
            return h(e);
          }
          if (r) self->token_ = r->token;
          h(std::move(r));
        },
        false);
  }

  /// A stream refused `token`: forget it unless a newer one replaced it meanwhile.
  void token_rejected(const std::string& token) {
    if (token_ == token) token_.clear();
  }

  /// The endpoint failed to connect or to serve: requests move on to the next one.
  void endpoint_failed(std::size_t ep) {
    if (ep != current_ || options_.endpoints.size() < 2) return;
    current_ = (current_ + 1) % options_.endpoints.size();
    for (auto& c : idle_) c->close();
    idle_.clear();
  }

  /// The watch stops when the client closes.
  void add_watch(const std::shared_ptr<Watch::Impl>& w) {
    std::erase_if(watches_, [](const auto& weak) { return weak.expired(); });
    watches_.push_back(w);
  }

  void close();  // after Watch::Impl

 private:
  void execute(const CallPtr& c) {
    if (closed_) return;
    if (Clock::now() >= c->deadline) {
      return finish(c, make_error(EtcdError::Kind::timeout, "no answer from etcd within " + millis(options_.timeout)));
    }
    if (c->with_token && needs_token() && token_.empty()) {
      return with_token([self = shared_from_this(), c](std::optional<EtcdError> e) {
        if (e) return self->finish(c, std::move(*e));
        self->execute(c);
      });
    }
    if (busy_.size() >= options_.max_connections) {
      queue_.push_back(c);
      return;
    }
    if (auto conn = idle_connection()) return send(c, conn, true);
    const std::size_t ep = current_;
    auto conn = std::make_shared<HttpConn>(ioc_, ep, tls_.get());
    busy_.push_back(conn);
    // A share of the time per endpoint, so that a silent one leaves time to try the others.
    const Ms share = options_.timeout / static_cast<Ms::rep>(std::max<std::size_t>(1, options_.endpoints.size()));
    conn->connect(options_.endpoints[ep], std::min(c->deadline, Clock::now() + share),
                  [self = shared_from_this(), c, conn, ep](std::optional<EtcdError> e) {
                    if (self->closed_) return;
                    if (!e) return self->send(c, conn, false);
                    self->release(conn, false);
                    self->endpoint_failed(ep);
                    if (++c->endpoints_tried < self->options_.endpoints.size()) return self->execute(c);
                    self->finish(c, std::move(*e));
                  });
  }

  void send(const CallPtr& c, const std::shared_ptr<HttpConn>& conn, bool reused) {
    const config::EtcdEndpoint& ep = options_.endpoints[conn->endpoint()];
    auto& req = conn->request();
    req = {};
    req.method(http::verb::post);
    req.target(std::string(c->target));
    req.version(11);
    req.set(http::field::host, host_header(ep));
    req.set(http::field::content_type, "application/json");
    // A member without a leader refuses at once instead of hanging until its own timeout.
    req.set("Grpc-Metadata-Hasleader", "true");
    c->token = c->with_token ? token_ : std::string();
    if (!c->token.empty()) req.set(http::field::authorization, c->token);
    req.body() = c->body;
    req.prepare_payload();
    conn->exchange(c->deadline, [self = shared_from_this(), c, conn, reused](error_code ec, bool answered) {
      if (self->closed_) return;
      if (ec) return self->exchange_failed(c, conn, reused, ec, answered);
      self->answered(c, conn);
    });
  }

  void exchange_failed(const CallPtr& c, const std::shared_ptr<HttpConn>& conn, bool reused, error_code ec, bool answered) {
    const std::size_t ep = conn->endpoint();
    release(conn, false);
    const std::string& name = options_.endpoints[ep].text;
    if (ec == beast::error::timeout) {
      endpoint_failed(ep);
      return finish(c, make_error(EtcdError::Kind::timeout, "no answer from " + name + " within " + millis(options_.timeout)));
    }
    // A kept-alive connection closed under us before any answer: once more on a fresh one.
    if (reused && !answered && c->idempotent && !c->fresh_retried) {
      c->fresh_retried = true;
      return execute(c);
    }
    endpoint_failed(ep);
    if (c->idempotent && ++c->endpoints_tried < options_.endpoints.size()) return execute(c);
    finish(c, make_error(EtcdError::Kind::unavailable, "connection to " + name + " lost: " + ec.message() +
                                                           (c->idempotent ? "" : " (outcome unknown)")));
  }

  void answered(const CallPtr& c, const std::shared_ptr<HttpConn>& conn) {
    const std::size_t ep = conn->endpoint();
    auto& res = conn->response();
    const unsigned status = res.result_int();
    std::string body = std::move(res.body());
    release(conn, res.keep_alive());
    if (std::optional<EtcdError> e = parse_error(body)) {
      if (is_member_unavailable(*e) && ++c->endpoints_tried < options_.endpoints.size()) {
        endpoint_failed(ep);
        return execute(c);
      }
      if (c->with_token && !options_.username.empty() && !c->token_retried) {
        if (is_token_expired(*e)) {
          c->token_retried = true;
          token_rejected(c->token);
          return execute(c);
        }
        if (e->message == "etcdserver: user name is empty" && auth_disabled_) {
          // Auth was enabled since we were told it is not: authenticate now.
          c->token_retried = true;
          auth_disabled_ = false;
          return execute(c);
        }
      }
      if (e->message == "etcdserver: user name is empty") {
        e->kind = EtcdError::Kind::auth;
        e->message = "etcd requires authentication (cluster.etcd.username): " + e->message;
      }
      return finish(c, std::move(*e));
    }
    if (status != 200) {
      return finish(c, make_error(EtcdError::Kind::protocol, "HTTP " + std::to_string(status) + " from " +
                                                                 options_.endpoints[ep].text + ": " + excerpt(body)));
    }
    finish(c, std::move(body));
  }

  std::shared_ptr<HttpConn> idle_connection() {
    const auto now = Clock::now();
    while (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      if (conn->endpoint() != current_ || now - conn->idle_since > options_.idle_timeout ||
          unusable_when_idle(conn->socket())) {
        conn->close();
        continue;
      }
      busy_.push_back(conn);
      return conn;
    }
    return nullptr;
  }

  void release(const std::shared_ptr<HttpConn>& conn, bool keep) {
    busy_.erase(std::remove(busy_.begin(), busy_.end(), conn), busy_.end());
    if (keep && conn->endpoint() == current_) {
      conn->idle_since = Clock::now();
      idle_.push_back(conn);
    } else {
      conn->close();
    }
    if (!queue_.empty()) {
      CallPtr next = std::move(queue_.front());
      queue_.pop_front();
      net::post(ioc_, [self = shared_from_this(), next] { self->execute(next); });
    }
  }

  void finish(const CallPtr& c, EtcdResult<std::string> r) {
    if (closed_ || !c->done) return;
    auto done = std::move(c->done);
    done(std::move(r));
  }

  net::io_context& ioc_;
  ClientOptions options_;
  std::shared_ptr<ssl::context> tls_;  ///< null: every endpoint is http://
  std::size_t current_ = 0;
  std::vector<std::shared_ptr<HttpConn>> idle_;  ///< LIFO: the most recently used first
  std::vector<std::shared_ptr<HttpConn>> busy_;
  std::deque<CallPtr> queue_;
  std::string token_;
  bool authenticating_ = false;
  bool auth_disabled_ = false;  ///< the cluster said "authentication is not enabled"
  std::vector<std::function<void(std::optional<EtcdError>)>> token_waiters_;
  std::vector<std::weak_ptr<Watch::Impl>> watches_;
  bool closed_ = false;
};

// ---------------------------------------------------------------------------------------------
// Watch streams: one connection each, WebSocket or a plain HTTP stream; replaced on reconnect.

namespace {

/// A watch connection. It reports through `on_message` and `on_failure` until close(); after
/// close() it reports nothing. Handlers of its pending operations keep it alive.
class WatchStream {
 public:
  std::function<void(std::string_view)> on_message;
  std::function<void(EtcdError)> on_failure;

  virtual ~WatchStream() = default;
  /// Connects, sends `create` and starts reading, by `deadline` until the first message.
  virtual void open(const config::EtcdEndpoint& ep, const std::string& token, std::string create,
                    Clock::time_point deadline) = 0;
  virtual void ping() = 0;  ///< a progress request; nothing over plain HTTP (it cannot send more)
  virtual void close() = 0;

 protected:
  bool closed_ = false;
  void message(std::string_view m) {
    if (!closed_) on_message(m);
  }
  void fail(EtcdError e) {
    if (closed_) return;
    close();
    on_failure(std::move(e));
  }
};

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

// ---------------------------------------------------------------------------------------------
// Watch::Impl: the watch that outlives its connections.

class Watch::Impl : public std::enable_shared_from_this<Watch::Impl> {
 public:
  Impl(std::shared_ptr<Client::Impl> client, WatchOptions options, Handlers handlers)
      : client_(std::move(client)),
        options_(std::move(options)),
        handlers_(std::move(handlers)),
        reconnect_timer_(client_->ioc()),
        ping_timer_(client_->ioc()),
        next_revision_(options_.start_revision),
        backoff_(options_.min_backoff) {}

  void start() {
    net::post(client_->ioc(), [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->connect();
    });
  }

  void resume(std::int64_t start_revision) {
    if (stopped_) return;
    next_revision_ = start_revision;
    compacted_ = false;
    backoff_ = options_.min_backoff;
    drop_stream();
    reconnect_timer_.cancel();
    start();
  }

  std::int64_t next_revision() const { return next_revision_; }
  bool connected() const { return connected_; }

  void stop() {
    stopped_ = true;
    connected_ = false;
    drop_stream();
    reconnect_timer_.cancel();
    ping_timer_.cancel();
  }

 private:
  bool websocket() const {
    switch (options_.transport) {
      case WatchTransport::websocket: return true;
      case WatchTransport::http_stream: return false;
      case WatchTransport::automatic: break;
    }
    // Only where the websocket loses nothing: no token to carry, no other member to move to.
    return !client_->needs_token() && client_->options().endpoints.size() == 1;
  }

  void connect() {
    if (stopped_ || compacted_ || stream_ || client_->closed()) return;
    if (websocket()) return open();
    client_->with_token([weak = weak_from_this()](std::optional<EtcdError> e) {
      auto self = weak.lock();
      if (!self || self->stopped_) return;
      // The token request already moved on from an endpoint that failed it.
      if (e) return self->failed(std::move(*e), false);
      self->open();
    });
  }

  void open() {
    if (stopped_ || compacted_ || stream_ || client_->closed()) return;
    endpoint_ = client_->current();
    std::shared_ptr<WatchStream> s;
    if (websocket()) {
      s = std::make_shared<WsWatchStream>(client_->ioc(), client_->tls(), options_.ping_interval);
    } else {
      s = std::make_shared<HttpWatchStream>(client_->ioc(), client_->tls(), options_.ping_interval);
    }
    std::weak_ptr<Impl> weak = weak_from_this();
    s->on_message = [weak](std::string_view m) {
      if (auto self = weak.lock()) self->on_message(m);
    };
    s->on_failure = [weak](EtcdError e) {
      if (auto self = weak.lock()) self->failed(std::move(e));
    };
    stream_ = s;
    token_ = websocket() ? std::string() : client_->token();
    WatchCreate create;
    create.key = options_.key;
    create.range_end = options_.range_end;
    create.start_revision = next_revision_;
    create.prev_kv = options_.prev_kv;
    last_message_ = Clock::now();
    s->open(client_->endpoint(endpoint_), token_, watch_create_request(create), Clock::now() + client_->options().timeout);
    if (websocket()) schedule_ping();
  }

  void on_message(std::string_view m) {
    if (stopped_) return;
    last_message_ = Clock::now();
    EtcdResult<WatchResponse> r = parse_watch_response(m);
    if (!r) return failed(r.error());
    const WatchResponse& w = *r;
    if (w.created && w.canceled) {
      // Refused at creation (watch_id -1): the reason is in cancel_reason.
      if (w.cancel_reason.find("invalid auth token") != std::string::npos) client_->token_rejected(token_);
      return failed(EtcdError{EtcdError::Kind::server, 0, "watch refused: " + w.cancel_reason});
    }
    if (w.created) {
      connected_ = true;
      backoff_ = options_.min_backoff;
      if (next_revision_ == 0) next_revision_ = w.header.revision + 1;
      if (handlers_.on_connection) handlers_.on_connection(true, nullptr);
      return;
    }
    if (w.canceled) {
      if (w.compact_revision > 0) {
        // Reconnecting from the same revision would only be canceled again: wait for resume().
        compacted_ = true;
        connected_ = false;
        drop_stream();
        ping_timer_.cancel();
        if (handlers_.on_compacted) handlers_.on_compacted(w.compact_revision);
        return;
      }
      return failed(EtcdError{EtcdError::Kind::server, 0, "watch canceled: " + w.cancel_reason});
    }
    if (w.events.empty()) return;  // a progress answer: the connection is alive
    next_revision_ = std::max(next_revision_, w.events.back().kv.mod_revision + 1);
    if (handlers_.on_events) handlers_.on_events(w);
  }

  void failed(EtcdError e, bool blame_endpoint = true) {
    if (stopped_) return;
    drop_stream();
    ping_timer_.cancel();
    connected_ = false;
    // A refused watch (token, permission) is no reason to leave a member; anything else is.
    if (blame_endpoint && (e.kind != EtcdError::Kind::server || is_member_unavailable(e))) {
      client_->endpoint_failed(endpoint_);
    }
    if (handlers_.on_connection) handlers_.on_connection(false, &e);
    if (stopped_) return;
    reconnect_timer_.expires_after(backoff_);
    backoff_ = std::min(options_.max_backoff, backoff_ * 2);
    reconnect_timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->connect();
    });
  }

  void schedule_ping() {
    // Ticks at half the interval, so a ping leaves at most 1.5 intervals after the last message.
    ping_timer_.expires_after(options_.ping_interval / 2);
    ping_timer_.async_wait([weak = weak_from_this()](error_code ec) {
      auto self = weak.lock();
      if (!self || ec || self->stopped_ || !self->stream_) return;
      const auto silent = Clock::now() - self->last_message_;
      if (silent >= self->options_.ping_interval + self->client_->options().timeout) {
        return self->failed(make_error(EtcdError::Kind::timeout,
                                       "watch on " + self->client_->endpoint(self->endpoint_).text + ": no answer for " +
                                           millis(std::chrono::duration_cast<Ms>(silent))));
      }
      if (silent >= self->options_.ping_interval) self->stream_->ping();
      self->schedule_ping();
    });
  }

  void drop_stream() {
    if (stream_) stream_->close();
    stream_.reset();
  }

  std::shared_ptr<Client::Impl> client_;
  WatchOptions options_;
  Handlers handlers_;
  net::steady_timer reconnect_timer_;
  net::steady_timer ping_timer_;
  std::shared_ptr<WatchStream> stream_;
  std::size_t endpoint_ = 0;
  std::string token_;  ///< the token the current stream was opened with
  std::int64_t next_revision_;
  Ms backoff_;
  Clock::time_point last_message_{};
  bool connected_ = false;
  bool compacted_ = false;
  bool stopped_ = false;
};

void Client::Impl::close() {
  if (closed_) return;
  closed_ = true;
  for (const auto& weak : std::exchange(watches_, {})) {
    if (auto w = weak.lock()) w->stop();
  }
  for (auto& c : idle_) c->close();
  for (auto& c : busy_) c->close();
  idle_.clear();
  busy_.clear();
  queue_.clear();
  token_waiters_.clear();
}

// ---------------------------------------------------------------------------------------------
// Public faces

Watch::Watch(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Watch::~Watch() { stop(); }
void Watch::resume(std::int64_t start_revision) { impl_->resume(start_revision); }
std::int64_t Watch::next_revision() const { return impl_->next_revision(); }
bool Watch::connected() const { return impl_->connected(); }
void Watch::stop() { impl_->stop(); }

EtcdResult<ClientOptions> client_options(const config::Cluster& c) {
  ClientOptions o;
  o.endpoints = c.endpoints;
  o.username = c.username;
  o.ca_file = c.ca;
  o.certificate_file = c.certificate;
  o.private_key_file = c.private_key;
  o.timeout = std::chrono::duration_cast<Ms>(c.timeout);
  if (!c.password_file.empty()) {
    std::ifstream in(c.password_file);
    if (!in || !std::getline(in, o.password)) {
      return make_error(EtcdError::Kind::config, "cluster: cannot read password_file " + c.password_file);
    }
    if (!o.password.empty() && o.password.back() == '\r') o.password.pop_back();
  }
  return o;
}

EtcdResult<std::unique_ptr<Client>> Client::create(net::io_context& ioc, ClientOptions options) {
  if (options.endpoints.empty()) return make_error(EtcdError::Kind::config, "cluster: no etcd endpoint");
  std::shared_ptr<ssl::context> tls;
  if (std::any_of(options.endpoints.begin(), options.endpoints.end(), [](const auto& e) { return e.tls; })) {
    auto ctx = make_tls_context(options);
    if (!ctx) return ctx.error();
    tls = std::move(*ctx);
  }
  return std::unique_ptr<Client>(new Client(std::make_shared<Impl>(ioc, std::move(options), std::move(tls))));
}

Client::Client(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() { close(); }

void Client::range(std::string_view key, const RangeOptions& o, Handler<RangeResult> h) {
  impl_->request<RangeResult>(path::range, range_request(key, o), true, parse_range, std::move(h));
}

void Client::put(std::string_view key, std::string_view value, std::int64_t lease, Handler<PutResult> h) {
  impl_->request<PutResult>(path::put, put_request(key, value, lease), false, parse_put, std::move(h));
}

void Client::delete_range(std::string_view key, std::string_view range_end, Handler<DeleteResult> h) {
  impl_->request<DeleteResult>(path::delete_range, delete_request(key, range_end), false, parse_delete, std::move(h));
}

void Client::txn_cas(std::string_view key, std::int64_t expected_mod_revision, std::string_view value, std::int64_t lease,
                     Handler<CasResult> h) {
  impl_->request<CasResult>(path::txn, cas_request(key, expected_mod_revision, value, lease), false, parse_cas,
                            std::move(h));
}

void Client::lease_grant(std::chrono::seconds ttl, Handler<LeaseGrantResult> h) {
  impl_->request<LeaseGrantResult>(path::lease_grant, lease_grant_request(ttl.count()), false, parse_lease_grant,
                                   std::move(h));
}

void Client::lease_keepalive(std::int64_t id, Handler<LeaseKeepAliveResult> h) {
  impl_->request<LeaseKeepAliveResult>(path::lease_keepalive, lease_keepalive_request(id), true,
                                       parse_lease_keepalive, std::move(h));
}

void Client::lease_revoke(std::int64_t id, Handler<ResponseHeader> h) {
  impl_->request<ResponseHeader>(path::lease_revoke, lease_revoke_request(id), true, parse_header_only, std::move(h));
}

void Client::authenticate(Handler<AuthResult> h) { impl_->authenticate(std::move(h)); }

std::unique_ptr<Watch> Client::watch(WatchOptions o, Watch::Handlers h) {
  auto impl = std::make_shared<Watch::Impl>(impl_, std::move(o), std::move(h));
  impl_->add_watch(impl);
  impl->start();
  return std::make_unique<Watch>(std::move(impl));
}

const std::string& Client::current_endpoint() const { return impl_->endpoint(impl_->current()).text; }

void Client::close() { impl_->close(); }

}  // namespace bgproxy::cluster
