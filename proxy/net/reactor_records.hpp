#pragma once
/// Hands back the memory of the records an io_context's reactor keeps for sockets that have closed.
///
/// Why: Asio 1.81's epoll reactor gives every open socket a record (168 bytes), and a closed
/// socket's record goes to a free list that is never shrunk: the reactor keeps one record per
/// socket it ever had open at once. After a crowd of 19,800 idle connections had gone, RSS stayed
/// 3.6 MiB above its baseline (bench/RESULTS.md, profile `idle`), nearly all of it these records.
/// Worker::give_back_memory frees them once a crowd has gone, with the rest of its spares.
///
/// Like socket.hpp's draining reads this reaches into Asio's internals, so it is compiled only
/// for the release it was written against (asio_release.hpp); elsewhere it frees nothing.

#include <cstddef>

#include <boost/asio/io_context.hpp>

namespace bgproxy::proxy {

/// Deletes the records of closed sockets that the reactor of `ctx` keeps for reuse; a socket
/// opened later gets a new one. Call it only from the thread that runs `ctx`: the reactor then
/// holds no events of its last epoll_wait that could still name a record.
/// @return how many records were deleted
std::size_t release_retired_reactor_records(boost::asio::io_context& ctx);

}  // namespace bgproxy::proxy
