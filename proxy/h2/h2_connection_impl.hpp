#pragma once
/// A downstream HTTP/2 connection (SPEC §13), driven by nghttp2 from the worker's loop: bytes read
/// go to nghttp2_session_mem_recv, frames to send come from nghttp2_session_mem_send and leave in
/// one write at a time. Each request stream is served by its own ClientSession over an
/// H2StreamIo (h2_stream.hpp), so routing, stickiness, override, limits, timeouts, accounting and
/// the access log are those of HTTP/1.1, per stream: a switch applies to the streams that start
/// after it, however long the connection lives.
///
/// nghttp2's callbacks only record what arrived (stream heads, DATA, ends); sessions start and
/// reads complete after mem_recv returns, so nothing calls back into nghttp2 from inside it.
/// Flow control is manual (no_auto_window_update): request DATA is credited to the client once
/// its session has read it, so a slow backend slows the client down (Envoy does the same).
/// Template on the client stream (plain socket, TLS) like ClientSession; instantiated in
/// h2_connection.cpp. Thread: the worker's.

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <spdlog/spdlog.h>

#include "proxy/h2/abuse_limits.hpp"
#include "proxy/h2/connection_fields.hpp"
#include "proxy/h2/frame_batch.hpp"
#include "proxy/h2/h2_connection.hpp"
#include "proxy/h2/h2_stream.hpp"
#include "proxy/http/client_session.hpp"
#include "proxy/net/block_pool.hpp"
#include "proxy/net/slab_pool.hpp"
#include "proxy/net/timed.hpp"
#include "proxy/net/worker.hpp"

namespace bgproxy::proxy {

template <class Stream>
class H2Connection final : public Timed, public H2Link, public std::enable_shared_from_this<H2Connection<Stream>> {
 public:
  /// @param owner what `stream` depends on (a TLS stream's contexts); may be null
  H2Connection(Worker& worker, std::shared_ptr<const void> owner, Stream stream, std::string client_ip,
               std::array<std::uint8_t, 16> client_addr, bool https);
  ~H2Connection();
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  /// @param received bytes already read from the client (the preface first), or none
  void start(std::string_view received);

  // Timed
  void on_deadline() override;
  void on_drain() override;
  void on_shed() override {}

  // H2Link
  void request_consumed(H2Stream& s, std::size_t data_bytes) override;
  void response_head(H2Stream& s) override;
  void response_data(H2Stream& s) override;
  void abandon(H2Stream& s) override;

