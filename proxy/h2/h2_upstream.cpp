#include "proxy/h2/h2_upstream.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <utility>
#include <vector>

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/status.hpp>

#include "proxy/h2/connection_fields.hpp"
#include "proxy/h2/h2_backend_connection.hpp"
#include "proxy/h2/own_head.hpp"

namespace bgproxy::proxy {
namespace net = boost::asio;
using error_code = boost::system::error_code;

namespace {

/// The session wrote the head within its own limits: this only bounds a runaway one.
constexpr std::size_t request_head_limit = 1024 * 1024;

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

H2Upstream::H2Upstream(std::shared_ptr<H2BackendConnection> connection)
    : connection_(std::move(connection)), executor_(connection_->executor()), out_(connection_->blocks()) {}

H2Upstream::~H2Upstream() = default;

void H2Upstream::detach() {
  if (connection_) {
    connection_->cancel(*this, stream_open_ ? stream_id_ : -1, in_data_);
    connection_.reset();
  }
  fail(net::error::operation_aborted);
}

void H2Upstream::abort(error_code ec) {
  cancel_stream();
  fail(ec);
}

void H2Upstream::cancel_stream() {
  if (!connection_ || !stream_open_) return;
  connection_->cancel(*this, stream_id_, in_data_);
  in_data_ = 0;
  stream_open_ = false;
}

UpstreamConnection& H2Upstream::transport() noexcept { return connection_->transport(); }

bool H2Upstream::connected() const noexcept { return connection_ && connection_->is_connected(); }

void H2Upstream::open(const tcp::endpoint& to, std::function<void(error_code)> done) {
  connection_->open(to, std::move(done));
}

void H2Upstream::transport_up() { release_writer(); }

// ---------------------------------------------------------------- the request

bool H2Upstream::write(std::string_view bytes) {
  if (!connection_ || failed_) return false;
  if (head_done_) return take_body(bytes);
  // A head usually comes whole in one write: it is read where it lies, not copied first.
  if (head_bytes_.empty()) return take_head(bytes);
  head_bytes_.append(bytes);
  const std::string held = std::exchange(head_bytes_, {});  // request_head_'s views point into it
  return take_head(held);
}

bool H2Upstream::take_head(std::string_view bytes) {
  const auto split = split_own_request_head(bytes, request_head_);
  if (split.malformed) return false;
  if (split.size == 0) {
    if (bytes.size() > request_head_limit) return false;
    head_bytes_.assign(bytes);  // the rest comes with the next write
    return true;
  }
  head_done_ = true;
  if (split.chunked) {
    request_body_.reset(BodyKind::chunked, 0, true);
  } else if (split.content_length && *split.content_length != 0) {
    request_body_.reset(BodyKind::length, *split.content_length);
  } else {
    request_body_.reset(BodyKind::none);
  }
  out_done_ = request_body_.done();
  if (!submit_request()) return false;
  bytes.remove_prefix(split.size);
  return bytes.empty() || take_body(bytes);
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
  nva.push_back(field(":scheme", connection_->https() ? "https" : "http"));
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
  const auto id = connection_->submit(*this, nva.data(), nva.size(), !out_done_);
  if (id < 0) return false;
  stream_id_ = id;
  stream_open_ = true;
  return true;
}

bool H2Upstream::take_body(std::string_view bytes) {
  while (!bytes.empty() && !request_body_.done()) {
    const auto step = request_body_.next(bytes);
    if (step.error) return false;
    keep_for_replay(bytes.substr(0, step.take));
    if (request_body_.dechunk()) {
      for (const auto& span : request_body_.payload()) out_.append({static_cast<const char*>(span.data()), span.size()});
    } else {
      out_.append(bytes.substr(0, step.take));
    }
    bytes.remove_prefix(step.take);
    if (step.take == 0) break;
  }
  if (request_body_.done()) out_done_ = true;
  return true;
}

void H2Upstream::keep_for_replay(std::string_view bytes) {
  if (!replayable_) return;
  if (replay_.size() + bytes.size() > replay_limit) {
    replayable_ = false;
    std::string().swap(replay_);
    return;
  }
  replay_.append(bytes);
}

std::optional<std::string_view> H2Upstream::refused_body() const noexcept {
  if (!refused_ || !replayable_ || !out_done_) return std::nullopt;
  return std::string_view(replay_);
}

void H2Upstream::finish_write(bool ok, std::size_t n, IoHandler handler) {
  if (!ok) {
    cancel_stream();
    net::post(executor_, [h = std::move(handler)]() mutable { std::move(h)(net::error::broken_pipe, 0); });
    return;
  }
  writer_.set(std::move(handler));
  writer_bytes_ = n;
  if (connection_ && stream_open_) {
    connection_->resume_body(stream_id_);
    connection_->flush_soon();
  }
  release_writer();
}

void H2Upstream::release_writer() {
  // Held while the connection comes up: if it never does, the write fails with nothing sent.
  if (!writer_ || !connection_ || !connection_->is_connected()) return;
  if (out_.pending() < out_high_water) post_completion(executor_, writer_, error_code{}, writer_bytes_);
}

ssize_t H2Upstream::size_body(std::size_t length, std::uint32_t* data_flags) {
  const auto n = out_.next(length).size();
  *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (n == out_.pending() && out_done_) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  return n == 0 ? ssize_t{NGHTTP2_ERR_DEFERRED} : static_cast<ssize_t>(n);
}

H2Upstream::Payload H2Upstream::take_payload(std::size_t length) {
  const auto bytes = out_.next(length);
  const auto upto = out_.frame(length);
  release_writer();
  return {bytes, upto};
}

// ---------------------------------------------------------------- the answer

void H2Upstream::on_field(std::string_view n, std::string_view v) {
  if (n == ":status") {
    unsigned status = 0;
    std::from_chars(v.data(), v.data() + v.size(), status);
    if (status < 200) return;  // an interim answer: its fields are dropped below
    final_status_ = true;
    const auto reason = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
    in_.append("HTTP/1.1 ").append(v).append(" ").append(reason.data(), reason.size()).append("\r\n");
    return;
  }
  if (!final_status_ || n.empty() || n.front() == ':') return;
  if (!head_sent_) {
    if (n == "content-length") content_length_ = true;
    if (not_forwarded(n)) return;
    in_.append(n).append(": ").append(v).append("\r\n");
  } else if (chunked_) {
    trailers_.append(n).append(": ").append(v).append("\r\n");
  }
}

void H2Upstream::on_headers_end(bool end_stream) {
  if (!final_status_) return;  // interim
  if (!head_sent_) return response_head_done(end_stream);
  if (end_stream && chunked_) {
    in_.append("0\r\n").append(trailers_).append("\r\n");
    trailers_.clear();
    in_done_ = true;
  }
}

void H2Upstream::on_data_end() {
  if (in_done_) return;
  if (chunked_) in_.append("0\r\n\r\n");
  in_done_ = true;
}

void H2Upstream::response_head_done(bool end_stream) {
  head_sent_ = true;
  replayable_ = false;  // answered: never sent again
  std::string().swap(replay_);
  if (end_stream) {
    // Headers only (gRPC's Trailers-Only among them): a complete answer without a body.
    if (!content_length_) in_.append("Content-Length: 0\r\n");
    in_.append("\r\n");
    in_done_ = true;
    return;
  }
  if (content_length_) {
    in_.append("\r\n");
  } else {
    in_.append("Transfer-Encoding: chunked\r\n\r\n");
    chunked_ = true;  // so trailers can follow the last chunk
  }
}

void H2Upstream::on_data(std::string_view bytes) {
  if (chunked_) {
    std::array<char, 16> size{};
    const auto end = std::to_chars(size.data(), size.data() + size.size(), bytes.size(), 16).ptr;
    in_.append(size.data(), end).append("\r\n").append(bytes).append("\r\n");
  } else {
    in_.append(bytes);
  }
  in_data_ += bytes.size();
}

bool H2Upstream::takes_data() const noexcept { return head_sent_ && !in_done_; }

void H2Upstream::on_closed(std::uint32_t error_code) {
  stream_open_ = false;
  if (error_code == NGHTTP2_NO_ERROR && in_done_) return;
  failed_ = true;
  refused_ = error_code == NGHTTP2_REFUSED_STREAM;
  // Refused (NGHTTP2_REFUSED_STREAM, also for streams above a GOAWAY's last id): the server did
  // nothing with it, and the session's retry rules decide whether it goes again, as for a reset
  // before any response byte. Reset by the backend, or cut before its end: the same error.
  fail_code_ = net::error::connection_reset;
}

// ---------------------------------------------------------------- the session's reads

void H2Upstream::read(net::mutable_buffer into, IoHandler handler) {
  read_into_ = into;
  reader_.set(std::move(handler));
  serve();
}

void H2Upstream::serve() {
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
  // Credited once the session has the bytes: a session that stops reading stops this stream.
  if (const auto credit = std::min(in_data_, n); credit != 0 && connection_) {
    in_data_ -= credit;
    connection_->consume(stream_id_, credit);
    connection_->flush_soon();
  }
  post_completion(executor_, reader_, error_code{}, n);
}

void H2Upstream::connection_failed(error_code ec) {
  stream_open_ = false;
  fail(ec);
}

void H2Upstream::fail(error_code ec) {
  failed_ = true;
  if (!fail_code_) fail_code_ = ec;
  serve();
  if (writer_) post_completion(executor_, writer_, ec, 0);
}

}  // namespace bgproxy::proxy
