#include "proxy/h2/h2_backend_connection.hpp"

#include <algorithm>
#include <array>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include "proxy/h2/h2_upstream.hpp"

namespace bgproxy::proxy {
namespace net = boost::asio;
using error_code = boost::system::error_code;

namespace {

/// Windows toward the backend: as much of an answer as may wait for a slow client, per stream
/// and for all the connection's streams together.
constexpr std::int32_t stream_window = 256 * 1024;
constexpr std::int32_t connection_window = 4 * 1024 * 1024;

}  // namespace

H2BackendConnection::H2BackendConnection(UpstreamConnectionPtr connection)
    : connection_(std::move(connection)),
      executor_(connection_->get_executor()),
      https_(connection_->tls.has_value()),
      batch_(https_),
      idle_since_(Clock::now()) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &on_stream_close);
  nghttp2_session_callbacks_set_send_data_callback(cbs, &send_body);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_client_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  const std::array<nghttp2_settings_entry, 2> settings{{
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, stream_window},
  }};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, connection_window);
}

H2BackendConnection::~H2BackendConnection() { nghttp2_session_del(session_); }

void H2BackendConnection::open(const tcp::endpoint& to, std::function<void(error_code)> done) {
  connection_->socket.async_connect(to, [self = shared_from_this(), done = std::move(done)](error_code ec) mutable {
    if (!ec && self->closed_) ec = net::error::operation_aborted;
    if (ec) {
      self->fail(net::error::broken_pipe);  // streams queued meanwhile: nothing of theirs was sent
      return done(ec);
    }
    error_code ignored;
    self->connection_->socket.set_option(tcp::no_delay(true), ignored);
    if (!self->connection_->tls) {
      self->connected();
      return done(ec);
    }
    self->connection_->tls->async_handshake(net::ssl::stream_base::client,
                                            [self, done = std::move(done)](error_code hec) mutable {
                                              if (!hec && self->closed_) hec = net::error::operation_aborted;
                                              if (hec) self->fail(net::error::broken_pipe);
                                              else self->connected();
                                              done(hec);
                                            });
  });
}

void H2BackendConnection::connected() {
  if (closed_) return;
  connected_ = true;
  flush();
  do_read();
  // Streams queued while connecting: their request writes complete now.
  for (auto* stream : streams_) stream->transport_up();
}

std::uint32_t H2BackendConnection::server_max_streams() const noexcept {
  return settings_known_ ? nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) : 0;
}

bool H2BackendConnection::takes_streams(std::uint32_t assumed_max) const noexcept {
  if (closed_ || retired_) return false;
  const auto allowed = std::min(settings_known_ ? server_max_streams() : assumed_max, max_streams);
  return streams_.size() < allowed;
}

void H2BackendConnection::retire() {
  retired_ = true;
  close_if_done();
}

void H2BackendConnection::close() { fail(net::error::operation_aborted); }

void H2BackendConnection::close_if_done() {
  if (retired_ && streams_.empty()) close();
}

// ---------------------------------------------------------------- streams

std::int32_t H2BackendConnection::submit(H2Upstream& stream, const nghttp2_nv* fields, std::size_t count, bool with_body) {
  if (closed_) return -1;
  nghttp2_data_provider body{};
  body.read_callback = &read_body;
  const auto id = nghttp2_submit_request(session_, nullptr, fields, count, with_body ? &body : nullptr, &stream);
  if (id < 0) return id;
  streams_.push_back(&stream);
  return id;
}

void H2BackendConnection::resume_body(std::int32_t stream_id) {
  if (!closed_) nghttp2_session_resume_data(session_, stream_id);
}

void H2BackendConnection::consume(std::int32_t stream_id, std::size_t n) {
  if (closed_) return;
  if (nghttp2_session_consume(session_, stream_id, n) != 0) nghttp2_session_consume_connection(session_, n);
}

