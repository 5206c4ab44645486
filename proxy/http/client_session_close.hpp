#pragma once
/// ClientSession, part 4 of 4: the websocket tunnel after a 101, and closing the client
/// connection (lingering, so a response is not destroyed by a reset). Included by
/// client_session_impl.hpp only.

namespace bgproxy::proxy {

template <class Stream>
void ClientSession<Stream>::start_tunnel() {
  phase_ = Phase::tunnel;
  req_.status = 101;
  ResponseFraming framing;
  framing.upgrade = true;
  ex_->head.clear();
  write_response_head(ex_->head, ex_->response_head, framing, color_header());
  record_exchange(101);
  ex_->upgrade_body.reset(BodyKind::until_eof);
  tunnel_open_ = 2;
  // The client's leftover bytes (already in buffer_) go up, the head goes down.
  head_pending_ = true;
  relay_step(*upstream_, upstream_->buffer, stream_, ex_->upgrade_body, Direction::to_client);
  head_pending_ = false;
  ex_->request_body.reset(BodyKind::until_eof);
  relay_step(stream_, buffer_, *upstream_, ex_->request_body, Direction::to_upstream);
}

template <class Stream>
void ClientSession<Stream>::tunnel_half_closed(Direction dir) {
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

/// Half-closes, then reads and discards what the client still sends for a
/// moment: closing with unread input makes the kernel send a reset, which can
/// destroy the response before the client has read it (nginx's lingering close).
template <class Stream>
void ClientSession<Stream>::graceful_close() {
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

template <class Stream>
void ClientSession<Stream>::linger() {
  auto self = this->shared_from_this();
  stream_.async_read_some(buffer_.prepare(read_chunk), [self](error_code ec, std::size_t) {
    if (ec) return self->close();
    self->linger();
  });
}

template <class Stream>
void ClientSession<Stream>::close() {
  if (phase_ == Phase::closed) return;
  phase_ = Phase::closed;
  deadline_ = Clock::time_point::max();
  error_code ignored;
  lowest_layer().close(ignored);
  release_upstream(false);
}

}  // namespace bgproxy::proxy
