#pragma once
/// Upstream TLS of the color pools with `tls` enabled: one OpenSSL client context
/// per pool, built at start or reload (TLS 1.2+, the pool's CA or the system paths,
/// an optional client certificate), and per server the SNI and the name verified.
/// Shared by the data plane's upstream connections and the control plane's health
/// checks, so both speak to a backend the same way (library bg_tls).
/// Thread: any (immutable once built).

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"

struct ssl_st;

namespace boost::asio::ssl {
class context;
}

namespace bgproxy::tls {

/// A certificate, key or CA file that cannot be used; the message names the file and why
/// ("tls: cannot load FILE: REASON").
class TlsLoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class UpstreamTlsServer {
 public:
  UpstreamTlsServer(std::shared_ptr<boost::asio::ssl::context> context, const config::UpstreamTls& tls,
                    const config::Endpoint& server);

  boost::asio::ssl::context& context() const noexcept { return *context_; }
  /// Sets SNI and the verified name on a new client connection.
  /// @return false when OpenSSL refused them (out of memory)
  bool prepare(ssl_st* ssl) const noexcept;

 private:
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::string sni_;          ///< empty: no SNI (an IP address without `sni`)
  std::string check_name_;   ///< the name (or IP) the certificate must carry; empty: no check
  bool check_ip_ = false;
  bool verify_ = true;
};

using UpstreamTlsServers = std::vector<std::shared_ptr<const UpstreamTlsServer>>;

/// @return by server id: the TLS settings of its pool, or null for a plain pool
/// @throws TlsLoadError naming the file and the reason (unreadable CA, certificate or key)
UpstreamTlsServers load_upstream_tls(const config::Config& cfg, const std::vector<routing::ServerInfo>& servers);

}  // namespace bgproxy::tls
