// The TLS client session: the same ClientSession over TlsStream, kept in its own
// translation unit so the plain path does not compile (or link) the TLS machinery.
#include "proxy/http/client_session.hpp"
#include "proxy/http/client_session_impl.hpp"
#include "proxy/net/tls_stream.hpp"

namespace bgproxy::proxy {

template class ClientSession<TlsStream>;

void start_tls_session(Worker& worker, Socket socket, std::string client_ip,
                       std::array<std::uint8_t, 16> client_addr, const TlsListener& listener) {
  auto contexts = listener.current();
  TlsStream stream(std::move(socket), contexts->default_context());
  std::make_shared<ClientSession<TlsStream>>(worker, std::move(stream), std::move(client_ip), client_addr,
                                             std::move(contexts))
      ->start();
}

}  // namespace bgproxy::proxy