 private:
  using error_code = boost::system::error_code;
  /// How long a connection told to go (GOAWAY) may take to say goodbye.
  static constexpr auto goodbye_time = std::chrono::seconds(1);
  /// Empty DATA frames in a row (without END_STREAM) taken before the connection is cut.
  static constexpr unsigned max_empty_data_frames = 100;

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                       const std::uint8_t* value, std::size_t valuelen, std::uint8_t flags, void* self);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static int on_data_chunk_recv(nghttp2_session*, std::uint8_t flags, std::int32_t stream_id, const std::uint8_t* data,
                                std::size_t len, void* self);
  static int on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code, void* self);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* self);
  static ssize_t read_payload(nghttp2_session*, std::int32_t stream_id, std::uint8_t* buf, std::size_t length,
                              std::uint32_t* data_flags, nghttp2_data_source* source, void* self);
  static int send_payload(nghttp2_session*, nghttp2_frame*, const std::uint8_t* framehd, std::size_t length,
                          nghttp2_data_source* source, void* self);

  H2Stream* stream_of(std::int32_t id) const noexcept;
  /// Off the list of open streams (the last one takes its place).
  void forget(H2Stream& s) noexcept;
  void count(stats::Http2ErrorReason r) noexcept { ++worker_.stats().http2_protocol_errors[static_cast<std::size_t>(r)]; }
  /// Sends the answer's trailer fields (chunked trailers of the HTTP/1.1 answer) as HEADERS.
  static void submit_trailers(nghttp2_session* session, const H2Stream& s);
  void request_ended(H2Stream& s);
  void do_read();
  void on_read(error_code ec, std::size_t n);
  /// Starts the sessions of streams whose heads arrived, serves reads that have bytes now.
  void dispatch();
  void flush();
  /// flush() at the end of this pass of the worker's loop: what the sessions answer meanwhile
  /// goes out in the same write.
  void flush_soon();
  void arm_idle() noexcept;
  void say_goodbye(std::uint32_t error);
  void close();

  Worker& worker_;
  std::shared_ptr<const void> owner_;  ///< declared before stream_: outlives it
  Stream stream_;
  ReadBuffer buffer_;
  std::string client_ip_;
  std::array<std::uint8_t, 16> client_addr_;
  bool https_;
  nghttp2_session* session_ = nullptr;
  /// The open streams, unordered (a stream knows its place: H2Stream::slot); found by id through
  /// nghttp2's stream user data. No node to allocate per stream, unlike a map.
  std::vector<H2StreamPtr> streams_;
  std::vector<H2StreamPtr> starting_;  ///< heads complete in the bytes just fed
  std::vector<H2StreamPtr> readable_;  ///< streams with new request bytes or their end
  FrameBatch sending_{!std::is_same_v<Stream, Socket>};    ///< the frames being written
  FrameBatch gathering_{!std::is_same_v<Stream, Socket>};  ///< frames taken from nghttp2 meanwhile
  std::string names_;  ///< lowercase field names of the head being submitted (nghttp2 copies them)
  std::vector<nghttp2_nv> nva_;
  std::size_t unconsumed_ = 0;  ///< DATA of closed streams still to credit to the connection
  std::size_t max_header_list_ = 0;
  bool reading_ = false;
  bool writing_ = false;
  bool flush_due_ = false;  ///< a flush_soon() is queued
  bool leaving_ = false;  ///< GOAWAY submitted
  unsigned empty_data_ = 0;  ///< empty DATA frames in a row
  bool closed_ = false;
};

// ------------------------------------------------------------------------------------------

template <class Stream>
H2Connection<Stream>::H2Connection(Worker& worker, std::shared_ptr<const void> owner, Stream stream,
                                   std::string client_ip, std::array<std::uint8_t, 16> client_addr, bool https)
    : worker_(worker),
      owner_(std::move(owner)),
      stream_(std::move(stream)),
      buffer_(PooledAllocator<char>(worker.blocks())),
      client_ip_(std::move(client_ip)),
      client_addr_(client_addr),
      https_(https) {
  worker_.track(*this);
}

template <class Stream>
H2Connection<Stream>::~H2Connection() {
  close();
  nghttp2_session_del(session_);
  worker_.connection_closed();
}

template <class Stream>
void H2Connection<Stream>::start(std::string_view received) {
  const auto& h2 = worker_.runtime()->config->http2;
  max_header_list_ = h2.max_header_list_bytes;
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &on_frame_send);
  nghttp2_session_callbacks_set_send_data_callback(cbs, &send_payload);
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  configure_abuse_limits(opt);
  nghttp2_session_server_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);

  const std::array<nghttp2_settings_entry, 3> settings{{
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h2.initial_stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, h2.max_header_list_bytes},
  }};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<std::int32_t>(h2.initial_connection_window));
  arm_idle();
  if (!received.empty()) {
    const auto space = buffer_.prepare(received.size());
    std::memcpy(space.data(), received.data(), received.size());
    buffer_.commit(received.size());
    return on_read(error_code{}, 0);
  }
  flush();
  do_read();
}

template <class Stream>
void H2Connection<Stream>::on_deadline() {
  deadline_ = Clock::time_point::max();
  if (leaving_) return close();
  say_goodbye(NGHTTP2_NO_ERROR);
  deadline_ = worker_.coarse_now() + goodbye_time;  // idle, or stalled: it gets no longer
}

template <class Stream>
void H2Connection<Stream>::on_drain() {
  if (!leaving_) say_goodbye(NGHTTP2_NO_ERROR);
}

