#include "control/server/health_connection.hpp"

#include <openssl/ssl.h>

#include <string_view>
#include <utility>

namespace bgproxy::control {

namespace ssl = boost::asio::ssl;
using error_code = boost::system::error_code;

HealthConnection::HealthConnection(boost::asio::io_context& ioc, const Target& target)
    : socket_(ioc), target_(target) {}

void HealthConnection::open(std::function<void(std::string error)> done) {
  if (target_.tls) {
    tls_.emplace(socket_, target_.tls->context());
    if (!target_.tls->prepare(tls_->native_handle())) return done("tls: cannot set the server name");
    static constexpr unsigned char alpn[] = {2, 'h', '2'};
    // SSL_set_alpn_protos returns 0 on success.
    if (target_.h2 && SSL_set_alpn_protos(tls_->native_handle(), alpn, sizeof alpn) != 0)
      return done("tls: cannot offer h2 by ALPN");
  }
  socket_.async_connect(target_.endpoint, [self = shared_from_this(), done = std::move(done)](error_code ec) mutable {
    if (ec) return done("connect: " + ec.message());
    error_code ignored;
    self->socket_.set_option(tcp::no_delay(true), ignored);
    if (!self->tls_) return done("");
    self->handshake(std::move(done));
  });
}

void HealthConnection::handshake(std::function<void(std::string error)> done) {
  tls_->async_handshake(ssl::stream_base::client, [self = shared_from_this(), done = std::move(done)](error_code ec) {
    if (ec) return done("tls handshake: " + ec.message());
    if (self->target_.h2) {
      // An HTTP/2 color's server must speak HTTP/2 here, as it must for the data plane's requests.
      const unsigned char* id = nullptr;
      unsigned len = 0;
      SSL_get0_alpn_selected(self->tls_->native_handle(), &id, &len);
      if (std::string_view(reinterpret_cast<const char*>(id), len) != "h2")
        return done("tls: the server did not choose h2 by ALPN");
    }
    done("");
  });
}

void HealthConnection::close() {
  error_code ignored;
  socket_.close(ignored);
}

}  // namespace bgproxy::control
