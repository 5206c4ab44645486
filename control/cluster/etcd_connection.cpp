// Connecting to an endpoint (socket options, TLS) and one kept-alive HTTP/1.1 connection to it.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <type_traits>

#include <boost/asio/ip/address.hpp>

#include "control/cluster/etcd_client_impl.hpp"

namespace bgproxy::cluster::detail {

namespace {

/// TCP keepalive idle time of request connections: a pooled one whose peer vanished is found
/// out and closed while idle (watch streams use their ping interval).
constexpr Ms request_keepalive_idle{2000};

/// Nagle off (one small request per exchange), and TCP keepalive so a peer that vanished
/// without a word (host down, link cut) breaks an otherwise silent watch stream.
void tune_socket(tcp::socket& s, Ms keepalive_idle) {
  error_code ignored;
  s.set_option(tcp::no_delay(true), ignored);
  s.set_option(net::socket_base::keep_alive(true), ignored);
  const int idle = std::max<int>(1, static_cast<int>((keepalive_idle.count() + 999) / 1000));
  const int interval = 1;
  const int count = 3;
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

bool is_ip_address(const std::string& host) {
  error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

template <class Stream>
void connect_stream(Stream& stream, tcp::resolver& resolver, const config::EtcdEndpoint& ep, Clock::time_point deadline,
                    Ms keepalive_idle, std::function<void(std::optional<EtcdError>)> done) {
  resolver.async_resolve(ep.host, std::to_string(ep.port), [&stream, &ep, deadline, keepalive_idle, done = std::move(done)](
                                                                error_code ec, tcp::resolver::results_type results) mutable {
    if (ec) return done(make_error(EtcdError::Kind::unavailable, "resolve " + ep.text + ": " + ec.message()));
    auto& tcp_layer = beast::get_lowest_layer(stream);
    tcp_layer.expires_at(deadline);
    tcp_layer.async_connect(results, [&stream, &ep, keepalive_idle, done = std::move(done)](error_code ec, const tcp::endpoint&) mutable {
      if (ec) return done(make_error(EtcdError::Kind::unavailable, "connect " + ep.text + ": " + ec.message()));
      tune_socket(beast::get_lowest_layer(stream).socket(), keepalive_idle);
      if constexpr (std::is_same_v<Stream, TlsStream>) {
        // SNI for names only (RFC 6066); the certificate must name the host or carry the address.
        if (!is_ip_address(ep.host)) SSL_set_tlsext_host_name(stream.native_handle(), ep.host.c_str());
        stream.set_verify_callback(ssl::host_name_verification(ep.host));
        stream.async_handshake(ssl::stream_base::client, [&ep, done = std::move(done)](error_code ec) mutable {
          if (ec) return done(make_error(EtcdError::Kind::unavailable, "TLS handshake with " + ep.text + ": " + ec.message()));
          done(std::nullopt);
        });
      } else {
        done(std::nullopt);
      }
    });
  });
}

template void connect_stream<PlainStream>(PlainStream&, tcp::resolver&, const config::EtcdEndpoint&, Clock::time_point, Ms,
                                          std::function<void(std::optional<EtcdError>)>);
template void connect_stream<TlsStream>(TlsStream&, tcp::resolver&, const config::EtcdEndpoint&, Clock::time_point, Ms,
                                        std::function<void(std::optional<EtcdError>)>);

HttpStream make_http_stream(net::io_context& ioc, ssl::context* tls) {
  if (tls != nullptr) return HttpStream(std::in_place_type<TlsStream>, ioc, *tls);
  return HttpStream(std::in_place_type<PlainStream>, ioc);
}

EtcdResult<std::shared_ptr<ssl::context>> make_tls_context(const ClientOptions& o) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  error_code ec;
  ctx->set_verify_mode(ssl::verify_peer, ec);
  auto failed = [&](const std::string& what, const std::string& file) {
    return make_error(EtcdError::Kind::config, "cluster TLS: cannot load " + what + " " + file + ": " + ec.message());
  };
  if (!o.ca_file.empty()) {
    ctx->load_verify_file(o.ca_file, ec);
    if (ec) return failed("CA", o.ca_file);
  } else {
    ctx->set_default_verify_paths(ec);
    if (ec) return failed("the system CAs", "");
  }
  if (!o.certificate_file.empty()) {
    ctx->use_certificate_chain_file(o.certificate_file, ec);
    if (ec) return failed("certificate", o.certificate_file);
    ctx->use_private_key_file(o.private_key_file, ssl::context::pem, ec);
    if (ec) return failed("private key", o.private_key_file);
  }
  return ctx;
}

// ---------------------------------------------------------------------------------------------
// HttpConn

tcp::socket& HttpConn::socket() {
  return std::visit([](auto& s) -> tcp::socket& { return beast::get_lowest_layer(s).socket(); }, stream_);
}

void HttpConn::connect(const config::EtcdEndpoint& ep, Clock::time_point deadline,
                       std::function<void(std::optional<EtcdError>)> done) {
  std::visit(
      [&](auto& s) {
        connect_stream(s, resolver_, ep, deadline, request_keepalive_idle,
                       [self = shared_from_this(), done = std::move(done)](std::optional<EtcdError> e) { done(std::move(e)); });
      },
      stream_);
}

void HttpConn::exchange(Clock::time_point deadline, std::function<void(error_code ec, bool answered)> done) {
  done_ = std::move(done);
  parser_.emplace();
  parser_->body_limit(max_message_bytes);
  std::visit(
      [&](auto& s) {
        beast::get_lowest_layer(s).expires_at(deadline);
        http::async_write(s, request_, [self = shared_from_this(), &s](error_code ec, std::size_t) {
          if (ec) return self->complete(ec);
          http::async_read(s, self->buffer_, *self->parser_,
                           [self](error_code ec, std::size_t) { self->complete(ec); });
        });
      },
      stream_);
}

void HttpConn::close() {
  std::visit([](auto& s) { beast::get_lowest_layer(s).close(); }, stream_);
}

void HttpConn::complete(error_code ec) {
  const bool answered = parser_->got_some() || buffer_.size() > 0;
  if (!ec) std::visit([](auto& s) { beast::get_lowest_layer(s).expires_never(); }, stream_);
  auto done = std::move(done_);
  done(ec, answered);
}

}  // namespace bgproxy::cluster::detail
