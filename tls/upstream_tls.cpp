#include "bgproxy/tls/upstream_tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <map>
#include <utility>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>

namespace bgproxy::tls {
namespace {

namespace ssl = boost::asio::ssl;

[[noreturn]] void load_failed(const std::string& path, const char* fallback) {
  const unsigned long e = ERR_peek_last_error();
  const char* r = e != 0 ? ERR_reason_error_string(e) : nullptr;
  ERR_clear_error();
  throw TlsLoadError("tls: cannot load " + path + ": " + (r != nullptr ? r : fallback));
}

bool is_ip(const std::string& host) {
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address(host, ec);
  return !ec;
}

std::shared_ptr<ssl::context> make_context(const config::UpstreamTls& t) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* h = ctx->native_handle();
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  SSL_CTX_set_options(h, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (t.verify) {
    if (!t.ca.empty()) {
      if (SSL_CTX_load_verify_locations(h, t.ca.c_str(), nullptr) != 1) load_failed(t.ca, "not a PEM CA bundle");
    } else if (SSL_CTX_set_default_verify_paths(h) != 1) {
      load_failed("the system CA paths", "cannot be read");
    }
    SSL_CTX_set_verify(h, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(h, SSL_VERIFY_NONE, nullptr);
  }
  if (!t.client_certificate.empty()) {
    if (SSL_CTX_use_certificate_chain_file(h, t.client_certificate.c_str()) != 1)
      load_failed(t.client_certificate, "not a PEM certificate");
    if (SSL_CTX_use_PrivateKey_file(h, t.client_key.c_str(), SSL_FILETYPE_PEM) != 1)
      load_failed(t.client_key, "not a PEM private key");
    if (SSL_CTX_check_private_key(h) != 1) load_failed(t.client_key, "does not match the client certificate");
  }
  return ctx;
}

}  // namespace

UpstreamTlsServer::UpstreamTlsServer(std::shared_ptr<ssl::context> context, const config::UpstreamTls& tls,
                                     const config::Endpoint& server)
    : context_(std::move(context)), verify_(tls.verify) {
  if (!tls.sni.empty()) {
    sni_ = tls.sni;
    check_name_ = tls.sni;
  } else if (!is_ip(server.host)) {
    sni_ = server.host;
    check_name_ = server.host;
  } else {
    check_name_ = server.host;
    check_ip_ = true;
  }
}

bool UpstreamTlsServer::prepare(SSL* ssl) const noexcept {
  if (!sni_.empty() && SSL_set_tlsext_host_name(ssl, sni_.c_str()) != 1) return false;
  if (!verify_) return true;
  if (check_ip_) return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), check_name_.c_str()) == 1;
  return SSL_set1_host(ssl, check_name_.c_str()) == 1;
}

UpstreamTlsServers load_upstream_tls(const config::Config& cfg, const std::vector<routing::ServerInfo>& servers) {
  UpstreamTlsServers out(servers.size());
  std::map<std::pair<std::uint32_t, routing::Color>, std::shared_ptr<ssl::context>> contexts;
  for (const auto& s : servers) {
    const auto& svc = cfg.services[s.service];
    const auto& tls = (s.color == routing::Color::blue ? svc.blue : svc.green).tls;
    if (!tls.enabled) continue;
    auto& ctx = contexts[{s.service, s.color}];
    if (!ctx) ctx = make_context(tls);
    out[s.id] = std::make_shared<const UpstreamTlsServer>(ctx, tls, s.endpoint);
  }
  return out;
}

}  // namespace bgproxy::tls
