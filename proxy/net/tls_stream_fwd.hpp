#pragma once
/// TlsStream declared, not defined (tls_stream.hpp defines it): for headers that only pass one on.

#include "proxy/net/asio_release.hpp"
#include "proxy/net/socket.hpp"

#ifdef BGPROXY_ASIO_181_EPOLL
namespace bgproxy::proxy {
class TlsSocket;
using TlsStream = TlsSocket;
}  // namespace bgproxy::proxy
#else
namespace boost::asio::ssl {
template <typename Stream>
class stream;
}
namespace bgproxy::proxy {
using TlsStream = boost::asio::ssl::stream<Socket>;
}  // namespace bgproxy::proxy
#endif