void H2BackendConnection::cancel(H2Upstream& stream, std::int32_t stream_id, std::size_t unconsumed) {
  forget(&stream);
  if (closed_) return;
  if (stream_id > 0) {
    // Also for a stream whose HEADERS wait to go (the connection still connects): nghttp2 then
    // drops them. Either way stream_of() no longer finds `stream`.
    nghttp2_session_set_stream_user_data(session_, stream_id, nullptr);
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
  }
  if (unconsumed != 0) nghttp2_session_consume_connection(session_, unconsumed);
  flush();
  close_if_done();
}

void H2BackendConnection::unlist(H2Upstream* stream) {
  if (const auto it = std::find(streams_.begin(), streams_.end(), stream); it != streams_.end()) {
    *it = streams_.back();
    streams_.pop_back();
    if (streams_.empty()) idle_since_ = Clock::now();
  }
}

void H2BackendConnection::forget(H2Upstream* stream) {
  unlist(stream);
  if (const auto it = std::find(touched_.begin(), touched_.end(), stream); it != touched_.end()) touched_.erase(it);
}

H2Upstream* H2BackendConnection::stream_of(std::int32_t stream_id) const noexcept {
  // Only a registered exchange with that id: a stream's user data may outlive its exchange
  // (one cancelled before nghttp2 opened it), and its address may be another exchange's since.
  auto* stream = static_cast<H2Upstream*>(nghttp2_session_get_stream_user_data(session_, stream_id));
  if (stream == nullptr || std::find(streams_.begin(), streams_.end(), stream) == streams_.end()) return nullptr;
  return stream->stream_id() == stream_id ? stream : nullptr;
}

void H2BackendConnection::touched(H2Upstream* stream) {
  if (stream->touched) return;
  stream->touched = true;
  touched_.push_back(stream);
}

// ---------------------------------------------------------------- nghttp2 callbacks: record only

int H2BackendConnection::on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                                   std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                                   void* self_ptr) {
  auto& self = *static_cast<H2BackendConnection*>(self_ptr);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (auto* stream = self.stream_of(frame->hd.stream_id)) {
    stream->on_field(std::string_view(reinterpret_cast<const char*>(name), namelen),
                     std::string_view(reinterpret_cast<const char*>(value), valuelen));
  }
  return 0;
}

int H2BackendConnection::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* self_ptr) {
  auto& self = *static_cast<H2BackendConnection*>(self_ptr);
  if (frame->hd.type == NGHTTP2_SETTINGS && (frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
    self.settings_known_ = true;
    return 0;
  }
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    // Streams up to its last id go on; later ones are closed as refused by nghttp2.
    self.retired_ = true;
    return 0;
  }
  auto* stream = frame->hd.stream_id > 0 ? self.stream_of(frame->hd.stream_id) : nullptr;
  if (stream == nullptr) return 0;
  const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_HEADERS) {
    stream->on_headers_end(end_stream);
    self.touched(stream);
  } else if (frame->hd.type == NGHTTP2_DATA && end_stream) {
    stream->on_data_end();
    self.touched(stream);
  }
  return 0;
}

int H2BackendConnection::on_data_chunk_recv(nghttp2_session* session, std::uint8_t, std::int32_t stream_id,
                                            const std::uint8_t* data, std::size_t len, void* self_ptr) {
  auto& self = *static_cast<H2BackendConnection*>(self_ptr);
  auto* stream = self.stream_of(stream_id);
  if (stream == nullptr || !stream->takes_data()) {
    nghttp2_session_consume_connection(session, len);
    return 0;
  }
  stream->on_data(std::string_view(reinterpret_cast<const char*>(data), len));
  self.touched(stream);
  return 0;
}

int H2BackendConnection::on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code,
                                         void* self_ptr) {
  auto& self = *static_cast<H2BackendConnection*>(self_ptr);
  auto* stream = self.stream_of(stream_id);
  if (stream == nullptr) return 0;
  stream->on_closed(error_code);
  self.touched(stream);
  self.unlist(stream);  // served after this read, from touched_
  return 0;
}

