// Downstream HTTP/2 over plain TCP (h2c with prior knowledge).
#include "proxy/h2/h2_connection_impl.hpp"

namespace bgproxy::proxy {

template class H2Connection<Socket>;

void start_h2c_connection(Worker& worker, Socket socket, std::string_view received, std::string client_ip,
                          std::array<std::uint8_t, 16> client_addr) {
  std::make_shared<H2Connection<Socket>>(worker, nullptr, std::move(socket), std::move(client_ip), client_addr, false)
      ->start(received);
}

}  // namespace bgproxy::proxy
