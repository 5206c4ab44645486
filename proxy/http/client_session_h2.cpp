// The session of one HTTP/2 request stream: the same ClientSession over an H2StreamIo, in its own
// translation unit like the TLS one.
#include "proxy/h2/h2_stream_io.hpp"
#include "proxy/http/client_session.hpp"
#include "proxy/http/client_session_impl.hpp"

namespace bgproxy::proxy {

template class ClientSession<H2StreamIo>;

void start_h2_stream(Worker& worker, std::shared_ptr<H2Stream> stream, bool https, const std::string& client_ip,
                     std::array<std::uint8_t, 16> client_addr) {
  std::allocate_shared<ClientSession<H2StreamIo>>(SlabAllocator<ClientSession<H2StreamIo>>(worker.h2_sessions()), worker,
                                                 H2StreamIo(std::move(stream), https), client_ip, client_addr)
      ->start();
}

}  // namespace bgproxy::proxy
