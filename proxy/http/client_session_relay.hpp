#pragma once
/// ClientSession, part 3 of 4: bodies relayed both ways, the response head, and the end of an
/// exchange (recorded, logged, the client connection kept or closed). Included by
/// client_session_impl.hpp only.

namespace bgproxy::proxy {

/// One step of moving a body from `in` to `out`: forward what the buffer holds
/// (with the pending head, in one gather write), or read more.
template <class Stream>
template <class In, class Out>
void ClientSession<Stream>::relay_step(In& in, ReadBuffer& buf, Out& out, BodyFraming& framing, Direction dir) {
  BodyFraming::Step step;
  if (buf.size() != 0 && !framing.done()) {
    const auto data = buf.data();
    // A gRPC call's messages are counted both ways as they pass: more than one makes it a
    // streaming call, kept out of p95 (record_exchange()).
    const bool count_grpc = (dir == Direction::request || dir == Direction::response) && service_route().grpc;
    step = framing.next(std::string_view(static_cast<const char*>(data.data()), data.size()), count_grpc);
    if (step.error) return relay_failed(dir, false, http::error::bad_chunk);
    if (dir == Direction::request && settings().max_body_bytes != 0 &&
        framing.body_bytes() > settings().max_body_bytes) {
      return body_too_large();
    }
  }
  if (step.take == 0 && !framing.done() && !head_pending_) return relay_read(in, buf, out, framing, dir);

  const auto consumed = step.take;
  if (dir == Direction::response && ex_->shadow && consumed != 0) {
    ex_->shadow->primary_body(std::string_view(static_cast<const char*>(buf.data().data()), consumed));
  }
  const bool has_payload = framing.dechunk() ? !framing.payload().empty() : consumed != 0;
  if (!head_pending_ && !has_payload) {
    buf.consume(consumed);
    return framing.done() ? relay_done(dir) : relay_read(in, buf, out, framing, dir);
  }
  const auto head = head_pending_ ? net::const_buffer(ex_->head.data(), ex_->head.size()) : net::const_buffer();
  head_pending_ = false;
  arm_for_write(dir);
  auto self = this->shared_from_this();
  const bool with_head = head.size() != 0;
  auto on_written = [self, &in, &buf, &out, &framing, dir, consumed, with_head, serial = attempt_serial_](
                        error_code ec, std::size_t n) {
    if (dir == Direction::request && (self->attempt_.request_abandoned || serial != self->attempt_serial_)) return;
    if (ec && dir == Direction::request && with_head && n == 0 && self->never_sent(ec)) return self->resend_unsent();
    if (ec) return self->relay_failed(dir, true, ec);
    // Closed meanwhile (a deadline, a drain): `buf` may be a backend connection's, gone with it.
    // close() cannot turn a completion already queued with success into an error.
    if (self->phase_ == Phase::closed) return;
    if (dir == Direction::response) self->req_.response_started = true;
    buf.consume(consumed);
    if (framing.done()) return self->relay_done(dir);
    self->relay_step(in, buf, out, framing, dir);
  };
  if (framing.dechunk()) {
    // De-chunking for an HTTP/1.0 client is rare: a vector of spans is fine here.
    ex_->gather.clear();
    ex_->gather.push_back(head);
    ex_->gather.insert(ex_->gather.end(), framing.payload().begin(), framing.payload().end());
    return net::async_write(out, ex_->gather, std::move(on_written));
  }
  // Head and first body bytes leave in one gather write (one send per message).
  std::array<net::const_buffer, 2> pieces{head, net::const_buffer(buf.data().data(), consumed)};
  if (dir == Direction::request || dir == Direction::response) {
    // An exchange's writes are one at a time: sent now when the socket takes them, the relay
    // goes on in this stack (the tunnel's two directions share the sockets and stay async).
    std::optional<std::size_t> sent;
    error_code ec;
    if constexpr (std::is_same_v<Out, Socket> || std::is_same_v<Out, UpstreamConnection>) sent = out.send_now(pieces, ec);
    if (sent) {
      if (ec || *sent == head.size() + consumed) return on_written(ec, *sent);
      // A part is left: the rest goes asynchronously, and the handler hears of all of it.
      std::size_t skip = *sent;
      for (auto& piece : pieces) {
        const auto k = std::min(skip, piece.size());
        piece += k;
        skip -= k;
      }
      return net::async_write(out, pieces, [on_written = std::move(on_written), before = *sent](error_code e, std::size_t n) mutable {
        on_written(e, before + n);
      });
    }
  }
  net::async_write(out, pieces, std::move(on_written));
}

template <class Stream>
template <class In, class Out>
void ClientSession<Stream>::relay_read(In& in, ReadBuffer& buf, Out& out, BodyFraming& framing, Direction dir) {
  arm_for_read(dir);
  auto self = this->shared_from_this();
  in.async_read_some(buf.prepare(read_chunk), [self, &in, &buf, &out, &framing, dir, serial = attempt_serial_](
                                                  error_code ec, std::size_t n) {
    // A request body's relay ends with its attempt: `out` may be a connection gone since.
    if (dir == Direction::request && (self->attempt_.request_abandoned || serial != self->attempt_serial_)) return;
    if (framing.kind() == BodyKind::until_eof && end_of_input(ec)) {
      framing.mark_done();
      return self->relay_done(dir);
    }
    if (ec) return self->relay_failed(dir, false, ec);
    if (self->phase_ == Phase::closed) return;  // as in relay_step's on_written
    buf.commit(n);
    self->relay_step(in, buf, out, framing, dir);
  });
}

template <class Stream>
void ClientSession<Stream>::arm_for_read(Direction dir) noexcept {
  if (dir == Direction::response) return arm_upstream(req_.upstream_response);
  arm_client(settings().client_idle);
}

template <class Stream>
void ClientSession<Stream>::arm_for_write(Direction dir) noexcept {
  if (dir == Direction::request) return arm_upstream(req_.upstream_response);
  arm_client(settings().client_idle);
}

template <class Stream>
void ClientSession<Stream>::relay_done(Direction dir) {
  switch (dir) {
    case Direction::request:
      stop_watching_early();
      if (ex_->shadow) ex_->shadow->start();  // the client's request is out: its copy may go
      if (attempt_.duplex) {
        attempt_.request_relayed = true;  // the answer is being read already
        return;
      }
      return do_read_response_head();
    case Direction::response:
      return finish_exchange();
    case Direction::to_upstream:
    case Direction::to_client:
      return tunnel_half_closed(dir);
  }
}

/// @param writing the failure happened on the write side of the relay
template <class Stream>
void ClientSession<Stream>::relay_failed(Direction dir, bool writing, error_code ec) {
  switch (dir) {
    case Direction::request:
      stop_watching_early();
      if (attempt_.duplex) {
        // The answer's side (already reading) decides: the backend answers, fails or times out.
        attempt_.request_abandoned = true;
        req_.keep_alive = false;
        return;
      }
      if (attempt_.cut) return upstream_failed(stats::FailureReason::reset, 503, false);
      if (writing && !attempt_.timed_out && !attempt_.request_cut) {
        // The backend may have answered before it stopped reading (a 413 or 401 to a large
        // upload, then close): that answer is still readable, and is the one to relay.
        attempt_.request_cut = true;
        return do_read_response_head();
      }
      if (writing || attempt_.timed_out) {
        const bool timed_out = attempt_.timed_out;
        return upstream_failed(timed_out ? stats::FailureReason::timeout : stats::FailureReason::reset,
                               timed_out ? 504u : 502u, false);
      }
      // The client stopped sending mid-body (or sent bad chunked framing).
      if (ec == http::error::bad_chunk && !req_.response_started) {
        release_upstream(false);
        req_.status = 400;
        record_exchange(400);
        return respond_local(400, false);
      }
      return close();
    case Direction::response:
      if (!writing && !attempt_.cut) {
        count_upstream_failure(attempt_.timed_out ? stats::FailureReason::timeout : stats::FailureReason::reset);
      }
      record_exchange(req_.status, grpc_accounted(false));
      return close();
    case Direction::to_upstream:
    case Direction::to_client:
      return close();
  }
}

template <class Stream>
void ClientSession<Stream>::body_too_large() {
  release_upstream(false);
  if (req_.response_started) return close();
  req_.status = 413;
  record_exchange(413);
  respond_local(413, false);
}

// ---------------------------------------------------------------- response

template <class Stream>
void ClientSession<Stream>::do_read_response_head() {
  phase_ = Phase::response;
  // The framing (and message count) of an earlier exchange's answer, on this Exchange, is gone.
  ex_->response_body.reset(BodyKind::none);
  attempt_.response_bytes_seen = upstream_->buffer.size() != 0;
  parse_response_head();
}

template <class Stream>
void ClientSession<Stream>::new_response_parser() {
  ex_->response_parser.emplace(ex_->response_head);
  ex_->response_parser->header_limit(upstream_header_limit);
  ex_->response_parser->body_limit(boost::none);  // bodies are relayed raw, never held
  ex_->response_parser->eager(false);
  if (req_.head_method) ex_->response_parser->skip(true);
}

/// As parse_head(): the response head is parsed whole, from its first byte, on a fresh parser.
template <class Stream>
void ClientSession<Stream>::parse_response_head() {
  auto& buf = upstream_->buffer;
  if (buf.size() != 0) {
    new_response_parser();
    error_code ec;
    const auto n = ex_->response_parser->parse(buf.data(), ec);
    if (n != 0) {
      buf.consume(n);
      return on_response_head();
    }
    if (ec != http::error::need_more) return upstream_failed(stats::FailureReason::protocol, 502, false);
  }
  arm_upstream(req_.upstream_response);
  auto self = this->shared_from_this();
  upstream_->async_read_some(buf.prepare(read_chunk), [self, serial = attempt_serial_](error_code ec, std::size_t n) {
    if (serial != self->attempt_serial_) return;  // an attempt given up meanwhile (its connection gone)
    self->on_response_read(ec, n);
  });
}

template <class Stream>
void ClientSession<Stream>::on_response_read(error_code ec, std::size_t n) {
  if (ec) {
    if (attempt_.timed_out) return upstream_failed(stats::FailureReason::timeout, 504, false);
    return upstream_failed(stats::FailureReason::reset, 502, false);
  }
  attempt_.response_bytes_seen = true;
  upstream_->buffer.commit(n);
  parse_response_head();
}

template <class Stream>
void ClientSession<Stream>::on_response_head() {
  const auto& res = ex_->response_head;
  const unsigned status = res.result_int();
  if (status == 101) {
    // A switch bgproxy did not ask for (no websocket upgrade forwarded), or to another
    // protocol, would make the connection a blind tunnel: a protocol error, never a tunnel.
    if (req_.upgrade && offers_websocket(res[http::field::upgrade])) return start_tunnel();
    return upstream_failed(stats::FailureReason::protocol, 502, false);
  }
  if (status < 200) {
    // Interim responses: 100 Continue was already answered by the proxy, and
    // 102/103 are optional hints; read on to the final response.
    return parse_response_head();
  }
  req_.status = status;
  if (status >= 500) worker_.server_failed(slot_of(attempt_.server));
  else worker_.server_succeeded(slot_of(attempt_.server));
  BodyKind kind;
  std::uint64_t length = 0;
  if (req_.head_method || status == 204 || status == 304) {
    kind = BodyKind::none;
  } else if (ex_->response_parser->chunked()) {
    kind = BodyKind::chunked;
  } else if (const auto len = ex_->response_parser->content_length()) {
    kind = BodyKind::length;
    length = *len;
  } else {
    kind = BodyKind::until_eof;
  }
  attempt_.upstream_keep_alive = ex_->response_parser->keep_alive() && kind != BodyKind::until_eof && !attempt_.request_cut;
  const bool dechunk = kind == BodyKind::chunked && req_.http10;
  // A request body not read to its end (the backend answered early) leaves the client
  // connection unusable for another request.
  if (kind == BodyKind::until_eof || dechunk || worker_.draining() || !ex_->request_body.done()) req_.keep_alive = false;
  ex_->response_body.reset(kind, length, dechunk, service_route().grpc);
  if (ex_->shadow) ex_->shadow->primary_head(res, kind == BodyKind::chunked);

  ResponseFraming framing;
  // 204 has no body, so no framing field (RFC 9110 §6.4.1); HEAD and 304 keep theirs as metadata.
  framing.body.chunked = ex_->response_parser->chunked() && !req_.http10 && status != 204;
  if (const auto len = ex_->response_parser->content_length(); len && !ex_->response_parser->chunked() && status != 204) {
    framing.body.content_length = *len;
  }
  framing.keep_alive = req_.keep_alive;
  framing.client_http10 = req_.http10;
  ex_->head.clear();
  ex_->extra_headers.assign(color_header()).append(ex_->set_cookie);
  if (const auto said = write_response_head(ex_->head, res, framing, ex_->extra_headers); !said.empty()) {
    const auto hint = parse_keep_alive(said);
    upstream_->retire_idle = retire_before(hint.timeout);
    upstream_->max_requests = hint.max;
  }
  head_pending_ = true;
  req_.response_started = false;
  relay_step(*upstream_, upstream_->buffer, stream_, ex_->response_body, Direction::response);
}

template <class Stream>
std::string_view ClientSession<Stream>::color_header() const noexcept {
  if (!service_route().expose_color_header) return {};
  return req_.color == routing::Color::green ? std::string_view("X-Bg-Color: green\r\n")
                                             : std::string_view("X-Bg-Color: blue\r\n");
}

// ---------------------------------------------------------------- end of an exchange

template <class Stream>
void ClientSession<Stream>::finish_exchange() {
  if (attempt_.duplex && !attempt_.request_relayed) attempt_.upstream_keep_alive = false;
  record_exchange(req_.status, grpc_accounted(true));
  settle_shadow(true);
  const bool reusable = attempt_.upstream_keep_alive && upstream_->buffer.size() == 0;
  release_upstream(reusable);
  end_of_exchange();
}

/// The response is out: keep the client connection for the next request or close it.
template <class Stream>
void ClientSession<Stream>::end_of_exchange() {
  ex_->parser.reset();
  ex_->response_parser.reset();
  req_.table.reset();  // let go of the snapshot while idle; the rest of req_ waits for the next request
  req_.service = -1;
  attempt_.server = no_server;
  if (!req_.keep_alive) return graceful_close();
  // Draining after this response promised keep-alive: the client may be sending its next
  // request already, so it gets the drain grace and that request a Connection: close.
  phase_ = Phase::idle;
  arm_waiting(settings().client_idle);
  do_read_head();
}

/// Answers a routed request with a proxy-generated error (502, 503, 504) and records it.
/// The connection stays open only if the request body was fully consumed.
template <class Stream>
void ClientSession<Stream>::finish_with_error(unsigned status) {
  release_upstream(false);
  req_.status = status;
  record_exchange(status);
  settle_shadow(false);
  respond_local(status, req_.keep_alive && ex_->request_body.done());
}

/// Answers a request that never reached routing (400, 404, 413, 431).
template <class Stream>
void ClientSession<Stream>::reject(unsigned status, bool keep_alive) {
  ++worker_.stats().unrouted;
  req_.service = -1;
  log_access(status, std::chrono::duration<double>(Clock::now() - req_.start).count());
  respond_local(status, keep_alive);
}

template <class Stream>
void ClientSession<Stream>::record_exchange(unsigned status, unsigned accounted) {
  req_.finished = Clock::now();
  const auto seconds = std::chrono::duration<double>(req_.finished - req_.start).count();
  if (req_.service >= 0) {
    const auto code = accounted != 0 ? accounted : status;
    // SPEC §13: a gRPC call streaming either way, or open longer than upstream_response, lasts
    // as long as its stream does; its duration says nothing of the backend's latency. The
    // response's count is this exchange's only once its read began (phase response).
    const bool streaming =
        service_route().grpc &&
        (ex_->request_body.grpc_messages() > 1 ||
         (phase_ == Phase::response && ex_->response_body.grpc_messages() > 1) ||
         seconds > std::chrono::duration<double>(settings().upstream_response).count());
    if (streaming) color_stats().record_streaming(code);
    else color_stats().record(code, seconds);
  }
  log_access(status, seconds);
}

/// A relayed answer of a gRPC service: counted by its grpc-status (SPEC §13).
/// @param complete the answer reached its end (else it was cut: no status, an error)
/// @return the status to account it under (500 for a gRPC error), 0 when not a gRPC answer
template <class Stream>
unsigned ClientSession<Stream>::grpc_accounted(bool complete) {
  if (req_.service < 0 || !service_route().grpc) return 0;
  const auto code = complete ? grpc_status_of(ex_->response_head["grpc-status"], ex_->response_body.trailers())
                             : grpc_status_missing;
  ++color_stats().grpc_statuses[code];
  return grpc_error(code) ? 500 : 0;
}

template <class Stream>
void ClientSession<Stream>::log_access(unsigned status, double seconds) {
  const auto& log = rt_->access_log;
  if (!log || !ex_ || !ex_->parser) return;
  const bool routed = req_.service >= 0 && req_.table;
  const auto server = attempt_.server;
  // The request line as on_request_head() kept it: the views into buffer_ may be gone by now.
  const auto version = ex_->parser->is_header_done() ? ex_->request_head.version() : 11;
  log->info("{} \"{} HTTP/{}.{}\" {} {:.6f} {} {} {}", client_ip_,
            ex_->parser->is_header_done() ? std::string_view(ex_->request_line) : std::string_view(" "), version / 10,
            version % 10, status, seconds,
            routed ? std::string_view(service_route().name) : "-", routed ? routing::color_name(req_.color) : "-",
            server != no_server ? std::string_view(rt_->servers[server].endpoint.text) : "-");
}

/// Sends a proxy-generated response; closes afterwards unless `keep_alive`.
template <class Stream>
void ClientSession<Stream>::respond_local(unsigned status, bool keep_alive) {
  req_.keep_alive = keep_alive && !worker_.draining();
  ex_->head.clear();
  if (status >= 500 && req_.service >= 0 && req_.table && service_route().grpc) {
    const auto code = write_grpc_error(ex_->head, status, req_.keep_alive);
    ++color_stats().grpc_statuses[code];
  } else {
    write_local_response(ex_->head, status, req_.keep_alive);
  }
  arm_client(settings().client_idle);
  phase_ = Phase::response;
  auto self = this->shared_from_this();
  net::async_write(stream_, net::buffer(ex_->head), [self](error_code ec, std::size_t) {
    if (ec) return self->close();
    self->end_of_exchange();
  });
}

}  // namespace bgproxy::proxy
