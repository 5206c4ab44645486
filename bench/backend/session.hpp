#pragma once
// The connection-handling shell of the demo backend: one HTTP session per accepted socket, handed
// to a websocket echo session on `Upgrade: websocket`.

#include <string>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "knobs.hpp"

namespace bgproxy::demo {

using Executor = boost::asio::io_context::executor_type;
using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;

/// State shared by every worker. Outlives all sessions. Thread: any (all members are atomic or
/// immutable after startup).
struct Shared {
  std::string name;
  Knobs knobs;
  Stats stats;
};

/// Takes ownership of `socket` and serves it until the peer or a knob closes it.
/// Thread: the worker owning the socket's io_context.
void start_session(Socket socket, Shared& shared);

}  // namespace bgproxy::demo
