#include "proxy/h2/h2_upstream.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <vector>

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/status.hpp>

#include "proxy/h2/connection_fields.hpp"
#include "proxy/http/upstream_pool.hpp"

namespace bgproxy::proxy {
namespace net = boost::asio;
using error_code = boost::system::error_code;

namespace {

/// Windows toward the backend: as much of an answer as may wait for a slow client.
constexpr std::int32_t stream_window = 256 * 1024;
constexpr std::int32_t connection_window = 1024 * 1024;

/// Not sent on as a field: connection-specific, or said otherwise in HTTP/2 (`host` is
/// `:authority`; `te: trailers` is added to every request).
bool not_forwarded(std::string_view lower) noexcept {
  return connection_specific(lower) || lower == "te" || lower == "host";
}

void lowercase_into(std::string& out, std::string_view name) {
  for (char c : name) out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c));
}

nghttp2_nv field(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
                    NGHTTP2_NV_FLAG_NONE};
}

void post_completion(const Executor& ex, PendingIo& pending, error_code ec, std::size_t n) {
  net::post(ex, [h = pending.take(), ec, n]() mutable { std::move(h)(ec, n); });
}

}  // namespace

H2Upstream::H2Upstream(UpstreamConnection& connection, BlockPool& blocks, bool https)
    : connection_(&connection), executor_(connection.get_executor()), https_(https), rbuf_(PooledAllocator<char>(blocks)) {}

H2Upstream::~H2Upstream() { nghttp2_session_del(session_); }

void H2Upstream::detach() {
  connection_ = nullptr;
  fail(net::error::operation_aborted);
}

void H2Upstream::open_session() {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &on_stream_close);
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

// ---------------------------------------------------------------- the request

void H2Upstream::next_exchange() {
  // The previous exchange is over (its answer read whole): this is the next request. A session
  // may start reading the answer before it writes the request (duplex), so both ways check.
  if (stream_open_ || !head_done_ || !in_done_ || !in_.empty()) return;
  head_bytes_.clear();
  head_done_ = false;
  out_.clear();
  out_pos_ = 0;
  in_pos_ = 0;
  in_data_ = 0;
  final_status_ = head_sent_ = content_length_ = chunked_ = in_done_ = false;
}

bool H2Upstream::write(std::string_view bytes) {
  if (connection_ == nullptr || failed_) return false;
  next_exchange();
  if (!head_done_) {
    head_bytes_.append(bytes);
    return parse_request_head();
  }
  return take_body(bytes);
}

bool H2Upstream::parse_request_head() {
  RequestHeadParser parser(request_head_);
  parser.header_limit(1024 * 1024);  // the session wrote it within its own limits
  parser.body_limit(boost::none);
  parser.eager(false);
  error_code ec;
  const auto n = parser.parse(net::buffer(head_bytes_), ec);
  if (ec == boost::beast::http::error::need_more) return true;
  if (ec) return false;
  head_done_ = true;
  if (parser.chunked()) {
    request_body_.reset(BodyKind::chunked, 0, true);
  } else if (const auto len = parser.content_length(); len && *len != 0) {
    request_body_.reset(BodyKind::length, *len);
  } else {
    request_body_.reset(BodyKind::none);
  }
  out_done_ = request_body_.done();
  if (!submit_request()) return false;
  const std::string rest = head_bytes_.substr(n);
  return rest.empty() || take_body(rest);
}

bool H2Upstream::submit_request() {
  const auto& head = request_head_;
  const auto authority = head[boost::beast::http::field::host];
  if (head.find(boost::beast::http::field::upgrade) != head.end()) return false;  // no tunnels over HTTP/2
  std::string names;
  std::size_t size = 0;
  for (const auto& f : head) size += f.name_string().size();
  names.reserve(size);  // the views below point into it: no reallocation after this
  std::vector<nghttp2_nv> nva;
  nva.reserve(head.size() + 5);
  nva.push_back(field(":method", head.method_string()));
  nva.push_back(field(":scheme", https_ ? "https" : "http"));
  nva.push_back(field(":authority", authority));
  nva.push_back(field(":path", head.target()));
  for (const auto& f : head) {
    const auto at = names.size();
    lowercase_into(names, f.name_string());
    const std::string_view lower(names.data() + at, f.name_string().size());
    if (!not_forwarded(lower)) nva.push_back(field(lower, f.value()));
  }
  // gRPC servers require it; any HTTP/2 server takes it (RFC 9113 §8.2.2).
  nva.push_back(field("te", "trailers"));
  if (session_ == nullptr) open_session();
  nghttp2_data_provider body{};
  body.source.ptr = this;
  body.read_callback = &read_body;
  const auto id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), out_done_ ? nullptr : &body, this);
  if (id < 0) return false;
  stream_id_ = id;
  stream_open_ = true;
  return true;
}

