#include "control/server/h2_health_transport.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/write.hpp>

#include "bgproxy/health/tracker.hpp"
#include "control/core/grpc_health.hpp"

namespace bgproxy::control {

namespace net = boost::asio;
using error_code = boost::system::error_code;

namespace {

nghttp2_nv header(std::string_view name, std::string_view value) {
  // nghttp2_submit_request copies names and values; they are never written through.
  return {const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(name.data())),
          const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

std::string_view view(const std::uint8_t* p, std::size_t n) { return {reinterpret_cast<const char*>(p), n}; }

/// grpc-timeout: at most 8 digits, so milliseconds up to 99999999, whole seconds (rounded up) beyond.
std::string grpc_timeout(config::Duration d) {
  const auto ms = d.count();
  if (ms <= 99'999'999) return std::to_string(ms) + "m";
  return std::to_string((ms + 999) / 1000) + "S";
}

}  // namespace

H2HealthTransport::H2HealthTransport(net::io_context& ioc, HealthConnection::Target target, std::string authority,
                                     const config::HealthCheck& hc)
    : ioc_(ioc), target_(std::move(target)), authority_(std::move(authority)), hc_(hc) {
  target_.h2 = true;
  if (hc_.protocol == config::HealthProtocol::grpc) request_body_ = grpc_health::request_body(hc_.service);
}

H2HealthTransport::~H2HealthTransport() { close(); }

void H2HealthTransport::check(Done done) {
  done_ = std::move(done);
  stream_id_ = 0;
  body_sent_ = 0;
  answered_ = false;
  status_ = 0;
  grpc_status_.reset();
  grpc_message_.clear();
  body_.clear();
  body_too_long_ = false;
  finished_.reset();
  if (link_) {
    reused_ = true;
    return submit();
  }
  reused_ = false;
  auto link = std::make_shared<Link>();
  link->conn = std::make_shared<HealthConnection>(ioc_, target_);
  link_ = link;
  link->conn->open([self = shared_from_this(), link](std::string error) {
    if (link != self->link_) return;  // closed meanwhile
    if (!error.empty()) return self->lost(error);
    if (!self->start_session(*link)) return self->lost("http2: cannot start a session");
    self->do_read(link);
    self->submit();
  });
}

void H2HealthTransport::close() {
  done_ = nullptr;
  drop_link();
}

void H2HealthTransport::drop_link() {
  if (!link_) return;
  const LinkPtr link = std::move(link_);
  link_.reset();
  stream_id_ = 0;
  // Here, not in ~Link: a handler may keep the Link longer than this transport lives, and the
  // session's callbacks point at this transport.
  nghttp2_session_del(link->session);
  link->session = nullptr;
  link->conn->close();
}

bool H2HealthTransport::start_session(Link& link) {
  nghttp2_session_callbacks* callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) return false;
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &H2HealthTransport::on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &H2HealthTransport::on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &H2HealthTransport::on_stream_close);
  const int rv = nghttp2_session_client_new(&link.session, callbacks, this);
  nghttp2_session_callbacks_del(callbacks);
  if (rv != 0) return false;
  // A health check wants no pushed streams.
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  return nghttp2_submit_settings(link.session, NGHTTP2_FLAG_NONE, settings, std::size(settings)) == 0;
}

void H2HealthTransport::submit() {
  const LinkPtr link = link_;
  const bool grpc = hc_.protocol == config::HealthProtocol::grpc;
  const std::string timeout = grpc_timeout(hc_.timeout);
  std::vector<nghttp2_nv> fields{header(":method", grpc ? "POST" : "GET"),
                                 header(":scheme", target_.tls ? "https" : "http"),
                                 header(":authority", authority_),
                                 header(":path", grpc ? grpc_health::check_path : std::string_view(hc_.path)),
                                 header("user-agent", "bgproxy-health-check")};
  nghttp2_data_provider body{};
  if (grpc) {
    fields.push_back(header("content-type", "application/grpc"));
    fields.push_back(header("te", "trailers"));
    fields.push_back(header("grpc-timeout", timeout));
    body.read_callback = &H2HealthTransport::read_body;
  }
  const std::int32_t id =
      nghttp2_submit_request(link->session, nullptr, fields.data(), fields.size(), grpc ? &body : nullptr, nullptr);
  // Out of stream ids, or a GOAWAY came: a kept connection that cannot carry the check.
  if (id < 0) return lost(std::string("http2: ") + nghttp2_strerror(id));
  stream_id_ = id;
  pump(link);
}

void H2HealthTransport::do_read(const LinkPtr& link) {
  link->conn->with_stream([&](auto& stream) {
    stream.async_read_some(net::buffer(link->in), [self = shared_from_this(), link](error_code ec, std::size_t n) {
      if (link != self->link_) return;
      if (ec) return self->lost("read: " + ec.message());
      const auto rv = nghttp2_session_mem_recv(link->session, link->in.data(), n);
      if (rv < 0) return self->lost(std::string("http2: ") + nghttp2_strerror(static_cast<int>(rv)));
      self->pump(link);
      if (link == self->link_) self->do_read(link);
    });
  });
}

