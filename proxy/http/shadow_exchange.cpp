#include "proxy/http/shadow_exchange.hpp"

#include <algorithm>
#include <limits>

#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include "bgproxy/shadow/shadow_stats.hpp"
#include "proxy/http/exchange_policy.hpp"
#include "proxy/net/worker.hpp"

namespace bgproxy::proxy {

namespace http = boost::beast::http;
using error_code = boost::system::error_code;

namespace {

/// Room for the chunk framing around max_compared_body bytes of a chunked body.
constexpr std::size_t raw_capture_limit = shadow::max_compared_body + 16 * 1024;

shadow::ServiceShadowStats& shadow_stats(Worker& w, const Runtime& rt, int service) {
  return w.stats().services[rt.service_slot[static_cast<std::size_t>(service)]].shadow;
}

/// The configured header fields of a head, as compare() takes them.
template <class Head>
void take_headers(const Head& head, const config::ShadowCompare& cmp, shadow::Answer& into) {
  into.headers.clear();
  for (const auto& name : cmp.headers) {
    const auto it = head.find(name);
    if (it == head.end()) continue;
    into.headers.emplace_back(name, std::string(it->value()));
  }
}

/// A chunked body as relayed, without its framing: what a client reads of it.
void dechunk(const std::string& raw, bool cut, shadow::Answer& into) {
  http::response_parser<http::string_body> p;
  p.eager(true);
  p.body_limit(shadow::max_compared_body);
  error_code ec;
  static constexpr std::string_view head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  p.put(boost::asio::buffer(head.data(), head.size()), ec);
  std::size_t at = 0;
  while (!ec && at < raw.size() && !p.is_done()) {
    const auto n = p.put(boost::asio::buffer(raw.data() + at, raw.size() - at), ec);
    if (n == 0) break;
    at += n;
  }
  into.body = std::move(p.get().body());
  into.body_cut = cut || ec == http::error::body_limit;
}

}  // namespace

ShadowExchange::ShadowExchange(Worker& worker, RuntimeConstSharedPtr rt, routing::RoutingTableConstSharedPtr table,
                               Plan plan)
    : worker_(worker), rt_(std::move(rt)), table_(std::move(table)), plan_(std::move(plan)),
      timer_(worker.executor()) {}

ShadowExchange::~ShadowExchange() {
  if (counted_in_flight_) --worker_.shadows().in_flight;
  // Never sent (the client's request failed before it was out), or answered while the client's
  // exchange ended without handing its answer over (it closed): nothing to compare.
  const bool never_sent = started_.time_since_epoch().count() == 0;
  if (never_sent || (shadow_state_ == Side::answered && primary_state_ == Side::pending)) {
    shadow_stats(worker_, *rt_, plan_.service).count(static_cast<std::uint8_t>(plan_.color), shadow::Result::skipped);
  }
}

std::size_t ShadowExchange::slot() const noexcept { return rt_->server_slot[server_]; }

void ShadowExchange::start() {
  if (started_.time_since_epoch().count() != 0) return;  // a retried request: its copy went already
  started_ = Clock::now();
  const auto& svc = table_->services[static_cast<std::size_t>(plan_.service)];
  auto& stats = shadow_stats(worker_, *rt_, plan_.service);
  const auto color = static_cast<std::uint8_t>(plan_.color);
  if (worker_.shadows().in_flight >= svc.shadow.max_in_flight) {
    stats.count(color, shadow::Result::dropped);
    shadow_state_ = Side::failed;
    return;
  }
  const auto& pool = svc.pool(plan_.color);
  const auto start = pool.empty() ? 0 : static_cast<std::size_t>(worker_.random() % pool.size());
  server_ = pick_server(pool, false, no_server, start,
                        [this](std::uint32_t id) { return worker_.pool().outstanding(rt_->server_slot[id]); });
  if (server_ == no_server || worker_.draining()) {
    stats.count(color, shadow::Result::skipped);
    shadow_state_ = Side::failed;
    return;
  }
  ++worker_.shadows().in_flight;
  counted_in_flight_ = true;
  worker_.track(*this);
  const auto& settings = rt_->settings;
  // One deadline for the whole copy: a shadow that hangs holds a connection, nothing else.
  timer_.expires_after(settings.upstream_connect + settings.upstream_response);
  timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (!ec) self->on_timeout();
  });
  conn_ = worker_.pool().take_idle(static_cast<std::uint32_t>(slot()), started_, settings.upstream_idle);
  if (conn_) return send();
  connect();
}