/// GOAWAY with the last stream taken: those finish, no new one starts; the connection closes once
/// they are done and the frame is out, or after goodbye_time when nothing is running.
template <class Stream>
void H2Connection<Stream>::say_goodbye(std::uint32_t error) {
  leaving_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_), error,
                        nullptr, 0);
  if (streams_.empty()) deadline_ = worker_.coarse_now() + goodbye_time;
  flush();
}

/// Idle (no stream) or stalled (a write of frames that does not complete: a client that stopped
/// reading) for client_idle: the connection is told to go. Streams have their own deadlines.
template <class Stream>
void H2Connection<Stream>::arm_idle() noexcept {
  if (leaving_) return;
  deadline_ = streams_.empty() || writing_ ? worker_.coarse_now() + worker_.runtime()->settings.client_idle
                                           : Clock::time_point::max();
}

// ---------------------------------------------------------------- reading

template <class Stream>
void H2Connection<Stream>::do_read() {
  if (reading_ || closed_) return;
  reading_ = true;
  auto self = this->shared_from_this();
  stream_.async_read_some(buffer_.prepare(BlockPool::block_size),
                          [self](error_code ec, std::size_t n) { self->on_read(ec, n); });
}

template <class Stream>
void H2Connection<Stream>::on_read(error_code ec, std::size_t n) {
  reading_ = false;
  if (closed_) return;
  if (ec) return close();
  buffer_.commit(n);
  const auto data = buffer_.data();
  const auto rv = nghttp2_session_mem_recv(session_, static_cast<const std::uint8_t*>(data.data()), data.size());
  if (rv < 0) {
    spdlog::debug("h2: {}: {}", client_ip_, nghttp2_strerror(static_cast<int>(rv)));
    const bool flood = rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;
    count(flood                                 ? stats::Http2ErrorReason::flood
          : rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC   ? stats::Http2ErrorReason::bad_preface
          : rv == NGHTTP2_ERR_HEADER_COMP         ? stats::Http2ErrorReason::headers_too_large
                                                 : stats::Http2ErrorReason::protocol);
    // A GOAWAY with the reason (nghttp2 queues none for floods), then what can still be sent
    // goes before the close; a client that reads nothing is closed at goodbye_time.
    leaving_ = true;
    nghttp2_session_terminate_session(session_, flood ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
    buffer_.consume(buffer_.size());
    dispatch();
    flush();
    deadline_ = worker_.coarse_now() + goodbye_time;
    return;
  }
  buffer_.consume(static_cast<std::size_t>(rv));
  if (buffer_.size() == 0) buffer_.shrink_to_fit();  // an idle connection holds no buffer
  // Frames first: a stream nghttp2 found malformed in these bytes (a content-length its DATA
  // contradicts) is reset, and so closed, before its session could forward anything of it.
  flush();
  dispatch();
  arm_idle();
  flush();
  if (nghttp2_session_want_read(session_) != 0) do_read();
}

template <class Stream>
void H2Connection<Stream>::dispatch() {
  for (auto& s : starting_) {
    if (s->link) start_h2_stream(worker_, s, https_, client_ip_, client_addr_);
  }
  starting_.clear();
  for (auto& s : readable_) s->serve_read();
  readable_.clear();
}

template <class Stream>
H2Stream* H2Connection<Stream>::stream_of(std::int32_t id) const noexcept {
  return static_cast<H2Stream*>(nghttp2_session_get_stream_user_data(session_, id));
}

template <class Stream>
void H2Connection<Stream>::forget(H2Stream& s) noexcept {
  const auto slot = s.slot;
  if (slot != streams_.size() - 1) {
    streams_[slot] = std::move(streams_.back());
    streams_[slot]->slot = slot;
  }
  streams_.pop_back();  // may be the stream's last owner: `s` is not touched after this
}

template <class Stream>
int H2Connection<Stream>::on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* self) {
  auto& c = *static_cast<H2Connection*>(self);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto s = std::allocate_shared<H2Stream>(SlabAllocator<H2Stream>(c.worker_.h2_streams()), c, frame->hd.stream_id,
                                         c.worker_.executor(), c.worker_.blocks());
  nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s.get());
  s->slot = c.streams_.size();
  c.streams_.push_back(std::move(s));
  return 0;
}

