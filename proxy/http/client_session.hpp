#pragma once
/// Entry point of the per-connection HTTP/1.1 proxy session. The session itself
/// (client_session_impl.hpp) is a template on the client stream type so plain
/// TCP and TLS share one implementation; this header stays free of Beast.

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "proxy/net/types.hpp"

namespace bgproxy::proxy {

class Worker;
struct ListenerInfo;
class TlsListener;
struct H2Stream;

/// Starts serving an accepted client connection. Thread: the worker's.
/// The session owns itself (shared_from_this) and reports its close to `worker`.
void start_session(Worker& worker, Socket socket, const ListenerInfo& info);

/// start_session() for a TLS listener (client_session_tls.cpp): handshakes with the
/// listener's current certificates, then serves HTTP like a plain session.
void start_tls_session(Worker& worker, Socket socket, std::string client_ip, std::array<std::uint8_t, 16> client_addr,
                       const TlsListener& listener);

/// Serves one HTTP/2 request stream (client_session_h2.cpp): a session of its own over the
/// stream, as if it were an HTTP/1.1 connection carrying that one request.
/// @param https the client connection is TLS (X-Forwarded-Proto)
void start_h2_stream(Worker& worker, std::shared_ptr<H2Stream> stream, bool https, const std::string& client_ip,
                     std::array<std::uint8_t, 16> client_addr);

}  // namespace bgproxy::proxy
