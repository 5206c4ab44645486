#pragma once
/// Entry points of downstream HTTP/2 (SPEC §13): a client connection that opened with the
/// HTTP/2 preface (h2c with prior knowledge) or chose h2 by ALPN. This header stays free of
/// nghttp2 and Beast; the connection itself is h2_connection_impl.hpp.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/net/tls_stream_fwd.hpp"
#include "proxy/net/types.hpp"

namespace bgproxy::proxy {

class Worker;

/// The 24 bytes every HTTP/2 client connection starts with (RFC 9113 §3.4).
inline constexpr std::string_view h2_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves a plain connection as HTTP/2 from here on. Thread: the worker's.
/// @param received the bytes already read from it, the preface first
/// The connection counts as one of the worker's (connection_closed() when it ends).
void start_h2c_connection(Worker& worker, Socket socket, std::string_view received, std::string client_ip,
                          std::array<std::uint8_t, 16> client_addr);

/// Serves a TLS connection that chose h2 by ALPN (h2_connection_tls.cpp), its handshake done.
/// @param contexts what the SSL object was made from (kept alive as long as it)
void start_h2_tls_connection(Worker& worker, TlsStream stream,
                             std::shared_ptr<const void> contexts, std::string client_ip,
                             std::array<std::uint8_t, 16> client_addr);

}  // namespace bgproxy::proxy