bool H2Upstream::take_body(std::string_view bytes) {
  while (!bytes.empty() && !request_body_.done()) {
    const auto step = request_body_.next(bytes);
    if (step.error) return false;
    if (request_body_.dechunk()) {
      for (const auto& span : request_body_.payload()) out_.append(static_cast<const char*>(span.data()), span.size());
    } else {
      out_.append(bytes.substr(0, step.take));
    }
    bytes.remove_prefix(step.take);
    if (step.take == 0) break;
  }
  if (request_body_.done()) out_done_ = true;
  return true;
}

void H2Upstream::finish_write(bool ok, std::size_t n, IoHandler handler) {
  if (!ok) {
    reusable_ = false;
    if (session_ != nullptr && stream_open_) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id_, NGHTTP2_CANCEL);
    flush();
    net::post(executor_, [h = std::move(handler)]() mutable { std::move(h)(net::error::broken_pipe, 0); });
    return;
  }
  writer_.set(std::move(handler));
  writer_bytes_ = n;
  if (session_ != nullptr && stream_open_) nghttp2_session_resume_data(session_, stream_id_);
  flush();
  do_read();
  release_writer();
}

void H2Upstream::release_writer() {
  if (writer_ && out_.size() - out_pos_ < out_high_water) post_completion(executor_, writer_, error_code{}, writer_bytes_);
}

ssize_t H2Upstream::read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                              std::uint32_t* data_flags, nghttp2_data_source* source, void*) {
  auto& self = *static_cast<H2Upstream*>(source->ptr);
  const auto n = std::min(length, self.out_.size() - self.out_pos_);
  std::memcpy(buf, self.out_.data() + self.out_pos_, n);
  self.out_pos_ += n;
  if (self.out_pos_ == self.out_.size()) {
    self.out_.clear();
    self.out_pos_ = 0;
  }
  self.release_writer();
  if (self.out_.empty() && self.out_done_) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  return n == 0 ? ssize_t{NGHTTP2_ERR_DEFERRED} : static_cast<ssize_t>(n);
}

// ---------------------------------------------------------------- the answer

int H2Upstream::on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                          const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* self_ptr) {
  auto& self = *static_cast<H2Upstream*>(self_ptr);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != self.stream_id_) return 0;
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") {
    unsigned status = 0;
    std::from_chars(v.data(), v.data() + v.size(), status);
    if (status < 200) return 0;  // an interim answer: its fields are dropped below
    self.final_status_ = true;
    const auto reason = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
    self.in_.append("HTTP/1.1 ").append(v).append(" ").append(reason.data(), reason.size()).append("\r\n");
    return 0;
  }
  if (!self.final_status_ || n.empty() || n.front() == ':') return 0;
  if (!self.head_sent_) {
    if (n == "content-length") self.content_length_ = true;
    if (not_forwarded(n)) return 0;
    self.in_.append(n).append(": ").append(v).append("\r\n");
  } else if (self.chunked_) {
    self.trailers_.append(n).append(": ").append(v).append("\r\n");
  }
  return 0;
}

int H2Upstream::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* self_ptr) {
  auto& self = *static_cast<H2Upstream*>(self_ptr);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    self.reusable_ = false;
    return 0;
  }
  if (frame->hd.stream_id != self.stream_id_) return 0;
  const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->hd.type == NGHTTP2_HEADERS) {
    if (!self.final_status_) return 0;  // interim
    if (!self.head_sent_) {
      self.response_head_done(end_stream);
      return 0;
    }
    if (end_stream && self.chunked_) {
      self.in_.append("0\r\n").append(self.trailers_).append("\r\n");
      self.trailers_.clear();
      self.response_ended();
    }
    return 0;
  }
  if (frame->hd.type == NGHTTP2_DATA && end_stream) {
    if (self.chunked_) self.in_.append("0\r\n\r\n");
    self.response_ended();
  }
  return 0;
}

void H2Upstream::response_head_done(bool end_stream) {
  head_sent_ = true;
  if (end_stream) {
    // Headers only (gRPC's Trailers-Only among them): a complete answer without a body.
    if (!content_length_) in_.append("Content-Length: 0\r\n");
    in_.append("\r\n");
    return response_ended();
  }
  if (content_length_) {
    in_.append("\r\n");
  } else {
    in_.append("Transfer-Encoding: chunked\r\n\r\n");
    chunked_ = true;  // so trailers can follow the last chunk
  }
}

