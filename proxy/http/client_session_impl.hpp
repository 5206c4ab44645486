#pragma once
/// The HTTP/1.1 proxy session, one per client connection (Beast-example shape:
/// self-owning, do_x/on_x steps). Heads are parsed with Beast's parsers; bodies
/// are relayed as raw bytes, framed by BodyFraming; outgoing heads are written by
/// hand. Deadlines are enforced by the worker's sweep (Timed).
/// Included only by the .cpp files that instantiate it for a stream type:
/// client_session.cpp (Socket) and client_session_tls.cpp (ssl::stream<Socket>).
/// TLS differs only in `if constexpr (tls_stream)` branches: the handshake first,
/// close_notify instead of a TCP half-close, and stream_truncated read as an end.

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/range/iterator_range.hpp>
#include <spdlog/logger.h>

#include "bgproxy/routing/decide.hpp"
#include "proxy/http/body_framing.hpp"
#include "proxy/http/cookie.hpp"
#include "proxy/http/head_writer.hpp"
#include "proxy/http/keep_alive.hpp"
#include "proxy/http/request_target.hpp"
#include "proxy/net/tls_context.hpp"
#include "proxy/net/worker.hpp"

namespace bgproxy::proxy {

namespace beast = boost::beast;
namespace http = beast::http;
using error_code = boost::system::error_code;

template <class Stream>
class ClientSession final : public Timed, public std::enable_shared_from_this<ClientSession<Stream>> {
  static constexpr bool tls_stream = !std::is_same_v<Stream, Socket>;
  struct NoContexts {};
  /// A TLS session keeps the certificates it was accepted with alive (a reload may replace them).
  using Contexts = std::conditional_t<tls_stream, TlsContextsPtr, NoContexts>;

 public:
  ClientSession(Worker& worker, Stream stream, std::string client_ip, std::array<std::uint8_t, 16> client_addr,
                bool tls, Contexts contexts = {})
      : worker_(worker),
        rt_(worker.runtime()),
        contexts_(std::move(contexts)),
        stream_(std::move(stream)),
        client_ip_(std::move(client_ip)),
        client_addr_(client_addr),
        tls_(tls) {
    head_.reserve(1024);
    worker_.track(*this);
  }

  ~ClientSession() {
    release_upstream(false);
    worker_.connection_closed();
  }

  void start() {
    error_code ignored;
    lowest_layer().set_option(tcp::no_delay(true), ignored);
    if constexpr (tls_stream) {
      phase_ = Phase::handshake;
      arm_waiting(settings().client_header);
      auto self = this->shared_from_this();
      stream_.async_handshake(Stream::server, [self](error_code ec) { self->on_handshake(ec); });
      return;
    }
    phase_ = Phase::idle;
    arm_waiting(settings().client_header);
    do_read_head();
  }

  // Timed
  void on_deadline() override {
    deadline_ = Clock::time_point::max();
    if (phase_ == Phase::handshake) {
      count_handshake_failure(stats::TlsFailureReason::timeout);
      return close();
    }
    if (waiting_on_upstream_ && !response_started_ && upstream_) {
      // The backend is slow: answer 504 from the failing handler.
      upstream_timed_out_ = true;
      error_code ignored;
      upstream_->socket.close(ignored);
      return;
    }
    close();
  }

  void on_drain() override {
    // An idle keep-alive client may be sending its next request right now; closing at once
    // would lose it. It gets a short grace instead: a request that comes is answered with
    // Connection: close, silence closes the connection at the deadline.
    if ((phase_ == Phase::idle || phase_ == Phase::handshake) && buffer_.size() == 0) {
      deadline_ = std::min(deadline_, worker_.coarse_now() + drain_idle_grace);
    }
  }

 private:
  enum class Phase : std::uint8_t { handshake, idle, head, upstream, response, tunnel, closing, closed };
  enum class Direction : std::uint8_t { request, response, to_upstream, to_client };

  static constexpr std::size_t read_chunk = 16 * 1024;
  static constexpr std::uint64_t upstream_header_limit = 64 * 1024;
  static constexpr auto linger_time = std::chrono::seconds(1);
  static constexpr auto drain_idle_grace = std::chrono::milliseconds(500);
  static constexpr auto tls_shutdown_time = std::chrono::seconds(1);

  auto& lowest_layer() { return beast::get_lowest_layer(stream_); }
  const Settings& settings() const noexcept { return rt_->settings; }
  /// Worker-local pools and stats are indexed by slot, stable across reloads (see Runtime).
  std::uint32_t slot_of(std::uint32_t server) const noexcept { return rt_->server_slot[server]; }
  stats::ServiceStats& service_stats() noexcept {
    return worker_.stats().services[rt_->service_slot[static_cast<std::size_t>(service_)]];
  }

  void arm(Clock::duration d) noexcept { deadline_ = worker_.coarse_now() + d; }
  void arm_client(Clock::duration d) noexcept {
    waiting_on_upstream_ = false;
    arm(d);
  }
  /// Waiting for a client's next request: while the worker drains, only for the drain grace.
  void arm_waiting(Clock::duration d) noexcept {
    arm_client(worker_.draining() ? std::min<Clock::duration>(d, drain_idle_grace) : d);
  }
  void arm_upstream(Clock::duration d) noexcept {
    waiting_on_upstream_ = true;
    arm(d);
  }