template <class Stream>
int H2Connection<Stream>::on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                                    std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                                    void* self) {
  auto& c = *static_cast<H2Connection*>(self);
  auto* s = c.stream_of(frame->hd.stream_id);
  if (s == nullptr || frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // request trailers: not forwarded to HTTP/1.1
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  // A malformed field or a head over the limit resets the stream (RFC 9113 §8.1.1).
  if (!s->request.add(n, v)) {
    c.count(stats::Http2ErrorReason::malformed_stream);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  if (s->request.list_size() > c.max_header_list_) {
    c.count(stats::Http2ErrorReason::headers_too_large);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  return 0;
}

template <class Stream>
int H2Connection<Stream>::on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* self) {
  auto& c = *static_cast<H2Connection*>(self);
  auto* s = c.stream_of(frame->hd.stream_id);
  if (s == nullptr) return 0;
  const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    if (!s->request.finish(!end_stream)) {
      c.count(stats::Http2ErrorReason::malformed_stream);
      // A stream error (RFC 9113 §8.1.1), not the connection's: an error return here would be fatal.
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_PROTOCOL_ERROR);
      return 0;
    }
    s->in = s->request.take_head();
    s->in_done = end_stream;
    c.starting_.push_back(s->shared_from_this());
    return 0;
  }
  if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) && end_stream) c.request_ended(*s);
  if (frame->hd.type == NGHTTP2_DATA) {
    // Empty DATA frames cost work and carry nothing: a run of them is a flood (Envoy's
    // max_inbound_frames_with_empty_payload).
    c.empty_data_ = frame->hd.length == 0 && !end_stream ? c.empty_data_ + 1 : 0;
    if (c.empty_data_ > max_empty_data_frames && !c.leaving_) {
      c.count(stats::Http2ErrorReason::flood);
      c.leaving_ = true;
      nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM);
    }
  }
  return 0;
}

/// A GOAWAY with an error that this connection did not submit is nghttp2's own limit at work
/// (rapid reset): counted as a flood, and the connection is on its way out.
template <class Stream>
int H2Connection<Stream>::on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* self) {
  auto& c = *static_cast<H2Connection*>(self);
  if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR && !c.leaving_) {
    c.count(stats::Http2ErrorReason::flood);
    c.leaving_ = true;
  }
  return 0;
}

template <class Stream>
void H2Connection<Stream>::request_ended(H2Stream& s) {
  if (s.in_done) return;
  if (s.request.chunked()) s.in.append("0\r\n\r\n");
  s.in_done = true;
  readable_.push_back(s.shared_from_this());
}

template <class Stream>
int H2Connection<Stream>::on_data_chunk_recv(nghttp2_session*, std::uint8_t, std::int32_t stream_id,
                                             const std::uint8_t* data, std::size_t len, void* self) {
  auto& c = *static_cast<H2Connection*>(self);
  auto* s = c.stream_of(stream_id);
  if (s == nullptr || s->in_done) {
    c.unconsumed_ += len;  // nobody reads it; the connection window still takes it back
    return 0;
  }
  const std::string_view bytes(reinterpret_cast<const char*>(data), len);
  if (s->request.chunked()) {
    std::array<char, 16> size{};
    const auto end = std::to_chars(size.data(), size.data() + size.size(), len, 16).ptr;
    s->in.append(size.data(), end).append("\r\n").append(bytes).append("\r\n");
  } else {
    s->in.append(bytes);
  }
  s->in_data += len;
  c.readable_.push_back(s->shared_from_this());
  return 0;
}

