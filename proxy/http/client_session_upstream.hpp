#pragma once
/// ClientSession, part 2 of 4: one upstream attempt — choosing a server, a pooled or new
/// connection, the forwarded head, an early answer from the backend — and what a failed attempt
/// leads to. Included by client_session_impl.hpp only.

namespace bgproxy::proxy {

/// @param now a precise time, for the ages of pooled connections (the request's start, or now on a retry)
template <class Stream>
void ClientSession<Stream>::choose_server_and_connect(Clock::time_point now) {
  phase_ = Phase::upstream;
  attempt_ = Attempt{};
  ++attempt_serial_;
  const auto& pool = service_route().pool(req_.color);
  const auto start = pool.empty() ? 0 : static_cast<std::size_t>(worker_.random() % pool.size());
  attempt_.server = pick_server(pool, req_.panic, req_.excluded_server, start,
                                [this](std::uint32_t id) { return worker_.pool().outstanding(slot_of(id)); });
  if (attempt_.server == no_server) return finish_with_error(503);
  const auto slot = slot_of(attempt_.server);
  ++worker_.pool().outstanding(slot);
  attempt_.counted_outstanding = true;
  if (!req_.fresh_connection_only) upstream_ = worker_.pool().take_idle(slot, now, settings().upstream_idle);
  req_.fresh_connection_only = false;
  attempt_.reused = upstream_ != nullptr;
  if (attempt_.reused) return after_connect();
  upstream_ = worker_.pool().create(slot);
  if (const auto& tls = settings().upstream_tls[attempt_.server]) {
    upstream_->tls.emplace(upstream_->socket, tls->context());
    if (!tls->prepare(upstream_->tls->native_handle())) return upstream_failed(stats::FailureReason::connect, 502, true);
  }
  arm_upstream(settings().upstream_connect);
  attempt_.connecting = true;
  auto self = this->shared_from_this();
  if (settings().upstream_h2[attempt_.server]) {
    // A shared HTTP/2 connection: it joins the pool now, so exchanges that come while it
    // connects queue their streams on it; it connects (and handshakes) itself.
    upstream_->use_h2();
    upstream_ = worker_.pool().share_h2(std::move(upstream_));
    upstream_->open_shared(rt_->endpoints[attempt_.server], [self, serial = attempt_serial_](error_code ec) {
      // Given up meanwhile (the session closed, or went on with another attempt).
      if (serial != self->attempt_serial_ || !self->upstream_ || self->phase_ == Phase::closed) return;
      if (ec) return self->on_connect(ec);
      self->after_connect();
    });
    return;
  }
  upstream_->socket.async_connect(rt_->endpoints[attempt_.server], [self](error_code ec) { self->on_connect(ec); });
}

template <class Stream>
void ClientSession<Stream>::on_connect(error_code ec) {
  attempt_.connecting = false;
  if (ec) return upstream_failed(stats::FailureReason::connect, attempt_.timed_out ? 504u : 502u, true);
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

template <class Stream>
void ClientSession<Stream>::on_upstream_handshake(error_code ec) {
  if (ec) return on_connect(ec);
  after_connect();
}

template <class Stream>
void ClientSession<Stream>::after_connect() {
  attempt_.connecting = false;
  if (req_.expect_continue) {
    req_.expect_continue = false;
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

template <class Stream>
void ClientSession<Stream>::write_upstream_head() {
  const auto& req = ex_->request_head;
  const auto& svc = service_route();
  ex_->head.clear();
  RequestForwarding how;
  how.body.chunked = ex_->request_body.kind() == BodyKind::chunked;
  if (const auto len = ex_->parser->content_length(); len && !how.body.chunked) how.body.content_length = *len;
  how.upgrade = req_.upgrade;
  if (svc.override_color.enabled) how.strip = svc.override_color.header;
  if (svc.sticky.kind == config::Sticky::Kind::header) how.sticky = svc.sticky.name;
  const auto& target = req_.target;
  write_request_head(ex_->head, req, target.origin_form,
                     ForwardedFor{client_ip_, client_scheme(),
                                  target.authority.empty() ? std::string_view(req[http::field::host]) : target.authority,
                                  target.authority},
                     how);
}

/// Made now, while the forwarded head and a small body are at hand; sent once the client's
/// request is out (relay_done).
template <class Stream>
void ClientSession<Stream>::plan_shadow() {
  const auto& svc = service_route();
  const auto& sh = svc.shadow;
  // An HTTP/1.0 client gets a de-chunked answer, an upgrade a tunnel: nothing to compare alike.
  if (sh.percent_bp == 0 || req_.upgrade || req_.http10) return;
  const auto& req = ex_->request_head;
  if (!shadow_method(sh, req.method_string()) || !shadow_sampled(sh, req.method_string(), req_.target.origin_form)) {
    return;
  }
  std::string_view body;
  if (ex_->request_body.kind() != BodyKind::none) {
    const auto len = ex_->parser->content_length();
    // A chunked body, one over max_body_bytes, or one not all here yet is not copied: the
    // client's request never waits for its copy.
    if (ex_->request_body.kind() != BodyKind::length || !len || *len > sh.max_body_bytes || buffer_.size() < *len) {
      service_stats().shadow.count(static_cast<std::uint8_t>(svc.shadow_color), shadow::Result::skipped);
      return;
    }
    body = std::string_view(static_cast<const char*>(buffer_.data().data()), static_cast<std::size_t>(*len));
  }
  ShadowExchange::Plan plan;
  plan.service = req_.service;
  plan.color = svc.shadow_color;
  plan.same_color = plan.color == req_.color;
  if (!plan.same_color && ++worker_.shadows().planned % shadow_noise_every == 0) {
    plan.color = req_.color;
    plan.same_color = true;
  }
  plan.head_method = req_.head_method;
  plan.request = shadow_request(ex_->head, body);
  plan.target = std::string(req_.target.origin_form.substr(0, 200));
  ex_->shadow = std::make_shared<ShadowExchange>(worker_, rt_, req_.table, std::move(plan));
}

template <class Stream>
void ClientSession<Stream>::settle_shadow(bool answered) {
  if (!ex_ || !ex_->shadow) return;
  ex_->shadow->primary_done(answered);
  ex_->shadow.reset();
}

template <class Stream>
void ClientSession<Stream>::send_request_head() {
  head_pending_ = true;
  attempt_.duplex = upstream_->h2 && !ex_->request_body.done();
  // The answer's read starts first: relay_step may fail at once (bad chunked framing) and
  // release the upstream, which then ends that read too.
  if (attempt_.duplex) do_read_response_head();
  watch_for_early_answer();
  relay_step(stream_, buffer_, *upstream_, ex_->request_body, Direction::request);
}

// ---------------------------------------------------------------- early answers

/// Peeks at what the backend sent: a final status line ("HTTP/1.1 401") or its close. An
/// interim 1xx, or a status line still in pieces, is left to the usual response read.
template <class Stream>
bool ClientSession<Stream>::final_answer_or_close(Socket& s) {
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
template <class Stream>
void ClientSession<Stream>::watch_for_early_answer() {
  if (ex_->request_body.done() || req_.upgrade || upstream_->tls || upstream_->h2) return;
  attempt_.watching_early = true;
  auto self = this->shared_from_this();
  upstream_->socket.async_wait(tcp::socket::wait_read, [self](error_code ec) { self->on_early_answer(ec); });
}

/// The request body is through (or failed): the response is read the usual way.
template <class Stream>
void ClientSession<Stream>::stop_watching_early() {
  if (!attempt_.watching_early) return;
  attempt_.watching_early = false;
  error_code ignored;
  if (upstream_) upstream_->socket.cancel(ignored);  // only the readiness wait is pending on it here
}

template <class Stream>
void ClientSession<Stream>::on_early_answer(error_code ec) {
  if (ec == net::error::operation_aborted || !attempt_.watching_early || !upstream_) return;
  attempt_.watching_early = false;
  if (!ec && !final_answer_or_close(upstream_->socket)) return;  // an interim 1xx, or too little to tell
  // The backend answered (or closed) before the body was complete: the relay of the request
  // stops where it is (its pending operations are cancelled and their handlers do nothing),
  // and the client connection closes after the answer, its body unread.
  attempt_.request_abandoned = true;
  attempt_.request_cut = true;
  error_code ignored;
  upstream_->socket.cancel(ignored);
  lowest_layer().cancel(ignored);
  do_read_response_head();
}

// ---------------------------------------------------------------- failures and retries

/// The first write of a request to a reused connection failed before the kernel took a byte:
/// the backend had already reset the connection, so it provably saw nothing of the request.
/// Whatever its method, such a request may go again, once, on a fresh connection: its head
/// and body bytes are all still in buffer_ (they leave it only once written).
template <class Stream>
bool ClientSession<Stream>::never_sent(error_code ec) const noexcept {
  return attempt_.reused && !req_.resent_unsent &&
         (ec == net::error::broken_pipe || ec == net::error::connection_reset);
}

template <class Stream>
void ClientSession<Stream>::resend_unsent() {
  req_.resent_unsent = true;
  worker_.pool().learn(slot_of(attempt_.server), upstream_->idle_age);
  release_upstream(false);
  reset_request_body();
  req_.fresh_connection_only = true;
  choose_server_and_connect(Clock::now());
}

template <class Stream>
void ClientSession<Stream>::replay_request_body(std::string_view body) {
  reset_request_body();
  if (body.empty()) return;
  // Body, then a pipelined request's bytes already read: written after what the buffer holds,
  // which is then dropped (consume() after commit(): consuming all first would rewind the buffer).
  const auto after = buffer_.size();
  const auto space = buffer_.prepare(body.size() + after);
  auto* at = static_cast<char*>(space.data());
  std::memcpy(at, body.data(), body.size());
  if (after != 0) std::memcpy(at + body.size(), buffer_.data().data(), after);
  buffer_.commit(body.size() + after);
  buffer_.consume(after);
}

template <class Stream>
void ClientSession<Stream>::count_upstream_failure(stats::FailureReason reason) {
  if (attempt_.server == no_server) return;
  ++worker_.stats().servers[slot_of(attempt_.server)].failures[static_cast<std::size_t>(reason)];
  worker_.server_failed(slot_of(attempt_.server));
}

/// An upstream attempt failed before any response byte reached the client.
template <class Stream>
void ClientSession<Stream>::upstream_failed(stats::FailureReason reason, unsigned status, bool connect_phase) {
  // Cut by a rollback: the server did nothing wrong, and the request goes nowhere else.
  if (attempt_.cut) return finish_with_error(503);
  FailedAttempt failed;
  failed.reason = reason;
  failed.status = status;
  failed.connect_phase = connect_phase;
  failed.reused = attempt_.reused;
  failed.response_bytes_seen = attempt_.response_bytes_seen;
  // An HTTP/2 server refused the stream: once the whole body went (so no relay is under way),
  // the stream kept it, and this is the first refusal, the request may go again.
  std::optional<std::string_view> refused_body;
  if (!connect_phase && !req_.replayed_refused && upstream_ && (!attempt_.duplex || attempt_.request_relayed)) {
    refused_body = upstream_->refused_request_body();
  }
  failed.refused = refused_body.has_value();
  failed.body_intact = connect_phase || ex_->request_body.kind() == BodyKind::none || failed.refused;
  failed.idempotent = req_.idempotent;
  failed.retries_left = req_.retries_left;
  const bool stale = stale_reuse(failed);
  // The backend closed the connection while it idled in the pool: its age teaches when to let go.
  if (stale) worker_.pool().learn(slot_of(attempt_.server), upstream_->idle_age);
  const auto verdict = retry_verdict(failed);
  if (failed.refused && verdict != RetryVerdict::fail) {
    req_.replayed_refused = true;
    req_.fresh_connection_only = true;  // not the connection that refused it (RST_STREAM REFUSED_STREAM)
    replay_request_body(*refused_body);  // before the stream that holds it goes
  }
  release_upstream(false);
  switch (verdict) {
    case RetryVerdict::fresh_connection:
      // A pooled connection the backend closed while idle says nothing about the server.
      return choose_server_and_connect(Clock::now());
    case RetryVerdict::other_server:
      count_upstream_failure(reason);
      --req_.retries_left;
      req_.excluded_server = attempt_.server;
      return choose_server_and_connect(Clock::now());
    case RetryVerdict::fail:
      break;
  }
  count_upstream_failure(reason);
  if (stale) ++worker_.stats().servers[slot_of(attempt_.server)].stale_reuses;
  ++color_stats().upstream_failures;
  finish_with_error(status);
}

template <class Stream>
void ClientSession<Stream>::release_upstream(bool reusable) {
  if (attempt_.duplex && !attempt_.request_relayed && !attempt_.request_abandoned) {
    // The answer ended (or failed) before the client's body: the rest of the body goes nowhere,
    // and the client connection (for HTTP/2, the stream) closes after the answer.
    attempt_.request_abandoned = true;
    reusable = false;
    req_.keep_alive = false;
    error_code ignored;
    lowest_layer().cancel(ignored);
  }
  if (attempt_.counted_outstanding) {
    --worker_.pool().outstanding(slot_of(attempt_.server));
    attempt_.counted_outstanding = false;
  }
  stop_watching_early();
  if (!upstream_) return;
  // Opened under an older generation (maybe to an address or with TLS settings a reload has
  // since renewed): not pooled for requests of the current one.
  if (reusable && rt_ == worker_.runtime()) {
    ++upstream_->requests;
    worker_.pool().put_idle(std::move(upstream_), req_.finished);  // set by record_exchange()
  } else {
    upstream_.reset();
  }
}

}  // namespace bgproxy::proxy
