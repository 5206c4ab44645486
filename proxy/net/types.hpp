#pragma once
/// Socket types of the data plane: Asio sockets (Socket: socket.hpp) bound to the worker's
/// io_context executor (no type-erased executor, no beast::tcp_stream timers),
/// see STYLE.md §3 for the measured reasons.

#include <chrono>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "proxy/net/socket.hpp"

namespace bgproxy::proxy {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Executor = net::io_context::executor_type;
using Acceptor = net::basic_socket_acceptor<tcp, Executor>;
using Clock = std::chrono::steady_clock;

}  // namespace bgproxy::proxy