  // ---------------------------------------------------------------- TLS handshake
  void on_handshake(error_code ec) {
    if (phase_ != Phase::handshake) return;  // closed by the deadline or a drain
    if (ec) {
      count_handshake_failure(classify_handshake_error(ec));
      // Plaintext or garbage: the engine may not have read it all, and closing with unread
      // input resets the connection; half-close and drain it instead.
      return close_after_failed_handshake();
    }
    ++worker_.stats().tls_handshakes;
    phase_ = Phase::idle;
    arm_waiting(settings().client_header);
    do_read_head();
  }

  void count_handshake_failure(stats::TlsFailureReason reason) noexcept {
    ++worker_.stats().tls_handshake_failures[static_cast<std::size_t>(reason)];
  }

  void close_after_failed_handshake() {
    error_code ignored;
    lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
    phase_ = Phase::closing;
    arm(linger_time);
    buffer_.clear();
    linger_raw();
  }

  void linger_raw() {
    auto self = this->shared_from_this();
    lowest_layer().async_read_some(buffer_.prepare(read_chunk), [self](error_code ec, std::size_t) {
      if (ec) return self->close();
      self->linger_raw();
    });
  }

  /// The end of the input stream: EOF, or a TLS peer (client or backend) that closed
  /// without close_notify (benign unless a message is partly read, which the caller decides).
  static bool end_of_input(error_code ec) noexcept {
    return ec == net::error::eof || ec == net::ssl::error::stream_truncated;
  }