void ShadowExchange::connect() {
  conn_ = worker_.pool().create(static_cast<std::uint32_t>(slot()));
  if (const auto& tls = rt_->settings.upstream_tls[server_]) {
    conn_->tls.emplace(conn_->socket, tls->context());
    if (!tls->prepare(conn_->tls->native_handle())) return shadow_finished(false);
  }
  if (rt_->settings.upstream_h2[server_]) {
    conn_->use_h2();
    conn_ = worker_.pool().share_h2(std::move(conn_));
    conn_->open_shared(rt_->endpoints[server_], [self = shared_from_this()](error_code ec) {
      if (self->shadow_state_ != Side::pending) return;
      if (ec) return self->shadow_finished(false);
      self->send();
    });
    return;
  }
  conn_->socket.async_connect(rt_->endpoints[server_], [self = shared_from_this()](error_code ec) {
    if (self->shadow_state_ != Side::pending) return;
    if (ec) return self->shadow_finished(false);
    error_code ignored;
    self->conn_->socket.set_option(tcp::no_delay(true), ignored);
    if (!self->conn_->tls) return self->send();
    self->conn_->tls->async_handshake(boost::asio::ssl::stream_base::client, [self](error_code hec) {
      if (self->shadow_state_ != Side::pending) return;
      if (hec) return self->shadow_finished(false);
      self->send();
    });
  });
}

void ShadowExchange::send() {
  boost::asio::async_write(*conn_, boost::asio::buffer(plan_.request),
                           [self = shared_from_this()](error_code ec, std::size_t) {
                             if (self->shadow_state_ != Side::pending) return;
                             if (ec) return self->shadow_finished(false);
                             self->read();
                           });
}

void ShadowExchange::read() {
  parser_.emplace();
  // The body is bounded by read_body(), which stops reading past what is compared; the head, as
  // for the client's own answer.
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  parser_->header_limit(upstream_header_limit);
  if (plan_.head_method) parser_->skip(true);
  http::async_read_header(*conn_, buffer_, *parser_, [self = shared_from_this()](error_code ec, std::size_t) {
    if (self->shadow_state_ != Side::pending) return;
    if (ec) return self->shadow_finished(false);
    const auto status = self->parser_->get().result_int();
    // An interim answer (100, 103) comes before the real one, as on the client's side; a 101
    // would turn the connection into something else: not compared, not pooled.
    if (status == 101) return self->shadow_finished(false);
    if (status / 100 == 1) return self->read();
    self->read_body();
  });
}

void ShadowExchange::read_body() {
  if (parser_->is_done()) return answered(false);
  auto& body = shadow_.body;
  const auto have = body.size();
  constexpr std::size_t step = 16 * 1024;
  const auto want = std::min(step, shadow::max_compared_body + 1 - have);
  body.resize(have + want);
  auto& into = parser_->get().body();
  into.data = body.data() + have;
  into.size = want;
  into.more = true;
  http::async_read_some(*conn_, buffer_, *parser_, [self = shared_from_this()](error_code ec, std::size_t) {
    if (self->shadow_state_ != Side::pending) return;
    auto& body = self->shadow_.body;
    body.resize(body.size() - self->parser_->get().body().size);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return self->shadow_finished(false);
    if (body.size() > shadow::max_compared_body) return self->answered(true);
    self->read_body();
  });
}

void ShadowExchange::answered(bool cut) {
  const auto& res = parser_->get();
  const auto& svc = table_->services[static_cast<std::size_t>(plan_.service)];
  shadow_.status = res.result_int();
  take_headers(res, svc.shadow.compare, shadow_);
  shadow_.body_cut = cut;
  if (cut) shadow_.body.resize(shadow::max_compared_body);
  release_connection(!cut && res.keep_alive() && buffer_.size() == 0);
  shadow_finished(true);
}

