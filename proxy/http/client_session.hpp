#pragma once
/// Entry point of the per-connection HTTP/1.1 proxy session. The session itself
/// (client_session_impl.hpp) is a template on the client stream type so plain
/// TCP and TLS share one implementation; this header stays free of Beast.

#include "proxy/net/types.hpp"

namespace bgproxy::proxy {

class Worker;
struct ListenerInfo;

/// Starts serving an accepted client connection. Thread: the worker's.
/// The session owns itself (shared_from_this) and reports its close to `worker`.
void start_session(Worker& worker, Socket socket, const ListenerInfo& info);

}  // namespace bgproxy::proxy