template <class Stream>
int H2Connection<Stream>::on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code,
                                          void* self) {
  auto& c = *static_cast<H2Connection*>(self);
  auto* closing = c.stream_of(stream_id);
  if (closing == nullptr) return 0;
  auto& s = *closing;
  c.unconsumed_ += s.in_data;
  s.in_data = 0;
  if (error_code != NGHTTP2_NO_ERROR || !s.in_done) {
    s.fail(boost::asio::error::connection_reset);  // reset by the client, or cut short
  } else {
    s.link = nullptr;
    s.serve_read();  // a waiting read gets what is left, then its end
  }
  c.forget(s);
  return 0;
}

// ---------------------------------------------------------------- the sessions' side

template <class Stream>
void H2Connection<Stream>::request_consumed(H2Stream& s, std::size_t data_bytes) {
  if (closed_) return;
  nghttp2_session_consume(session_, s.id, data_bytes);
  flush_soon();
}

template <class Stream>
void H2Connection<Stream>::response_head(H2Stream& s) {
  if (closed_) return;
  const auto& head = s.response_head;
  std::size_t names_size = 0;
  for (const auto& f : head) names_size += f.name_string().size();
  names_.resize(names_size);  // the views below point into it: sized once
  char* lower = names_.data();
  nva_.clear();
  // gRPC never carries content-length (a headers-only answer came through HTTP/1.1 with one).
  const bool grpc = head[boost::beast::http::field::content_type].starts_with("application/grpc");
  std::array<char, 3> status{};
  std::to_chars(status.data(), status.data() + status.size(), head.result_int());
  nva_.push_back(nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(":status")),
                            reinterpret_cast<std::uint8_t*>(status.data()), 7, status.size(), NGHTTP2_NV_FLAG_NONE});
  for (const auto& f : head) {
    // The head's fields are classified (own_response_head.hpp): connection-specific ones have
    // no meaning in HTTP/2 and make clients fail the stream (RFC 9113 §8.2.2).
    if (connection_specific(f.name()) || (grpc && f.name() == boost::beast::http::field::content_length)) continue;
    const auto name = f.name_string();
    std::transform(name.begin(), name.end(), lower,
                   [](char ch) { return ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch + ('a' - 'A')) : ch; });
    const auto value = f.value();
    nva_.push_back(nghttp2_nv{reinterpret_cast<std::uint8_t*>(lower),
                              reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
                              value.size(), NGHTTP2_NV_FLAG_NONE});
    lower += name.size();
  }
  nghttp2_data_provider body{};
  body.source.ptr = &s;
  body.read_callback = &read_payload;
  nghttp2_submit_response(session_, s.id, nva_.data(), nva_.size(), s.has_body ? &body : nullptr);
  flush_soon();
}

template <class Stream>
void H2Connection<Stream>::response_data(H2Stream& s) {
  if (closed_) return;
  nghttp2_session_resume_data(session_, s.id);
  flush_soon();
}

template <class Stream>
void H2Connection<Stream>::abandon(H2Stream& s) {
  if (closed_) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
  flush_soon();
}

/// Sizes the next DATA frame of a stream; its payload is taken in send_payload, in place.
template <class Stream>
ssize_t H2Connection<Stream>::read_payload(nghttp2_session* session, std::int32_t, std::uint8_t*, std::size_t length,
                                           std::uint32_t* data_flags, nghttp2_data_source* source, void*) {
  auto& s = *static_cast<H2Stream*>(source->ptr);
  const auto n = s.out.next(length).size();
  *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (n == s.out_pending() && s.out_done) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!s.body.trailers().empty()) {
      *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;  // the trailers' HEADERS ends the stream
      submit_trailers(session, s);
    }
    return static_cast<ssize_t>(n);
  }
  return n == 0 ? ssize_t{NGHTTP2_ERR_DEFERRED} : static_cast<ssize_t>(n);
}