void H2HealthTransport::pump(const LinkPtr& link) {
  flush(link);
  if (link != link_) return;
  if (finished_) {
    HealthAnswer answer = std::move(*finished_);
    finished_.reset();
    deliver(std::move(answer));
    if (link != link_) return;
  }
  // After a GOAWAY both ways nghttp2 is done with the connection: the next check opens another.
  if (!link->writing && nghttp2_session_want_read(link->session) == 0 && nghttp2_session_want_write(link->session) == 0)
    lost("http2: the connection was closed by GOAWAY");
}

void H2HealthTransport::flush(const LinkPtr& link) {
  if (link->writing) return;  // its completion flushes again
  link->out.clear();
  for (;;) {
    const std::uint8_t* data = nullptr;
    const auto n = nghttp2_session_mem_send(link->session, &data);
    if (n < 0) return lost(std::string("http2: ") + nghttp2_strerror(static_cast<int>(n)));
    if (n == 0) break;
    link->out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
  if (link->out.empty()) return;
  link->writing = true;
  link->conn->with_stream([&](auto& stream) {
    net::async_write(stream, net::buffer(link->out), [self = shared_from_this(), link](error_code ec, std::size_t) {
      if (link != self->link_) return;
      link->writing = false;
      if (ec) return self->lost("send: " + ec.message());
      self->pump(link);
    });
  });
}

void H2HealthTransport::lost(const std::string& error) {
  const bool kept = reused_ && !answered_;
  drop_link();
  deliver(HealthAnswer{false, 0, error, kept});
}

HealthAnswer H2HealthTransport::verdict(std::uint32_t error_code) const {
  if (body_too_long_)
    return {false, status_, "response body over " + std::to_string(max_health_body / 1024) + " KiB", false};
  if (error_code != NGHTTP2_NO_ERROR) {
    // REFUSED_STREAM before any answer is how a server going away turns down a kept connection's stream.
    return {false, status_, std::string("stream reset: ") + nghttp2_http2_strerror(error_code), reused_ && !answered_};
  }
  if (hc_.protocol == config::HealthProtocol::grpc) {
    const auto v = grpc_health::judge(grpc_health::Answer{status_, grpc_status_, grpc_message_, body_});
    return {v.ok, status_, v.reason, false};
  }
  if (health::Tracker::status_expected(hc_, status_)) return {true, status_, {}, false};
  return {false, status_, "status " + std::to_string(status_), false};
}

void H2HealthTransport::deliver(HealthAnswer answer) {
  if (!done_) return;
  auto done = std::move(done_);
  done_ = nullptr;
  done(std::move(answer));
}

int H2HealthTransport::on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                                 std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                                 void* self) {
  auto& t = *static_cast<H2HealthTransport*>(self);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != t.stream_id_) return 0;
  t.answered_ = true;
  const auto n = view(name, namelen);
  const auto v = view(value, valuelen);
  if (n == ":status") {
    unsigned status = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), status);
    // 1xx heads come before the answer; only the final status counts.
    if (ec == std::errc{} && end == v.data() + v.size() && status >= 200) t.status_ = status;
  } else if (n == "grpc-status") {
    t.grpc_status_ = std::string(v);  // Trailers-Only head or trailers: whichever comes
  } else if (n == "grpc-message") {
    t.grpc_message_ = std::string(v);
  }
  return 0;
}

int H2HealthTransport::on_data_chunk_recv(nghttp2_session* session, std::uint8_t, std::int32_t stream_id,
                                          const std::uint8_t* data, std::size_t len, void* self) {
  auto& t = *static_cast<H2HealthTransport*>(self);
  if (stream_id != t.stream_id_ || t.body_too_long_) return 0;
  if (t.body_.size() + len > max_health_body) {
    t.body_too_long_ = true;
    return nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL) == 0
               ? 0
               : NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  t.body_.append(view(data, len));
  return 0;
}

int H2HealthTransport::on_stream_close(nghttp2_session*, std::int32_t stream_id, std::uint32_t error_code, void* self) {
  auto& t = *static_cast<H2HealthTransport*>(self);
  if (stream_id != t.stream_id_) return 0;
  t.stream_id_ = 0;
  t.finished_ = t.verdict(error_code);
  return 0;
}

ssize_t H2HealthTransport::read_body(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                                     std::uint32_t* data_flags, nghttp2_data_source*, void* self) {
  auto& t = *static_cast<H2HealthTransport*>(self);
  const std::size_t n = std::min(length, t.request_body_.size() - t.body_sent_);
  std::memcpy(buf, t.request_body_.data() + t.body_sent_, n);
  t.body_sent_ += n;
  if (t.body_sent_ == t.request_body_.size()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

}  // namespace bgproxy::control