void ShadowExchange::on_timeout() {
  if (shadow_state_ != Side::pending || !conn_) return;
  // The pending operation ends with an error, and its handler finishes the copy as failed;
  // the connection object lives until then. A shared HTTP/2 connection still connecting fails
  // with the streams queued on it, as a plain connect would; one that is up loses only this stream.
  if (conn_->h2 && !conn_->shared_connected()) {
    error_code ignored;
    conn_->transport().socket.close(ignored);
    return;
  }
  conn_->abort();
}

void ShadowExchange::release_connection(bool reusable) {
  if (!conn_) return;
  // Opened under an older generation: not pooled for the current one (as the session's); closed
  // by the deadline or a drain while its last read was completing: not pooled at all.
  if (reusable && rt_ == worker_.runtime() && conn_->socket.is_open() && !worker_.draining()) {
    ++conn_->requests;
    worker_.pool().put_idle(std::move(conn_), Clock::now());
  } else {
    error_code ignored;
    conn_->socket.close(ignored);
    conn_.reset();
  }
}

void ShadowExchange::shadow_finished(bool answered) {
  if (shadow_state_ != Side::pending) return;
  shadow_state_ = answered ? Side::answered : Side::failed;
  shadow_seconds_ = std::chrono::duration<double>(Clock::now() - started_).count();
  timer_.cancel();
  release_connection(false);  // still held: the copy failed, its connection is in an unknown state
  if (counted_in_flight_) {
    --worker_.shadows().in_flight;
    counted_in_flight_ = false;
  }
  if (!answered) shadow_stats(worker_, *rt_, plan_.service).count(static_cast<std::uint8_t>(plan_.color),
                                                                  shadow::Result::failed);
  compare_if_both();
}

void ShadowExchange::primary_head(const ParsedHead& head, bool chunked) {
  if (primary_state_ != Side::pending) return;
  const auto& svc = table_->services[static_cast<std::size_t>(plan_.service)];
  primary_.status = head.result_int();
  take_headers(head, svc.shadow.compare, primary_);
  primary_chunked_ = chunked;
  primary_raw_.clear();
}

void ShadowExchange::primary_body(std::string_view raw) {
  if (primary_state_ != Side::pending || primary_.body_cut) return;
  const auto room = raw_capture_limit - primary_raw_.size();
  if (raw.size() > room) primary_.body_cut = true;
  primary_raw_.append(raw.substr(0, std::min(room, raw.size())));
}

void ShadowExchange::primary_done(bool answered) {
  if (primary_state_ != Side::pending) return;
  primary_state_ = answered ? Side::answered : Side::failed;
  // From the same instant as the copy's own time (both requests out), so the client's upload
  // does not count against the primary.
  if (started_.time_since_epoch().count() != 0) {
    primary_seconds_ = std::chrono::duration<double>(Clock::now() - started_).count();
  }
  if (answered) {
    if (primary_chunked_) {
      dechunk(primary_raw_, primary_.body_cut, primary_);
    } else {
      primary_.body_cut = primary_.body_cut || primary_raw_.size() > shadow::max_compared_body;
      primary_raw_.resize(std::min(primary_raw_.size(), shadow::max_compared_body));
      primary_.body = std::move(primary_raw_);
    }
  }
  primary_raw_ = {};
  compare_if_both();
}

void ShadowExchange::compare_if_both() {
  if (primary_state_ == Side::pending || shadow_state_ == Side::pending) return;
  if (shadow_state_ == Side::failed) return;  // counted already
  auto& stats = shadow_stats(worker_, *rt_, plan_.service);
  const auto color = static_cast<std::uint8_t>(plan_.color);
  // The client got no answer of the backend's to compare with.
  if (primary_state_ == Side::failed) return stats.count(color, shadow::Result::skipped);
  const auto& svc = table_->services[static_cast<std::size_t>(plan_.service)];
  stats.count(color, shadow::Result::compared);
  stats.record(shadow::compare(primary_, shadow_, svc.shadow.compare), plan_.same_color, plan_.target,
               primary_seconds_, shadow_seconds_);
}

}  // namespace bgproxy::proxy