/// A DATA frame is due: its header and payload join the batch being gathered. A full batch
/// makes nghttp2 hold the frame (WOULDBLOCK) and offer it again at the next flush.
template <class Stream>
int H2Connection<Stream>::send_payload(nghttp2_session*, nghttp2_frame*, const std::uint8_t* framehd,
                                       std::size_t length, nghttp2_data_source* source, void* self) {
  auto& c = *static_cast<H2Connection*>(self);
  if (c.gathering_.full()) return NGHTTP2_ERR_WOULDBLOCK;
  auto& s = *static_cast<H2Stream*>(source->ptr);
  const auto payload = s.out.next(length);
  const auto upto = s.out.frame(length);
  c.gathering_.add_data(framehd, payload, s.shared_from_this(), s.out, upto);
  s.release_writer();
  return 0;
}

template <class Stream>
void H2Connection<Stream>::submit_trailers(nghttp2_session* session, const H2Stream& s) {
  std::string names;
  std::vector<nghttp2_nv> nva;
  std::vector<std::pair<std::size_t, std::string_view>> fields;  // (offset of the name in names, value)
  std::string_view text = s.body.trailers();
  while (!text.empty()) {
    const auto eol = text.find("\r\n");
    const auto line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    auto value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    const auto at = names.size();
    for (char ch : line.substr(0, colon)) names.push_back(static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch));
    fields.emplace_back(at, value);
  }
  names.shrink_to_fit();  // no reallocation once the views are taken below
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const auto end = i + 1 < fields.size() ? fields[i + 1].first : names.size();
    const auto [at, value] = fields[i];
    nva.push_back(nghttp2_nv{reinterpret_cast<std::uint8_t*>(names.data() + at),
                             reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), end - at, value.size(),
                             NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_submit_trailer(session, s.id, nva.data(), nva.size());
}

// ---------------------------------------------------------------- writing and closing

/// Takes frames from nghttp2 even while a write is out (into next_), so what sending does — a
/// reset closing its stream — happens now; writes one batch at a time.
/// Answers come from the sessions one at a time, as their backends reply; a write per answer cost
/// a system call, a packet and a wake-up of the client each (twice HAProxy's writes per answer,
/// which sends once per wake-up too). Queued behind the completions already due, the flush takes
/// every answer of this pass.
template <class Stream>
void H2Connection<Stream>::flush_soon() {
  if (flush_due_ || closed_) return;
  flush_due_ = true;
  boost::asio::post(worker_.executor(), [self = this->shared_from_this()] {
    self->flush_due_ = false;
    self->flush();
  });
}

template <class Stream>
void H2Connection<Stream>::flush() {
  if (closed_) return;
  if (unconsumed_ != 0) {
    nghttp2_session_consume_connection(session_, unconsumed_);
    unconsumed_ = 0;
  }
  while (!gathering_.full()) {
    const std::uint8_t* data = nullptr;
    const auto n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return close();
    if (n == 0) break;
    gathering_.append({reinterpret_cast<const char*>(data), static_cast<std::size_t>(n)});
  }
  if (writing_) return;
  if (gathering_.empty()) {
    if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) close();
    return;
  }
  std::swap(sending_, gathering_);
  writing_ = true;
  arm_idle();
  auto done = [self = this->shared_from_this()](error_code ec, std::size_t) {
    self->writing_ = false;
    self->sending_.written();
    if (ec) return self->close();
    self->flush();
    self->arm_idle();  // the last stream may have ended with what was just written
  };
  // A batch of copied frames is one buffer: written as one, it goes by send(), not sendmsg().
  if (const auto buffers = sending_.buffers(); buffers.size() == 1) {
    boost::asio::async_write(stream_, buffers.front(), std::move(done));
  } else {
    boost::asio::async_write(stream_, buffers, std::move(done));
  }
}

template <class Stream>
void H2Connection<Stream>::close() {
  if (closed_) return;
  closed_ = true;
  deadline_ = Clock::time_point::max();
  for (auto& s : streams_) s->fail(boost::asio::error::connection_reset);
  streams_.clear();
  starting_.clear();
  readable_.clear();
  error_code ignored;
  boost::beast::get_lowest_layer(stream_).close(ignored);
}

}  // namespace bgproxy::proxy