void H2Upstream::response_ended() { in_done_ = true; }

int H2Upstream::on_data_chunk_recv(nghttp2_session* session, std::uint8_t, std::int32_t stream_id,
                                   const std::uint8_t* data, std::size_t len, void* self_ptr) {
  auto& self = *static_cast<H2Upstream*>(self_ptr);
  if (stream_id != self.stream_id_ || !self.head_sent_ || self.in_done_) {
    nghttp2_session_consume_connection(session, len);
    return 0;
  }
  const std::string_view bytes(reinterpret_cast<const char*>(data), len);
  if (self.chunked_) {
    std::array<char, 16> size{};
    const auto end = std::to_chars(size.data(), size.data() + size.size(), len, 16).ptr;
    self.in_.append(size.data(), end).append("\r\n").append(bytes).append("\r\n");
  } else {
    self.in_.append(bytes);
  }
  self.in_data_ += len;
  return 0;
}

int H2Upstream::on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code, void* self_ptr) {
  auto& self = *static_cast<H2Upstream*>(self_ptr);
  if (stream_id != self.stream_id_) return 0;
  self.stream_open_ = false;
  if (error_code != NGHTTP2_NO_ERROR || !self.in_done_) {
    self.reusable_ = false;
    self.failed_ = true;  // reset by the backend, or cut before its end
  }
  return 0;
}

// ---------------------------------------------------------------- the session's reads

void H2Upstream::read(net::mutable_buffer into, IoHandler handler) {
  next_exchange();
  read_into_ = into;
  reader_.set(std::move(handler));
  serve_read();
  do_read();
}

void H2Upstream::serve_read() {
  if (!reader_) return;
  const auto available = in_.size() - in_pos_;
  if (available == 0) {
    if (failed_) return post_completion(executor_, reader_, fail_code_ ? fail_code_ : net::error::connection_reset, 0);
    if (in_done_) return post_completion(executor_, reader_, net::error::eof, 0);
    return;  // waits for frames
  }
  const auto n = std::min(available, read_into_.size());
  std::memcpy(read_into_.data(), in_.data() + in_pos_, n);
  in_pos_ += n;
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  }
  // Credited once the session has the bytes: a session that stops reading stops the backend.
  if (const auto credit = std::min(in_data_, n); credit != 0 && session_ != nullptr && connection_ != nullptr) {
    in_data_ -= credit;
    if (nghttp2_session_consume(session_, stream_id_, credit) != 0) {
      nghttp2_session_consume_connection(session_, credit);  // the stream has closed meanwhile
    }
    flush();
  }
  post_completion(executor_, reader_, error_code{}, n);
}

// ---------------------------------------------------------------- I/O on the connection

void H2Upstream::do_read() {
  if (reading_ || connection_ == nullptr || !stream_open_ || failed_) return;
  reading_ = true;
  connection_->raw_read_some(rbuf_.prepare(BlockPool::block_size),
                             [self = shared_from_this()](error_code ec, std::size_t n) {
                               self->reading_ = false;
                               if (self->connection_ == nullptr) return;
                               if (ec) return self->fail(ec);
                               self->rbuf_.commit(n);
                               const auto data = self->rbuf_.data();
                               const auto rv = nghttp2_session_mem_recv(
                                   self->session_, static_cast<const std::uint8_t*>(data.data()), data.size());
                               if (rv < 0) return self->fail(net::error::connection_reset);
                               self->rbuf_.consume(self->rbuf_.size());
                               if (!self->stream_open_) self->rbuf_.shrink_to_fit();
                               self->serve_read();
                               self->flush();
                               self->do_read();
                             });
}

void H2Upstream::flush() {
  if (writing_ || connection_ == nullptr || session_ == nullptr) return;
  for (;;) {
    const std::uint8_t* data = nullptr;
    const auto n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) return fail(net::error::connection_reset);
    if (n == 0) break;
    wbuf_.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  if (wbuf_.empty()) return;
  writing_ = true;
  connection_->raw_write(net::buffer(wbuf_), [self = shared_from_this()](error_code ec, std::size_t) {
    self->writing_ = false;
    self->wbuf_.clear();
    if (self->connection_ == nullptr) return;
    if (ec) return self->fail(ec);
    self->flush();
  });
}

void H2Upstream::fail(error_code ec) {
  failed_ = true;
  reusable_ = false;
  fail_code_ = ec;
  serve_read();
  if (writer_) post_completion(executor_, writer_, ec, 0);
}

}  // namespace bgproxy::proxy
