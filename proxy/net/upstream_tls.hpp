#pragma once
/// Upstream TLS of the color pools with `tls` enabled: one OpenSSL client context
/// per pool, built at start (TLS 1.2+, the pool's CA or the system paths, an
/// optional client certificate), and per server the SNI and the name verified.
/// Thread: any (immutable after start).

#include <memory>
#include <string>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "bgproxy/routing/routing_table.hpp"

struct ssl_st;

namespace boost::asio::ssl {
class context;
}

namespace bgproxy::proxy {

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

}  // namespace bgproxy::proxy