ssize_t H2BackendConnection::read_body(nghttp2_session*, std::int32_t stream_id, std::uint8_t*, std::size_t length,
                                       std::uint32_t* data_flags, nghttp2_data_source*, void* self_ptr) {
  auto* stream = static_cast<H2BackendConnection*>(self_ptr)->stream_of(stream_id);
  if (stream == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // cancelled: its RST goes out
  return stream->size_body(length, data_flags);
}

/// A DATA frame is due: its header and payload join the batch. A full batch makes nghttp2 hold
/// the frame (WOULDBLOCK) and offer it again at the next flush.
int H2BackendConnection::send_body(nghttp2_session*, nghttp2_frame* frame, const std::uint8_t* framehd,
                                   std::size_t length, nghttp2_data_source*, void* self_ptr) {
  auto& self = *static_cast<H2BackendConnection*>(self_ptr);
  if (self.batch_.full()) return NGHTTP2_ERR_WOULDBLOCK;
  auto* stream = self.stream_of(frame->hd.stream_id);
  // Cancelled since the frame was sized: nghttp2 resets the stream and drops the frame.
  if (stream == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  const auto payload = stream->take_payload(length);
  self.batch_.add_data(framehd, payload.bytes, stream->shared_from_this(), stream->payload(), payload.upto);
  return 0;
}

// ---------------------------------------------------------------- I/O

void H2BackendConnection::do_read() {
  if (closed_) return;
  auto& buffer = connection_->buffer;
  connection_->raw_read_some(buffer.prepare(BlockPool::block_size),
                             [self = shared_from_this()](error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void H2BackendConnection::on_read(error_code ec, std::size_t n) {
  if (closed_) return;
  if (ec) return fail(ec == net::error::eof ? net::error::connection_reset : ec);
  auto& buffer = connection_->buffer;
  buffer.commit(n);
  const auto data = buffer.data();
  const auto rv = nghttp2_session_mem_recv(session_, static_cast<const std::uint8_t*>(data.data()), data.size());
  buffer.consume(buffer.size());
  if (rv < 0) return fail(net::error::connection_reset);
  serve_touched();
  flush();
  close_if_done();
  if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
    return fail(net::error::connection_reset);  // the server's GOAWAY ended every stream
  }
  do_read();
}

void H2BackendConnection::serve_touched() {
  // serve() only posts completions: no session code runs here, so the list stays as it is.
  for (auto* stream : touched_) {
    stream->touched = false;
    stream->serve();
  }
  touched_.clear();
}

void H2BackendConnection::flush_soon() {
  if (flush_due_ || closed_) return;
  flush_due_ = true;
  net::post(executor_, [self = shared_from_this()] {
    self->flush_due_ = false;
    self->flush();
  });
}

void H2BackendConnection::flush() {
  if (writing_ || closed_ || !connected_) return;
  while (!batch_.full()) {
    const std::uint8_t* data = nullptr;
    const auto n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return fail(net::error::connection_reset);
    if (n == 0) break;
    batch_.append({reinterpret_cast<const char*>(data), static_cast<std::size_t>(n)});
  }
  if (batch_.empty()) return;
  writing_ = true;
  auto done = [self = shared_from_this()](error_code ec, std::size_t) {
    self->writing_ = false;
    self->batch_.written();
    if (self->closed_) return;
    if (ec) return self->fail(ec);
    self->flush();
    self->close_if_done();
  };
  // A batch of copied frames is one buffer: written as one, it goes by send(), not sendmsg().
  if (const auto buffers = batch_.buffers(); buffers.size() == 1) {
    connection_->raw_write(buffers.front(), std::move(done));
  } else {
    connection_->raw_write(buffers, std::move(done));
  }
}

void H2BackendConnection::fail(error_code ec) {
  if (closed_) return;
  closed_ = true;
  serve_touched();  // streams that ended in the last frames read get their answers first
  error_code ignored;
  connection_->socket.close(ignored);
  // Frames gathered but never written hold their streams (which hold this connection): let go.
  if (!writing_) batch_.written();
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto* stream : streams) stream->connection_failed(ec);
}

}  // namespace bgproxy::proxy
