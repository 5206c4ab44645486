// Downstream HTTP/2 over TLS (ALPN h2), in its own translation unit like the TLS client session.
#include <boost/asio/ssl/stream.hpp>

#include "proxy/h2/h2_connection_impl.hpp"

namespace bgproxy::proxy {

template class H2Connection<boost::asio::ssl::stream<Socket>>;

void start_h2_tls_connection(Worker& worker, boost::asio::ssl::stream<Socket> stream,
                             std::shared_ptr<const void> contexts, std::string client_ip,
                             std::array<std::uint8_t, 16> client_addr) {
  std::make_shared<H2Connection<boost::asio::ssl::stream<Socket>>>(worker, std::move(contexts), std::move(stream),
                                                                   std::move(client_ip), client_addr, true)
      ->start({});
}

}  // namespace bgproxy::proxy
