#pragma once
/// Whether this build's Asio is the release that the data plane's few uses of Asio internals were
/// written against: Debian 12's Boost 1.81 with the epoll reactor (socket.hpp's draining reads,
/// reactor_records.cpp). Any other build keeps Asio's own behaviour there.

#include <boost/asio/detail/config.hpp>
#include <boost/version.hpp>

#if BOOST_VERSION == 108100 && !defined(BOOST_ASIO_HAS_IOCP) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && \
    defined(BOOST_ASIO_HAS_EPOLL)
#define BGPROXY_ASIO_181_EPOLL 1
#endif
