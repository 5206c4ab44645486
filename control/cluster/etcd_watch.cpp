// Watch::Impl, the watch that outlives its connections (reconnects, backoff, pings, compaction); and Watch.
#include <algorithm>

#include <boost/asio/post.hpp>

#include "control/cluster/etcd_client_impl.hpp"

namespace bgproxy::cluster {

using detail::make_error;
using detail::millis;
using detail::WatchStream;

void Watch::Impl::start() {
  net::post(client_->ioc(), [weak = weak_from_this()] {
    if (auto self = weak.lock()) self->connect();
  });
}

void Watch::Impl::resume(std::int64_t start_revision) {
  if (stopped_) return;
  next_revision_ = start_revision;
  compacted_ = false;
  backoff_ = options_.min_backoff;
  drop_stream();
  reconnect_timer_.cancel();
  start();
}

void Watch::Impl::stop() {
  stopped_ = true;
  connected_ = false;
  drop_stream();
  reconnect_timer_.cancel();
  ping_timer_.cancel();
}

bool Watch::Impl::websocket() const {
  switch (options_.transport) {
    case WatchTransport::websocket: return true;
    case WatchTransport::http_stream: return false;
    case WatchTransport::automatic: break;
  }
  // Only where the websocket loses nothing: no token to carry, no other member to move to.
  return !client_->needs_token() && client_->options().endpoints.size() == 1;
}

void Watch::Impl::connect() {
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

void Watch::Impl::open() {
  if (stopped_ || compacted_ || stream_ || client_->closed()) return;
  endpoint_ = client_->current();
  std::shared_ptr<WatchStream> s;
  if (websocket()) {
    s = detail::make_websocket_watch_stream(client_->ioc(), client_->tls(), options_.ping_interval);
  } else {
    s = detail::make_http_watch_stream(client_->ioc(), client_->tls(), options_.ping_interval);
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

void Watch::Impl::on_message(std::string_view m) {
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

void Watch::Impl::failed(EtcdError e, bool blame_endpoint) {
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

void Watch::Impl::schedule_ping() {
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

void Watch::Impl::drop_stream() {
  if (stream_) stream_->close();
  stream_.reset();
}

// ---------------------------------------------------------------------------------------------
// Public face

Watch::Watch(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Watch::~Watch() { stop(); }
void Watch::resume(std::int64_t start_revision) { impl_->resume(start_revision); }
std::int64_t Watch::next_revision() const { return impl_->next_revision(); }
bool Watch::connected() const { return impl_->connected(); }
void Watch::stop() { impl_->stop(); }

}  // namespace bgproxy::cluster
