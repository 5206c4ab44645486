#pragma once
/// The etcd client's insides, shared by its translation units (private to control/cluster):
/// etcd_connection.cpp (connect, TLS, one kept-alive HTTP connection), etcd_request_pool.cpp
/// (requests, the pool, failover), etcd_auth.cpp (the token), etcd_watch.cpp (the watch that
/// outlives its connections), etcd_watch_websocket.cpp and etcd_watch_http_stream.cpp (its two
/// transports), etcd_client.cpp (the public faces). See etcd_client.hpp for the behaviour.
/// Thread: control (as etcd_client.hpp).

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "control/cluster/etcd_client.hpp"

namespace bgproxy::cluster {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

namespace detail {

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using HttpStream = std::variant<PlainStream, TlsStream>;

/// Largest answer or watch message taken: the state of every service of a fleet is far below.
inline constexpr std::uint64_t max_message_bytes = 64 * 1024 * 1024;

inline EtcdError make_error(EtcdError::Kind kind, std::string message) {
  return EtcdError{kind, 0, std::move(message)};
}

inline std::string host_header(const config::EtcdEndpoint& ep) {
  const bool v6 = ep.host.find(':') != std::string::npos;
  return (v6 ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port);
}

inline std::string excerpt(std::string_view body) {
  constexpr std::size_t max = 200;
  std::string s(body.substr(0, max));
  if (body.size() > max) s += "…";
  return s;
}

inline std::string millis(Ms d) { return std::to_string(d.count()) + "ms"; }

// etcd_connection.cpp ---------------------------------------------------------------------------

/// Resolves, connects and (for TLS) shakes hands, all by `deadline`; `done(nullopt)` on success.
/// `stream` and `resolver` must outlive the operation: `done` keeps their owner alive.
/// Instantiated for PlainStream and TlsStream.
template <class Stream>
void connect_stream(Stream& stream, tcp::resolver& resolver, const config::EtcdEndpoint& ep, Clock::time_point deadline,
                    Ms keepalive_idle, std::function<void(std::optional<EtcdError>)> done);

HttpStream make_http_stream(net::io_context& ioc, ssl::context* tls);

EtcdResult<std::shared_ptr<ssl::context>> make_tls_context(const ClientOptions& o);

/// One kept-alive HTTP/1.1 connection to one endpoint.
class HttpConn : public std::enable_shared_from_this<HttpConn> {
 public:
  HttpConn(net::io_context& ioc, std::size_t endpoint, ssl::context* tls)
      : endpoint_(endpoint), resolver_(ioc), stream_(make_http_stream(ioc, tls)) {}

  std::size_t endpoint() const { return endpoint_; }
  http::request<http::string_body>& request() { return request_; }
  http::response<http::string_body>& response() { return parser_->get(); }
  tcp::socket& socket();
  Clock::time_point idle_since{};

  void connect(const config::EtcdEndpoint& ep, Clock::time_point deadline, std::function<void(std::optional<EtcdError>)> done);

  /// Writes request(), reads the answer into response(), both by `deadline`.
  /// `answered`: bytes of an answer arrived (a failure before that left the request unanswered).
  void exchange(Clock::time_point deadline, std::function<void(error_code ec, bool answered)> done);

  void close();

 private:
  void complete(error_code ec);

  std::size_t endpoint_;
  tcp::resolver resolver_;
  HttpStream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::function<void(error_code, bool)> done_;
};

// Watch streams: one connection each, WebSocket or a plain HTTP stream; replaced on reconnect.

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

/// etcd_watch_websocket.cpp: one JSON message per frame; ping() sends a progress request.
std::shared_ptr<WatchStream> make_websocket_watch_stream(net::io_context& ioc, ssl::context* tls, Ms keepalive_idle);
/// etcd_watch_http_stream.cpp: POST /v3/watch, one JSON line per message; ping() does nothing.
std::shared_ptr<WatchStream> make_http_watch_stream(net::io_context& ioc, ssl::context* tls, Ms keepalive_idle);

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Client::Impl: requests, connections, endpoints, the token.
// etcd_request_pool.cpp; the token's part in etcd_auth.cpp.

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
              bool with_token = true);

  template <class T, class Parse>
  void request(std::string_view target, std::string body, bool idempotent, Parse parse, Handler<T> h) {
    submit(target, std::move(body), idempotent, [parse, h = std::move(h)](EtcdResult<std::string> r) {
      if (!r) return h(r.error());
      h(parse(*r));
    });
  }

  /// Runs `then` once a token is there (authenticating first when needed), or with the reason
  /// there is none. Concurrent callers share one authentication.
  void with_token(std::function<void(std::optional<EtcdError>)> then);

  void authenticate(Handler<AuthResult> h);

  /// A stream refused `token`: forget it unless a newer one replaced it meanwhile.
  void token_rejected(const std::string& token);

  /// The endpoint failed to connect or to serve: requests move on to the next one.
  void endpoint_failed(std::size_t ep);

  /// The watch stops when the client closes.
  void add_watch(const std::shared_ptr<Watch::Impl>& w);

  void close();

 private:
  void execute(const CallPtr& c);
  void send(const CallPtr& c, const std::shared_ptr<detail::HttpConn>& conn, bool reused);
  void exchange_failed(const CallPtr& c, const std::shared_ptr<detail::HttpConn>& conn, bool reused, error_code ec,
                       bool answered);
  void answered(const CallPtr& c, const std::shared_ptr<detail::HttpConn>& conn);
  std::shared_ptr<detail::HttpConn> idle_connection();
  void release(const std::shared_ptr<detail::HttpConn>& conn, bool keep);
  void finish(const CallPtr& c, EtcdResult<std::string> r);

  net::io_context& ioc_;
  ClientOptions options_;
  std::shared_ptr<ssl::context> tls_;  ///< null: every endpoint is http://
  std::size_t current_ = 0;
  std::vector<std::shared_ptr<detail::HttpConn>> idle_;  ///< LIFO: the most recently used first
  std::vector<std::shared_ptr<detail::HttpConn>> busy_;
  std::deque<CallPtr> queue_;
  std::string token_;
  bool authenticating_ = false;
  bool auth_disabled_ = false;  ///< the cluster said "authentication is not enabled"
  std::vector<std::function<void(std::optional<EtcdError>)>> token_waiters_;
  std::vector<std::weak_ptr<Watch::Impl>> watches_;
  bool closed_ = false;
};

// ---------------------------------------------------------------------------------------------
// Watch::Impl: the watch that outlives its connections. etcd_watch.cpp.

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

  void start();
  void resume(std::int64_t start_revision);
  std::int64_t next_revision() const { return next_revision_; }
  bool connected() const { return connected_; }
  void stop();

 private:
  bool websocket() const;
  void connect();
  void open();
  void on_message(std::string_view m);
  void failed(EtcdError e, bool blame_endpoint = true);
  void schedule_ping();
  void drop_stream();

  std::shared_ptr<Client::Impl> client_;
  WatchOptions options_;
  Handlers handlers_;
  net::steady_timer reconnect_timer_;
  net::steady_timer ping_timer_;
  std::shared_ptr<detail::WatchStream> stream_;
  std::size_t endpoint_ = 0;
  std::string token_;  ///< the token the current stream was opened with
  std::int64_t next_revision_;
  Ms backoff_;
  Clock::time_point last_message_{};
  bool connected_ = false;
  bool compacted_ = false;
  bool stopped_ = false;
};

}  // namespace bgproxy::cluster
