#pragma once
/// The stream type of TLS connections from clients (HTTP/1.1 sessions and HTTP/2 connections):
/// TlsSocket where it is built (Asio 1.81 with epoll, see tls_socket.hpp for why), Asio's
/// ssl::stream elsewhere. Connections to backends keep Asio's ssl::stream.

#include "proxy/net/tls_stream_fwd.hpp"

#ifdef BGPROXY_ASIO_181_EPOLL
#include "proxy/net/tls_socket.hpp"
#else
#include <boost/asio/ssl/stream.hpp>
#endif
