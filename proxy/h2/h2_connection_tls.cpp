// Downstream HTTP/2 over TLS (ALPN h2), in its own translation unit like the TLS client session.
#include "proxy/h2/h2_connection_impl.hpp"
#include "proxy/net/tls_stream.hpp"

namespace bgproxy::proxy {

template class H2Connection<TlsStream>;

void start_h2_tls_connection(Worker& worker, TlsStream stream,
                             std::shared_ptr<const void> contexts, std::string client_ip,
                             std::array<std::uint8_t, 16> client_addr) {
  std::make_shared<H2Connection<TlsStream>>(worker, std::move(contexts), std::move(stream), std::move(client_ip),
                                            client_addr, true)
      ->start({});
}

}  // namespace bgproxy::proxy
