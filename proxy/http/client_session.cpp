#include "proxy/http/client_session.hpp"

#include "proxy/http/client_session_impl.hpp"

namespace bgproxy::proxy {

template class ClientSession<Socket>;

void start_session(Worker& worker, Socket socket, const ListenerInfo& info) {
  error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) {  // the peer is already gone
    worker.connection_closed();
    return;
  }
  auto address = remote.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
  }
  const auto v6 = address.is_v4() ? net::ip::make_address_v6(net::ip::v4_mapped, address.to_v4()) : address.to_v6();
  if (info.tls) return start_tls_session(worker, std::move(socket), address.to_string(), v6.to_bytes(), *info.tls);
  auto session = std::allocate_shared<ClientSession<Socket>>(SlabAllocator<ClientSession<Socket>>(worker.sessions()),
                                                             worker, std::move(socket), address.to_string(),
                                                             v6.to_bytes());
  if (info.h2c) session->accept_h2c(info.http1);
  session->start();
}

}  // namespace bgproxy::proxy
