// release_retired_reactor_records (proxy/net/reactor_records.hpp): the records of closed sockets
// are deleted, those of open sockets are not, and sockets opened afterwards work.
#include "proxy/net/reactor_records.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "proxy/net/asio_release.hpp"

namespace bgproxy::proxy {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

/// Opens `n` sockets (each gets a reactor record) and closes them (the records retire).
void open_and_close(net::io_context& ioc, std::size_t n) {
  std::vector<tcp::socket> sockets;
  for (std::size_t i = 0; i < n; ++i) sockets.emplace_back(ioc).open(tcp::v4());
  for (auto& s : sockets) s.close();
}

/// One round trip over a new 127.0.0.1 connection, read asynchronously through the reactor.
std::string echo_once(net::io_context& ioc) {
  tcp::acceptor acceptor(ioc, tcp::endpoint(net::ip::address_v4::loopback(), 0));
  tcp::socket client(ioc);
  client.connect(acceptor.local_endpoint());
  tcp::socket server = acceptor.accept();
  std::array<char, 4> got{};
  net::async_read(server, net::buffer(got), [](boost::system::error_code, std::size_t) {});
  net::write(client, net::buffer(std::string_view("ping")));
  ioc.restart();
  ioc.run_for(std::chrono::seconds(5));
  return {got.data(), got.size()};
}

TEST(ReactorRecords, ClosedSocketsRecordsAreDeletedOpenOnesKept) {
#ifndef BGPROXY_ASIO_181_EPOLL
  GTEST_SKIP() << "built against another Asio: nothing is released";
#endif
  net::io_context ioc(1);
  tcp::socket still_open(ioc);
  still_open.open(tcp::v4());
  open_and_close(ioc, 300);
  EXPECT_EQ(release_retired_reactor_records(ioc), 300U);
  EXPECT_EQ(release_retired_reactor_records(ioc), 0U) << "the free list is empty after a release";
  EXPECT_TRUE(still_open.is_open());
  still_open.close();
  EXPECT_EQ(release_retired_reactor_records(ioc), 1U);
}

TEST(ReactorRecords, SocketsOpenedAfterAReleaseWork) {
  net::io_context ioc(1);
  open_and_close(ioc, 50);
  release_retired_reactor_records(ioc);
  EXPECT_EQ(echo_once(ioc), "ping");
  open_and_close(ioc, 10);
  release_retired_reactor_records(ioc);
  EXPECT_EQ(echo_once(ioc), "ping");
}

}  // namespace
}  // namespace bgproxy::proxy
