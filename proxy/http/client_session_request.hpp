#pragma once
/// ClientSession, part 1 of 4: the connection's start and deadlines, the TLS handshake, the
/// request head and routing. Included by client_session_impl.hpp only.

namespace bgproxy::proxy {

template <class Stream>
ClientSession<Stream>::ClientSession(Worker& worker, Stream stream, std::string client_ip,
                                     std::array<std::uint8_t, 16> client_addr, Contexts contexts)
    : worker_(worker),
      rt_(worker.runtime()),
      contexts_(std::move(contexts)),
      stream_(std::move(stream)),
      buffer_(PooledAllocator<char>(worker.blocks())),
      client_ip_(std::move(client_ip)),
      client_addr_(client_addr) {
  worker_.track(*this);
}

template <class Stream>
ClientSession<Stream>::~ClientSession() {
  settle_shadow(false);
  if (ex_) worker_.exchanges().give(std::move(ex_));
  release_upstream(false);
  // A stream is not a connection; a connection handed to HTTP/2 is counted by its new owner.
  if (!h2_stream && !handed_over_) worker_.connection_closed();
}

template <class Stream>
void ClientSession<Stream>::start() {
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

template <class Stream>
void ClientSession<Stream>::on_deadline() {
  deadline_ = Clock::time_point::max();
  if (phase_ == Phase::handshake) {
    count_handshake_failure(stats::TlsFailureReason::timeout);
    return close();
  }
  if (waiting_ == Waiting::upstream && !req_.response_started && upstream_) {
    // The backend is slow: answer 504 from the failing handler.
    attempt_.timed_out = true;
    abort_upstream();
    return;
  }
  close();
}

/// The attempt's pending operations end with an error, and their handlers carry on: a connect
/// fails (for a shared HTTP/2 connection, with the streams queued on it), an exchange under way
/// ends (on a shared HTTP/2 connection, only its stream).
template <class Stream>
void ClientSession<Stream>::abort_upstream() {
  if (!attempt_.connecting) return upstream_->abort();
  error_code ignored;
  upstream_->transport().socket.close(ignored);
}

template <class Stream>
void ClientSession<Stream>::on_drain() {
  // An idle keep-alive client may be sending its next request right now; closing at once
  // would lose it. It gets a short grace instead: a request that comes is answered with
  // Connection: close, silence closes the connection at the deadline.
  if ((phase_ == Phase::idle || phase_ == Phase::handshake) && buffer_.size() == 0) {
    deadline_ = std::min(deadline_, worker_.coarse_now() + drain_idle_grace);
  }
}

/// `bgctl rollback --drain`: the backend connection closes, and its handlers end the exchange —
/// a 503 when nothing of the answer went out yet (upstream_failed), else the client connection
/// (for HTTP/2, the stream) closes, as when a backend fails mid-answer.
template <class Stream>
bool ClientSession<Stream>::on_cut(int service, routing::Color color) {
  if (req_.service != service || req_.color != color || attempt_.cut || !upstream_) return false;
  if (phase_ == Phase::tunnel) {
    close();
    return true;
  }
  if (phase_ != Phase::upstream && phase_ != Phase::response) return false;
  attempt_.cut = true;
  abort_upstream();
  error_code ignored;
  // A request body still coming from the client: its read ends too, rather than at the next byte.
  if (phase_ == Phase::upstream) lowest_layer().cancel(ignored);
  return true;
}

// ---------------------------------------------------------------- TLS handshake

template <class Stream>
void ClientSession<Stream>::on_handshake(error_code ec) {
  if (phase_ != Phase::handshake) return;  // closed by the deadline or a drain
  if (ec) {
    count_handshake_failure(classify_handshake_error(ec));
    // Plaintext or garbage: the engine may not have read it all, and closing with unread
    // input resets the connection; half-close and drain it instead.
    return close_after_failed_handshake();
  }
  ++worker_.stats().tls_handshakes;
  if constexpr (tls_stream) {
    if (chose_h2()) {
      hand_over();
      return start_h2_tls_connection(worker_, std::move(stream_), std::move(contexts_), std::move(client_ip_),
                                     client_addr_);
    }
  }
  phase_ = Phase::idle;
  arm_waiting(settings().client_header);
  do_read_head();
}

template <class Stream>
bool ClientSession<Stream>::chose_h2() {
  if constexpr (tls_stream) {
    const unsigned char* id = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(stream_.native_handle(), &id, &len);
    return len == 2 && id[0] == 'h' && id[1] == '2';
  }
  return false;
}

template <class Stream>
void ClientSession<Stream>::count_handshake_failure(stats::TlsFailureReason reason) noexcept {
  ++worker_.stats().tls_handshake_failures[static_cast<std::size_t>(reason)];
}

template <class Stream>
void ClientSession<Stream>::close_after_failed_handshake() {
  error_code ignored;
  lowest_layer().shutdown(tcp::socket::shutdown_send, ignored);
  phase_ = Phase::closing;
  arm(linger_time);
  buffer_.clear();
  linger_raw();
}

template <class Stream>
void ClientSession<Stream>::linger_raw() {
  auto self = this->shared_from_this();
  lowest_layer().async_read_some(buffer_.prepare(read_chunk), [self](error_code ec, std::size_t) {
    if (ec) return self->close();
    self->linger_raw();
  });
}

// ---------------------------------------------------------------- request head

/// Waits for the next request head. Without pipelined bytes the exchange goes back to the worker
/// until the next request's first byte: an idle connection holds none.
template <class Stream>
void ClientSession<Stream>::do_read_head() {
  if constexpr (plain_stream) shed_at_ = worker_.coarse_now() + shed_after;
  if (buffer_.size() == 0 && ex_) worker_.exchanges().give(std::move(ex_));
  parse_head();
}

/// Parses the head from its first byte on a fresh parser (head_parser.hpp): a head that came in
/// pieces is parsed once it is whole, with its views into buffer_.
template <class Stream>
void ClientSession<Stream>::parse_head() {
  if (h2c_ && took_h2c_opening()) return;
  if (buffer_.size() != 0) {
    if (phase_ == Phase::idle) begin_request();
    ex_->parser.emplace(ex_->request_head);
    ex_->parser->header_limit(static_cast<std::uint32_t>(settings().max_header_bytes));
    ex_->parser->body_limit(boost::none);  // Beast's 1 MB default would refuse large uploads; max_body_bytes is ours
    ex_->parser->eager(false);
    error_code ec;
    const auto n = ex_->parser->parse(buffer_.data(), ec);
    if (n != 0) {
      buffer_.consume(n);
      return on_request_head();
    }
    if (ec != http::error::need_more) return reject_request(ec);
  }
  read_head_more();
}

template <class Stream>
bool ClientSession<Stream>::took_h2c_opening() {
  if constexpr (plain_stream) {
    if (buffer_.size() == 0) return false;
    const std::string_view got(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    const auto n = std::min(got.size(), h2_preface.size());
    if (got.substr(0, n) == h2_preface.substr(0, n)) {
      if (n < h2_preface.size()) {
        read_head_more();
        return true;
      }
      hand_over();
      start_h2c_connection(worker_, std::move(stream_), got, std::move(client_ip_), client_addr_);
      buffer_.clear();
      return true;
    }
    h2c_ = false;  // HTTP/1.1 from here on
    if (!http1_) {
      close();
      return true;
    }
  }
  return false;
}

template <class Stream>
void ClientSession<Stream>::begin_request() {
  phase_ = Phase::head;
  shed_at_ = Clock::time_point::max();
  if (!ex_) ex_ = worker_.exchanges().take();
  ex_->shadow.reset();  // an exchange that ended by a close path did not settle its copy
  req_ = Request{};
  req_.start = Clock::now();
  arm_client(settings().client_header);
}

template <class Stream>
void ClientSession<Stream>::read_head_more() {
  auto self = this->shared_from_this();
  stream_.async_read_some(buffer_.prepare(read_chunk), [self](error_code ec, std::size_t n) {
    self->on_read_head(ec, n);
  });
}

template <class Stream>
void ClientSession<Stream>::on_read_head(error_code ec, std::size_t n) {
  if (shedding_) {
    shedding_ = false;
    if (ec == net::error::operation_aborted && phase_ == Phase::idle) return wait_idle();
  }
  if (ec) return close();  // EOF between requests is the normal end of a keep-alive connection
  buffer_.commit(n);
  parse_head();
}

/// Sheds the read buffer (32 KiB) of a connection idle for a while (issue 14): it goes back to the
/// worker's BlockPool, and the client's next bytes take one again.
/// TLS connections keep theirs: OpenSSL may hold decrypted bytes the socket no longer shows.
template <class Stream>
void ClientSession<Stream>::on_shed() {
  shed_at_ = Clock::time_point::max();
  if constexpr (plain_stream) {
    if (phase_ != Phase::idle || buffer_.size() != 0 || shedding_) return;
    shedding_ = true;
    error_code ignored;
    lowest_layer().cancel(ignored);
  }
}

template <class Stream>
void ClientSession<Stream>::wait_idle() {
  buffer_.shrink_to_fit();
  auto self = this->shared_from_this();
  // The wait outlives the crowd's requests: its op comes from the worker's slabs, not the heap
  // (see SlabPool for why).
  lowest_layer().async_wait(tcp::socket::wait_read,
                            net::bind_allocator(SlabAllocator<char>(worker_.idle_waits()), [self](error_code ec) {
                              if (self->phase_ != Phase::idle) return;  // closed meanwhile (deadline, drain)
                              if (ec) return self->close();
                              self->read_head_more();
                            }));
}

template <class Stream>
void ClientSession<Stream>::reject_request(error_code ec) {
  reject(ec == http::error::header_limit ? 431 : 400, false);
}

template <class Stream>
void ClientSession<Stream>::on_request_head() {
  const auto& req = ex_->request_head;
  if (worker_.runtime()->access_log) ex_->request_line.assign(req.method_string()).append(" ").append(req.target());
  const bool has_te = req.find(http::field::transfer_encoding) != req.end();
  // A Transfer-Encoding that does not end in chunked leaves the body length
  // unknowable on a request: refuse it rather than guess (RFC 9112 §6.3).
  if (has_te && !ex_->parser->chunked()) return reject(400, false);
  req_.http10 = req.version() == 10;
  // HTTP/1.0 has no Transfer-Encoding: such a message's framing is faulty (RFC 9112 §6.1), and a
  // 1.0 hop before us may have read it by another rule. Refused, like the other ambiguous shapes.
  if (has_te && req_.http10) return reject(400, false);
  req_.keep_alive = ex_->parser->keep_alive();
  const auto host_count = req.count(http::field::host);
  if (host_count > 1 || (host_count == 0 && !req_.http10)) return reject(400, false);

  if (const auto len = ex_->parser->content_length(); !ex_->parser->chunked() && len && settings().max_body_bytes != 0 &&
                                                  *len > settings().max_body_bytes) {
    return reject(413, false);
  }
  reset_request_body();
  // Only a websocket upgrade becomes a tunnel: any other (h2c above all) would carry traffic
  // past routing, rules and accounting. Those requests go on as plain ones, Upgrade removed.
  req_.upgrade = ex_->parser->upgrade() && offers_websocket(req[http::field::upgrade]);
  req_.head_method = req.method() == http::verb::head;
  req_.idempotent = is_idempotent(req.method());
  req_.expect_continue =
      !ex_->request_body.done() && !req_.http10 && beast::iequals(req[http::field::expect], "100-continue");

  req_.target = split_target(req.target(), req[http::field::host]);
  if (!req_.target.valid) return reject(400, false);

  // The table and the generation it was built for are pinned together.
  req_.table = worker_.table();
  if (rt_ != worker_.runtime()) rt_ = worker_.runtime();
  req_.service = routing::match_service(*req_.table, req_.target.host_without_port, req_.target.path);
  if (req_.service < 0) return reject(404, ex_->request_body.done() && req_.keep_alive);
  const auto& svc = service_route();
  const auto bucket = client_bucket(svc);
  const auto decision = routing::decide(svc, bucket, forced_color(svc.override_color, req[svc.override_color.header],
                                                                  client_addr_));
  req_.color = decision.color;
  req_.panic = decision.panic;
  if (decision.unavailable) return finish_with_error(503);
  if (decision.failover) ++service_stats().failovers_from[static_cast<std::size_t>(routing::other(req_.color))];
  req_.retries_left = 1;
  req_.upstream_response = settings().upstream_response;
  if (svc.grpc) {
    // The call's own deadline, capped by ours: past it the client has given up anyway (a 504
    // then reaches it as DEADLINE_EXCEEDED).
    if (const auto t = parse_grpc_timeout(req["grpc-timeout"])) {
      req_.upstream_response = std::min<Clock::duration>(req_.upstream_response, *t);
    }
  }
  // The forwarded head is written now, while the views into buffer_ hold; every attempt sends it.
  write_upstream_head();
  plan_shadow();
  choose_server_and_connect(req_.start);
}

/// The request body's framing from its start (again, when a request that never left is resent).
template <class Stream>
void ClientSession<Stream>::reset_request_body() {
  if (ex_->parser->chunked()) {
    ex_->request_body.reset(BodyKind::chunked);
  } else if (const auto len = ex_->parser->content_length(); len && *len > 0) {
    ex_->request_body.reset(BodyKind::length, *len);
  } else {
    ex_->request_body.reset(BodyKind::none);
  }
}

/// The client's bucket in [0, 10000): from its sticky key, so raising the
/// green weight only ever moves clients blue → green (docs/architecture.md). A client
/// without a cookie gets a fresh random id, returned as Set-Cookie.
template <class Stream>
std::uint32_t ClientSession<Stream>::client_bucket(const routing::ServiceRoute& svc) {
  ex_->set_cookie.clear();
  if (const auto key = sticky_key(svc.sticky, ex_->request_head, client_ip_); !key.empty()) {
    return routing::bucket_of(routing::stable_hash(key));
  }
  if (svc.sticky.kind == config::Sticky::Kind::cookie) {
    char id[17];
    const auto r = worker_.random();
    for (int i = 0; i < 16; ++i) id[i] = "0123456789abcdef"[(r >> (i * 4)) & 0xf];
    const std::string_view key(id, 16);
    ex_->set_cookie.append("Set-Cookie: ").append(svc.sticky.name).append("=").append(key);
    ex_->set_cookie.append("; Path=/; HttpOnly; SameSite=Lax\r\n");
    return routing::bucket_of(routing::stable_hash(key));
  }
  return routing::bucket_of(worker_.random());
}

}  // namespace bgproxy::proxy