  // ---------------------------------------------------------------- request head
  void do_read_head() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(settings().max_header_bytes));
    parser_->body_limit(boost::none);  // Beast's 1 MB default would refuse large uploads; max_body_bytes is ours
    parser_->eager(false);
    parse_head();
  }

  void parse_head() {
    if (buffer_.size() != 0) {
      if (phase_ == Phase::idle) begin_request();
      error_code ec;
      const auto n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (!ec && parser_->is_header_done()) return on_request_head();
      if (ec && ec != http::error::need_more) return reject_request(ec);
    }
    read_head_more();
  }

  void begin_request() {
    phase_ = Phase::head;
    start_time_ = Clock::now();
    arm_client(settings().client_header);
  }

  void read_head_more() {
    auto self = this->shared_from_this();
    stream_.async_read_some(buffer_.prepare(read_chunk), [self](error_code ec, std::size_t n) {
      self->on_read_head(ec, n);
    });
  }

  void on_read_head(error_code ec, std::size_t n) {
    if (ec) return close();  // EOF between requests is the normal end of a keep-alive connection
    buffer_.commit(n);
    parse_head();
  }

  void reject_request(error_code ec) {
    reject(ec == http::error::header_limit ? 431 : 400, false);
  }

  void on_request_head() {
    auto& req = parser_->get();
    const bool has_te = req.find(http::field::transfer_encoding) != req.end();
    // A Transfer-Encoding that does not end in chunked leaves the body length
    // unknowable on a request: refuse it rather than guess (RFC 9112 §6.3).
    if (has_te && !parser_->chunked()) return reject(400, false);
    client_http10_ = req.version() == 10;
    // HTTP/1.0 has no Transfer-Encoding: such a message's framing is faulty (RFC 9112 §6.1), and a
    // 1.0 hop before us may have read it by another rule. Refused, like the other ambiguous shapes.
    if (has_te && client_http10_) return reject(400, false);
    keep_alive_ = req.keep_alive();
    const auto host_count = req.count(http::field::host);
    if (host_count > 1 || (host_count == 0 && !client_http10_)) return reject(400, false);

    if (const auto len = parser_->content_length(); !parser_->chunked() && len && settings().max_body_bytes != 0 &&
                                                    *len > settings().max_body_bytes) {
      return reject(413, false);
    }
    reset_request_body();
    // Only a websocket upgrade becomes a tunnel: any other (h2c above all) would carry traffic
    // past routing, rules and accounting. Those requests go on as plain ones, Upgrade removed.
    upgrade_ = parser_->upgrade() && offers_websocket(req[http::field::upgrade]);
    head_method_ = req.method() == http::verb::head;
    idempotent_ = is_idempotent(req.method());
    const auto expect = req[http::field::expect];
    expect_continue_ = !request_body_.done() && !client_http10_ && beast::iequals(expect, "100-continue");

    target_ = split_target(req.target(), req[http::field::host]);
    if (!target_.valid) return reject(400, false);

    // The table and the generation it was built for are pinned together.
    table_ = worker_.table();
    if (rt_ != worker_.runtime()) rt_ = worker_.runtime();
    service_ = routing::match_service(*table_, target_.host_without_port, target_.path);
    if (service_ < 0) return reject(404, request_body_.done() && keep_alive_);
    const auto& svc = table_->services[static_cast<std::size_t>(service_)];
    const auto bucket = client_bucket(svc);
    const auto decision = routing::decide(svc, bucket, forced_color(svc));
    color_ = decision.color;
    panic_ = decision.panic;
    if (decision.unavailable) return finish_with_error(503);
    if (decision.failover) ++service_stats().failovers_from[static_cast<std::size_t>(routing::other(color_))];
    retries_left_ = 1;
    resent_unsent_ = false;
    excluded_server_ = no_server;
    attempt_start_ = start_time_;
    choose_server_and_connect();
  }

  /// The request body's framing from its start (again, when a request that never left is resent).
  void reset_request_body() {
    if (parser_->chunked()) {
      request_body_.reset(BodyKind::chunked);
    } else if (const auto len = parser_->content_length(); len && *len > 0) {
      request_body_.reset(BodyKind::length, *len);
    } else {
      request_body_.reset(BodyKind::none);
    }
  }

  /// The client's bucket in [0, 10000): from its sticky key, so raising the
  /// green weight only ever moves clients blue → green (SPEC §4). A client
  /// without a cookie gets a fresh random id, returned as Set-Cookie.
  std::uint32_t client_bucket(const routing::ServiceRoute& svc) {
    set_cookie_.clear();
    const auto& sticky = svc.sticky;
    switch (sticky.kind) {
      case config::Sticky::Kind::source_ip:
        return routing::bucket_of(routing::stable_hash(client_ip_));
      case config::Sticky::Kind::header: {
        const auto key = parser_->get()[sticky.name];
        if (!key.empty()) return routing::bucket_of(routing::stable_hash(key));
        break;
      }
      case config::Sticky::Kind::cookie: {
        const auto& req = parser_->get();
        for (const auto& field : boost::make_iterator_range(req.equal_range(http::field::cookie))) {
          const auto key = find_cookie(field.value(), sticky.name);
          if (!key.empty()) return routing::bucket_of(routing::stable_hash(key));
        }
        char id[17];
        const auto r = worker_.random();
        for (int i = 0; i < 16; ++i) id[i] = "0123456789abcdef"[(r >> (i * 4)) & 0xf];
        const std::string_view key(id, 16);
        set_cookie_.append("Set-Cookie: ").append(sticky.name).append("=").append(key);
        set_cookie_.append("; Path=/; HttpOnly; SameSite=Lax\r\n");
        return routing::bucket_of(routing::stable_hash(key));
      }
      case config::Sticky::Kind::none:
        break;
    }
    return routing::bucket_of(worker_.random());
  }

  /// The override header forces a color only from an allowed address; otherwise it is ignored
  /// (and, like every override header, not forwarded).
  std::optional<routing::Color> forced_color(const routing::ServiceRoute& svc) const {
    const auto& o = svc.override_color;
    if (!o.enabled) return std::nullopt;
    const auto value = parser_->get()[o.header];
    if (value.empty()) return std::nullopt;
    const bool allowed = std::any_of(o.allow_from.begin(), o.allow_from.end(),
                                     [this](const config::Cidr& c) { return c.contains(client_addr_); });
    if (!allowed) return std::nullopt;
    if (beast::iequals(value, "green")) return routing::Color::green;
    if (beast::iequals(value, "blue")) return routing::Color::blue;
    return std::nullopt;
  }

  static bool offers_websocket(std::string_view upgrade) noexcept {
    for (auto token : http::token_list{upgrade}) {
      if (beast::iequals(token, "websocket")) return true;
    }
    return false;
  }

  static bool is_idempotent(http::verb m) noexcept {
    switch (m) {
      case http::verb::get:
      case http::verb::head:
      case http::verb::options:
      case http::verb::put:
      case http::verb::delete_:
      case http::verb::trace:
        return true;
      default:
        return false;
    }
  }

  // ---------------------------------------------------------------- upstream
  static constexpr std::uint32_t no_server = ~0u;

  std::uint32_t pick_server() {
    const auto& pool = table_->services[static_cast<std::size_t>(service_)].pool(color_);
    std::uint32_t best = no_server;
    unsigned best_load = ~0u;
    const auto n = pool.size();
    const auto start = n ? static_cast<std::size_t>(worker_.random() % n) : 0;
    for (std::size_t k = 0; k < n; ++k) {
      const auto& s = pool[(start + k) % n];
      if (!(panic_ ? s.enabled : s.usable()) || s.id == excluded_server_) continue;
      const auto load = worker_.pool().outstanding(slot_of(s.id));
      if (load < best_load) {
        best = s.id;
        best_load = load;
      }
    }
    if (best == no_server && excluded_server_ != no_server) {
      excluded_server_ = no_server;  // the failed server is the only one: retry it
      return pick_server();
    }
    return best;
  }

  void choose_server_and_connect() {
    phase_ = Phase::upstream;
    server_ = pick_server();
    if (server_ == no_server) return finish_with_error(503);
    const auto slot = slot_of(server_);
    ++worker_.pool().outstanding(slot);
    counted_outstanding_ = true;
    upstream_ = fresh_connection_only_ ? nullptr
                                       : worker_.pool().take_idle(slot, attempt_start_, settings().upstream_idle);
    fresh_connection_only_ = false;
    upstream_reused_ = upstream_ != nullptr;
    if (upstream_reused_) return after_connect();
    upstream_ = worker_.pool().create(slot);
    if (const auto& tls = settings().upstream_tls[server_]) {
      upstream_->tls.emplace(upstream_->socket, tls->context());
      if (!tls->prepare(upstream_->tls->native_handle()))
        return upstream_failed(stats::FailureReason::connect, 502, true);
    }
    arm_upstream(settings().upstream_connect);
    auto self = this->shared_from_this();
    upstream_->socket.async_connect(rt_->endpoints[server_],
                                    [self](error_code ec) { self->on_connect(ec); });
  }

  void on_connect(error_code ec) {
    if (ec) {
      const bool timed_out = upstream_timed_out_;
      upstream_timed_out_ = false;
      return upstream_failed(stats::FailureReason::connect, timed_out ? 504u : 502u, true);
    }
    error_code ignored;
    upstream_->socket.set_option(tcp::no_delay(true), ignored);
    if (upstream_->tls) {
      // Still under the upstream_connect deadline; a failed handshake is a failed connect.
      auto self = this->shared_from_this();
      upstream_->tls->async_handshake(net::ssl::stream_base::client,
                                      [self](error_code hec) { self->on_upstream_handshake(hec); });
      return;
    }
    after_connect();
  }

  void on_upstream_handshake(error_code ec) {
    if (ec) return on_connect(ec);
    after_connect();
  }

  void after_connect() {
    if (expect_continue_) {
      expect_continue_ = false;
      static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
      arm_client(settings().client_idle);
      auto self = this->shared_from_this();
      net::async_write(stream_, net::buffer(continue_line), [self](error_code ec, std::size_t) {
        if (ec) return self->close();
        self->send_request_head();
      });
      return;
    }
    send_request_head();
  }

  void send_request_head() {
    const auto& req = parser_->get();
    head_.clear();
    const auto& svc = table_->services[static_cast<std::size_t>(service_)];
    RequestForwarding how;
    how.body.chunked = request_body_.kind() == BodyKind::chunked;
    if (const auto len = parser_->content_length(); len && !how.body.chunked) how.body.content_length = *len;
    how.upgrade = upgrade_;
    if (svc.override_color.enabled) how.strip = svc.override_color.header;
    if (svc.sticky.kind == config::Sticky::Kind::header) how.sticky = svc.sticky.name;
    write_request_head(head_, req, target_.origin_form,
                       ForwardedFor{client_ip_, tls_ ? "https" : "http",
                                    target_.authority.empty() ? std::string_view(req[http::field::host]) : target_.authority,
                                    target_.authority},
                       how);
    head_pending_ = true;
    upstream_bytes_sent_ = false;
    request_cut_ = false;
    request_abandoned_ = false;
    // First: relay_step may fail at once (bad chunked framing) and release the upstream.
    watch_for_early_answer();
    relay_step(stream_, buffer_, *upstream_, request_body_, Direction::request);
  }

  // ---------------------------------------------------------------- early answers
  /// Peeks at what the backend sent: a final status line ("HTTP/1.1 401") or its close. An
  /// interim 1xx, or a status line still in pieces, is left to the usual response read.
  static bool final_answer_or_close(Socket& s) {
    char peek[12];
    const auto n = ::recv(s.native_handle(), peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    const std::string_view line(peek, static_cast<std::size_t>(n));
    return line.size() >= 10 && line.substr(0, 7) == "HTTP/1." && line[8] == ' ' && line[9] >= '2' && line[9] <= '5';
  }

  /// While a request body streams to a plain upstream, waits (without reading) for the backend
  /// to speak first: a 401 or 413 to an upload it will not read is relayed at once, instead of
  /// the body stalling until upstream_response.
  void watch_for_early_answer() {
    if (request_body_.done() || upgrade_ || upstream_->tls) return;
    watching_early_ = true;
    auto self = this->shared_from_this();
    upstream_->socket.async_wait(tcp::socket::wait_read, [self](error_code ec) { self->on_early_answer(ec); });
  }

  /// The request body is through (or failed): the response is read the usual way.
  void stop_watching_early() {
    if (!watching_early_) return;
    watching_early_ = false;
    error_code ignored;
    if (upstream_) upstream_->socket.cancel(ignored);  // only the readiness wait is pending on it here
  }

  void on_early_answer(error_code ec) {
    if (ec == net::error::operation_aborted || !watching_early_ || !upstream_) return;
    watching_early_ = false;
    if (!ec && !final_answer_or_close(upstream_->socket)) return;  // an interim 1xx, or too little to tell
    // The backend answered (or closed) before the body was complete: the relay of the request
    // stops where it is (its pending operations are cancelled and their handlers do nothing),
    // and the client connection closes after the answer, its body unread.
    request_abandoned_ = true;
    request_cut_ = true;
    error_code ignored;
    upstream_->socket.cancel(ignored);
    lowest_layer().cancel(ignored);
    do_read_response_head();
  }

  // ---------------------------------------------------------------- body relay
  /// One step of moving a body from `in` to `out`: forward what the buffer holds
  /// (with the pending head, in one gather write), or read more.
  template <class In, class Out>
  void relay_step(In& in, beast::flat_buffer& buf, Out& out, BodyFraming& framing, Direction dir) {
    BodyFraming::Step step;
    if (buf.size() != 0 && !framing.done()) {
      const auto data = buf.data();
      step = framing.next(std::string_view(static_cast<const char*>(data.data()), data.size()));
      if (step.error) return relay_failed(dir, false, http::error::bad_chunk);
      if (dir == Direction::request && settings().max_body_bytes != 0 &&
          framing.body_bytes() > settings().max_body_bytes) {
        return body_too_large();
      }
    }
    if (step.take == 0 && !framing.done() && !head_pending_) return relay_read(in, buf, out, framing, dir);

    const auto consumed = step.take;
    const bool has_payload = framing.dechunk() ? !framing.payload().empty() : consumed != 0;
    if (!head_pending_ && !has_payload) {
      buf.consume(consumed);
      return framing.done() ? relay_done(dir) : relay_read(in, buf, out, framing, dir);
    }
    const auto head = head_pending_ ? net::const_buffer(head_.data(), head_.size()) : net::const_buffer();
    head_pending_ = false;
    arm_for_write(dir);
    auto self = this->shared_from_this();
    const bool with_head = head.size() != 0;
    auto on_written = [self, &in, &buf, &out, &framing, dir, consumed, with_head](error_code ec, std::size_t n) {
      if (dir == Direction::request && self->request_abandoned_) return;
      if (ec && dir == Direction::request && with_head && n == 0 && self->never_sent(ec)) return self->resend_unsent();
      if (ec) return self->relay_failed(dir, true, ec);
      self->note_written(dir);
      buf.consume(consumed);
      if (framing.done()) return self->relay_done(dir);
      self->relay_step(in, buf, out, framing, dir);
    };
    if (framing.dechunk()) {
      // De-chunking for an HTTP/1.0 client is rare: a vector of spans is fine here.
      gather_.clear();
      gather_.push_back(head);
      gather_.insert(gather_.end(), framing.payload().begin(), framing.payload().end());
      return net::async_write(out, gather_, std::move(on_written));
    }
    // Head and first body bytes leave in one gather write (one send per message).
    net::async_write(out, std::array<net::const_buffer, 2>{head, net::const_buffer(buf.data().data(), consumed)},
                     std::move(on_written));
  }

  template <class In, class Out>
  void relay_read(In& in, beast::flat_buffer& buf, Out& out, BodyFraming& framing, Direction dir) {
    arm_for_read(dir);
    auto self = this->shared_from_this();
    in.async_read_some(buf.prepare(read_chunk), [self, &in, &buf, &out, &framing, dir](error_code ec, std::size_t n) {
      if (dir == Direction::request && self->request_abandoned_) return;
      if (framing.kind() == BodyKind::until_eof && end_of_input(ec)) {
        framing.mark_done();
        return self->relay_done(dir);
      }
      if (ec) return self->relay_failed(dir, false, ec);
      buf.commit(n);
      self->relay_step(in, buf, out, framing, dir);
    });
  }

  void arm_for_read(Direction dir) noexcept {
    if (dir == Direction::response) return arm_upstream(settings().upstream_response);
    arm_client(settings().client_idle);
  }

  void arm_for_write(Direction dir) noexcept {
    if (dir == Direction::request) return arm_upstream(settings().upstream_response);
    arm_client(settings().client_idle);
  }

  void note_written(Direction dir) noexcept {
    if (dir == Direction::request) upstream_bytes_sent_ = true;
    if (dir == Direction::response) response_started_ = true;
  }

  void relay_done(Direction dir) {
    switch (dir) {
      case Direction::request:
        stop_watching_early();
        return do_read_response_head();
      case Direction::response:
        return finish_exchange();
      case Direction::to_upstream:
      case Direction::to_client:
        return tunnel_half_closed(dir);
    }
  }

  /// @param writing the failure happened on the write side of the relay
  void relay_failed(Direction dir, bool writing, error_code ec) {
    switch (dir) {
      case Direction::request:
        stop_watching_early();
        if (writing && !upstream_timed_out_ && !request_cut_) {
          // The backend may have answered before it stopped reading (a 413 or 401 to a large
          // upload, then close): that answer is still readable, and is the one to relay.
          request_cut_ = true;
          return do_read_response_head();
        }
        if (writing || upstream_timed_out_) {
          const bool timed_out = upstream_timed_out_;
          upstream_timed_out_ = false;
          return upstream_failed(timed_out ? stats::FailureReason::timeout : stats::FailureReason::reset,
                                 timed_out ? 504u : 502u, false);
        }
        // The client stopped sending mid-body (or sent bad chunked framing).
        if (ec == http::error::bad_chunk && !response_started_) {
          release_upstream(false);
          status_ = 400;
          record_exchange(400);
          return respond_local(400, false);
        }
        return close();
      case Direction::response:
        if (!writing) count_upstream_failure(upstream_timed_out_ ? stats::FailureReason::timeout
                                                                 : stats::FailureReason::reset);
        record_exchange(status_);
        return close();
      case Direction::to_upstream:
      case Direction::to_client:
        return close();
    }
  }

  /// The first write of a request to a reused connection failed before the kernel took a byte:
  /// the backend had already reset the connection, so it provably saw nothing of the request.
  /// Whatever its method, such a request may go again, once, on a fresh connection: its head
  /// and body bytes are all still in buffer_ (they leave it only once written).
  bool never_sent(error_code ec) const noexcept {
    return upstream_reused_ && !resent_unsent_ && (ec == net::error::broken_pipe || ec == net::error::connection_reset);
  }

  void resend_unsent() {
    resent_unsent_ = true;
    worker_.pool().learn(slot_of(server_), upstream_->idle_age);
    release_upstream(false);
    reset_request_body();
    fresh_connection_only_ = true;
    attempt_start_ = Clock::now();
    choose_server_and_connect();
  }

  void body_too_large() {
    release_upstream(false);
    if (response_started_) return close();
    status_ = 413;
    record_exchange(413);
    respond_local(413, false);
  }

  // ---------------------------------------------------------------- response
  void do_read_response_head() {
    phase_ = Phase::response;
    new_response_parser();
    response_bytes_seen_ = upstream_->buffer.size() != 0;
    parse_response_head();
  }

  void new_response_parser() {
    response_parser_.emplace();
    response_parser_->header_limit(upstream_header_limit);
    response_parser_->body_limit(boost::none);  // bodies are relayed raw, never held
    response_parser_->eager(false);
    if (head_method_) response_parser_->skip(true);
  }

  void parse_response_head() {
    auto& buf = upstream_->buffer;
    if (buf.size() != 0) {
      error_code ec;
      const auto n = response_parser_->put(buf.data(), ec);
      buf.consume(n);
      if (!ec && response_parser_->is_header_done()) return on_response_head();
      if (ec && ec != http::error::need_more) {
        return upstream_failed(stats::FailureReason::protocol, 502, false);
      }
    }
    arm_upstream(settings().upstream_response);
    auto self = this->shared_from_this();
    upstream_->async_read_some(buf.prepare(read_chunk), [self](error_code ec, std::size_t n) {
      self->on_response_read(ec, n);
    });
  }

  void on_response_read(error_code ec, std::size_t n) {
    if (ec) {
      if (upstream_timed_out_) {
        upstream_timed_out_ = false;
        return upstream_failed(stats::FailureReason::timeout, 504, false);
      }
      return upstream_failed(stats::FailureReason::reset, 502, false);
    }
    response_bytes_seen_ = true;
    upstream_->buffer.commit(n);
    parse_response_head();
  }

  void on_response_head() {
    auto& res = response_parser_->get();
    const unsigned status = res.result_int();
    if (status == 101) {
      // A switch bgproxy did not ask for (no websocket upgrade forwarded), or to another
      // protocol, would make the connection a blind tunnel: a protocol error, never a tunnel.
      if (upgrade_ && offers_websocket(res[http::field::upgrade])) return start_tunnel();
      return upstream_failed(stats::FailureReason::protocol, 502, false);
    }
    if (status < 200) {
      // Interim responses: 100 Continue was already answered by the proxy, and
      // 102/103 are optional hints; read on to the final response.
      new_response_parser();
      return parse_response_head();
    }
    status_ = status;
    if (status >= 500) worker_.server_failed(slot_of(server_));
    else worker_.server_succeeded(slot_of(server_));
    BodyKind kind;
    std::uint64_t length = 0;
    if (head_method_ || status == 204 || status == 304) {
      kind = BodyKind::none;
    } else if (response_parser_->chunked()) {
      kind = BodyKind::chunked;
    } else if (const auto len = response_parser_->content_length()) {
      kind = BodyKind::length;
      length = *len;
    } else {
      kind = BodyKind::until_eof;
    }
    upstream_keep_alive_ = res.keep_alive() && kind != BodyKind::until_eof && !request_cut_;
    const bool dechunk = kind == BodyKind::chunked && client_http10_;
    // A request body not read to its end (the backend answered early) leaves the client
    // connection unusable for another request.
    if (kind == BodyKind::until_eof || dechunk || worker_.draining() || !request_body_.done()) keep_alive_ = false;
    response_body_.reset(kind, length, dechunk);

    ResponseFraming framing;
    // 204 has no body, so no framing field (RFC 9110 §6.4.1); HEAD and 304 keep theirs as metadata.
    framing.chunked = response_parser_->chunked() && !client_http10_ && status != 204;
    if (const auto len = response_parser_->content_length(); len && !response_parser_->chunked() && status != 204) {
      framing.content_length = *len;
    }
    framing.keep_alive = keep_alive_;
    framing.client_http10 = client_http10_;
    head_.clear();
    extra_headers_.assign(color_header()).append(set_cookie_);
    if (const auto said = write_response_head(head_, res, framing, extra_headers_); !said.empty()) {
      const auto hint = parse_keep_alive(said);
      upstream_->retire_idle = retire_before(hint.timeout);
      upstream_->max_requests = hint.max;
    }
    head_pending_ = true;
    response_started_ = false;
    relay_step(*upstream_, upstream_->buffer, stream_, response_body_, Direction::response);
  }

  std::string_view color_header() const noexcept {
    const auto& svc = table_->services[static_cast<std::size_t>(service_)];
    if (!svc.expose_color_header) return {};
    return color_ == routing::Color::green ? std::string_view("X-Bg-Color: green\r\n")
                                           : std::string_view("X-Bg-Color: blue\r\n");
  }

  void finish_exchange() {
    record_exchange(status_);
    const bool reusable = upstream_keep_alive_ && upstream_->buffer.size() == 0;
    release_upstream(reusable);
    end_of_exchange();
  }

  /// The response is out: keep the client connection for the next request or close it.
  void end_of_exchange() {
    parser_.reset();
    response_parser_.reset();
    table_.reset();
    service_ = -1;
    server_ = no_server;
    status_ = 0;
    upstream_bytes_sent_ = false;
    response_started_ = false;
    response_bytes_seen_ = false;
    if (!keep_alive_) return graceful_close();
    // Draining after this response promised keep-alive: the client may be sending its next
    // request already, so it gets the drain grace and that request a Connection: close.
    phase_ = Phase::idle;
    arm_waiting(settings().client_idle);
    do_read_head();
  }

  // ---------------------------------------------------------------- failures
  void count_upstream_failure(stats::FailureReason reason) {
    if (server_ == no_server) return;
    ++worker_.stats().servers[slot_of(server_)].failures[static_cast<std::size_t>(reason)];
    worker_.server_failed(slot_of(server_));
  }

  /// An upstream attempt failed before any response byte reached the client.
  void upstream_failed(stats::FailureReason reason, unsigned status, bool connect_phase) {
    // A pooled connection the backend closed while idle says nothing about the
    // server: try a fresh one before counting anything.
    // Only a refused connection or a reset before any response byte may be
    // replayed; a timeout may mean the backend is still working on the request.
    const bool stale = upstream_reused_ && !response_bytes_seen_ && reason == stats::FailureReason::reset;
    const bool body_intact = connect_phase || request_body_.kind() == BodyKind::none;
    const bool retriable = (reason == stats::FailureReason::connect && status == 502) ||
                           (reason == stats::FailureReason::reset && !response_bytes_seen_);
    const bool replayable = retriable && body_intact && (connect_phase || idempotent_);
    // The backend closed the connection while it idled in the pool: its age teaches when to let go.
    if (stale) worker_.pool().learn(slot_of(server_), upstream_->idle_age);
    release_upstream(false);
    attempt_start_ = Clock::now();
    if (stale && replayable) return choose_server_and_connect();
    count_upstream_failure(reason);
    if (stale && !replayable) ++worker_.stats().servers[slot_of(server_)].stale_reuses;
    if (replayable && retries_left_ > 0) {
      --retries_left_;
      excluded_server_ = server_;
      return choose_server_and_connect();
    }
    ++service_stats().colors[static_cast<std::size_t>(color_)].upstream_failures;
    finish_with_error(status);
  }

  /// Answers a routed request with a proxy-generated error (502, 503, 504) and records it.
  /// The connection stays open only if the request body was fully consumed.
  void finish_with_error(unsigned status) {
    release_upstream(false);
    status_ = status;
    record_exchange(status);
    respond_local(status, keep_alive_ && request_body_.done());
  }

  /// Answers a request that never reached routing (400, 404, 413, 431).
  void reject(unsigned status, bool keep_alive) {
    ++worker_.stats().unrouted;
    service_ = -1;
    log_access(status, std::chrono::duration<double>(Clock::now() - start_time_).count());
    respond_local(status, keep_alive);
  }

  void release_upstream(bool reusable) {
    if (counted_outstanding_) {
      --worker_.pool().outstanding(slot_of(server_));
      counted_outstanding_ = false;
    }
    stop_watching_early();
    if (!upstream_) return;
    // Opened under an older generation (maybe to an address or with TLS settings a reload has
    // since renewed): not pooled for requests of the current one.
    if (reusable && rt_ == worker_.runtime()) {
      ++upstream_->requests;
      worker_.pool().put_idle(std::move(upstream_), finished_at_);  // set by record_exchange()
    } else {
      upstream_.reset();
    }
  }

  void record_exchange(unsigned status) {
    finished_at_ = Clock::now();
    const auto seconds = std::chrono::duration<double>(finished_at_ - start_time_).count();
    if (service_ >= 0) {
      service_stats().colors[static_cast<std::size_t>(color_)].record(status, seconds);
    }
    log_access(status, seconds);
  }

  void log_access(unsigned status, double seconds) {
    const auto& log = rt_->access_log;
    if (!log || !parser_) return;
    const auto& req = parser_->get();
    const bool routed = service_ >= 0 && table_;
    log->info("{} \"{} {} HTTP/{}.{}\" {} {:.6f} {} {} {}", client_ip_, req.method_string(), req.target(),
              req.version() / 10, req.version() % 10, status, seconds,
              routed ? std::string_view(table_->services[static_cast<std::size_t>(service_)].name) : "-",
              routed ? routing::color_name(color_) : "-",
              server_ != no_server ? std::string_view(rt_->servers[server_].endpoint.text) : "-");
  }

  /// Sends a proxy-generated response; closes afterwards unless `keep_alive`.
  void respond_local(unsigned status, bool keep_alive) {
    keep_alive_ = keep_alive && !worker_.draining();
    head_.clear();
    write_local_response(head_, status, keep_alive_);
    arm_client(settings().client_idle);
    phase_ = Phase::response;
    auto self = this->shared_from_this();
    net::async_write(stream_, net::buffer(head_), [self](error_code ec, std::size_t) {
      if (ec) return self->close();
      self->end_of_exchange();
    });
  }

  // ---------------------------------------------------------------- tunnel
  void start_tunnel() {
    phase_ = Phase::tunnel;
    status_ = 101;
    ResponseFraming framing;
    framing.upgrade = true;
    head_.clear();
    write_response_head(head_, response_parser_->get(), framing, color_header());
    record_exchange(101);
    upgrade_body_.reset(BodyKind::until_eof);
    tunnel_open_ = 2;
    // The client's leftover bytes (already in buffer_) go up, the head goes down.
    head_pending_ = true;
    relay_step(*upstream_, upstream_->buffer, stream_, upgrade_body_, Direction::to_client);
    head_pending_ = false;
    request_body_.reset(BodyKind::until_eof);
    relay_step(stream_, buffer_, *upstream_, request_body_, Direction::to_upstream);
  }

  void tunnel_half_closed(Direction dir) {
    error_code ignored;
    if (dir == Direction::to_upstream) {
      upstream_->socket.shutdown(tcp::socket::shutdown_send, ignored);
    } else if constexpr (tls_stream) {
      // TLS has no half-close (close_notify would race the pending read): the tunnel ends.
      return close();
    } else {
      lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
    }
    if (--tunnel_open_ == 0) close();
  }

  // ---------------------------------------------------------------- closing
  /// Half-closes, then reads and discards what the client still sends for a
  /// moment: closing with unread input makes the kernel send a reset, which can
  /// destroy the response before the client has read it (nginx's lingering close).
  void graceful_close() {
    release_upstream(false);
    phase_ = Phase::closing;
    buffer_.clear();
    if constexpr (tls_stream) {
      // close_notify, then wait (briefly) for the client's, which also drains what it still sends.
      arm_client(tls_shutdown_time);
      auto self = this->shared_from_this();
      stream_.async_shutdown([self](error_code) {
        error_code ignored;
        self->lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
        self->close();
      });
      return;
    }
    error_code ignored;
    lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
    arm_client(linger_time);
    linger();
  }

  void linger() {
    auto self = this->shared_from_this();
    stream_.async_read_some(buffer_.prepare(read_chunk), [self](error_code ec, std::size_t) {
      if (ec) return self->close();
      self->linger();
    });
  }

  void close() {
    if (phase_ == Phase::closed) return;
    phase_ = Phase::closed;
    deadline_ = Clock::time_point::max();
    error_code ignored;
    lowest_layer().close(ignored);
    release_upstream(false);
  }

  Worker& worker_;
  /// The generation this connection's current request routes by; taken with the table.
  RuntimeConstSharedPtr rt_;
  [[no_unique_address]] Contexts contexts_;  ///< declared before stream_: outlives the SSL object
  Stream stream_;
  beast::flat_buffer buffer_;  ///< client bytes; may hold the next pipelined request
  std::string client_ip_;
  std::array<std::uint8_t, 16> client_addr_;
  bool tls_;

  std::optional<http::request_parser<http::empty_body>> parser_;
  std::optional<http::response_parser<http::empty_body>> response_parser_;
  std::string head_;
  std::string set_cookie_;     ///< "Set-Cookie: ...\r\n" for a client that had no sticky cookie
  std::string extra_headers_;  ///< lines the proxy adds to a response head
  std::vector<net::const_buffer> gather_;
  RequestTarget target_;
  routing::RoutingTableConstSharedPtr table_;
  BodyFraming request_body_;
  BodyFraming response_body_;
  BodyFraming upgrade_body_;
  UpstreamConnectionPtr upstream_;
  Clock::time_point start_time_{};
  Clock::time_point attempt_start_{};  ///< when the current upstream attempt began (pool ages)
  Clock::time_point finished_at_{};    ///< when the last exchange was recorded

  Phase phase_ = Phase::idle;
  int service_ = -1;
  routing::Color color_ = routing::Color::blue;
  std::uint32_t server_ = no_server;
  std::uint32_t excluded_server_ = no_server;
  unsigned status_ = 0;
  int retries_left_ = 0;
  int tunnel_open_ = 0;
  bool keep_alive_ = true;
  bool client_http10_ = false;
  bool head_method_ = false;
  bool idempotent_ = false;
  bool upgrade_ = false;
  bool panic_ = false;
  bool expect_continue_ = false;
  bool head_pending_ = false;
  bool upstream_reused_ = false;
  bool upstream_keep_alive_ = false;
  bool upstream_bytes_sent_ = false;
  bool upstream_timed_out_ = false;
  bool request_cut_ = false;  ///< the backend stopped taking the request body; reading its answer
  bool watching_early_ = false;    ///< a readiness wait on the upstream runs beside the body relay
  bool request_abandoned_ = false;  ///< the backend answered early: the body relay's handlers stop
  bool response_started_ = false;
  bool response_bytes_seen_ = false;
  bool waiting_on_upstream_ = false;
  bool counted_outstanding_ = false;
  bool resent_unsent_ = false;         ///< this request already went again after a write that sent nothing
  bool fresh_connection_only_ = false;  ///< the next attempt opens a connection, not a pooled one
};

}  // namespace bgproxy::proxy
