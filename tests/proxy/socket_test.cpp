// Socket's reads (proxy/net/socket.hpp): a read that emptied the receive queue makes the next one
// wait for epoll instead of trying at once. These check that no byte and no end of stream is
// missed that way, on a real TCP connection over 127.0.0.1.
#include "proxy/net/socket.hpp"

#include <array>
#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

struct Pair {
  net::io_context ioc;
  Socket server{ioc};
  tcp::socket client{ioc};

  Pair() {
    net::basic_socket_acceptor<tcp, net::io_context::executor_type> acceptor(
        ioc.get_executor(), tcp::endpoint(net::ip::address_v4::loopback(), 0));
    client.connect(acceptor.local_endpoint());
    server = Socket(acceptor.accept());
  }

  struct Read {
    error_code ec;
    std::string bytes;
  };

  /// One async_read_some of at most `size` bytes, run to completion (or 5 s).
  std::optional<Read> read(std::size_t size) {
    std::string buf(size, '\0');
    std::optional<Read> result;
    server.async_read_some(net::buffer(buf), [&](error_code ec, std::size_t n) {
      result = Read{ec, buf.substr(0, n)};
    });
    ioc.restart();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!result && std::chrono::steady_clock::now() < until) ioc.run_one_for(std::chrono::milliseconds(50));
    return result;
  }

  void send(const std::string& s) { net::write(client, net::buffer(s)); }
};

TEST(SocketReads, BytesSentAfterAReadThatEmptiedTheQueueArrive) {
  Pair p;
  p.send("first");
  auto r = p.read(1024);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->bytes, "first");
  // The queue is empty now: this read waits for epoll, which must report the next bytes.
  std::optional<Pair::Read> second;
  std::string buf(1024, '\0');
  p.server.async_read_some(net::buffer(buf), [&](error_code ec, std::size_t n) {
    second = Pair::Read{ec, buf.substr(0, n)};
  });
  p.ioc.restart();
  p.ioc.poll();
  EXPECT_FALSE(second) << "nothing was sent yet";
  p.send("second");
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!second && std::chrono::steady_clock::now() < until) p.ioc.run_one_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->ec);
  EXPECT_EQ(second->bytes, "second");
}

TEST(SocketReads, AFinBehindTheLastBytesEndsTheNextReadAtOnce) {
  Pair p;
  p.send("last words");
  p.client.shutdown(tcp::socket::shutdown_send);
  auto r = p.read(1024);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->bytes, "last words");
  // A short read, but the FIN is still queued: the next read must see it without a new event.
  auto eof = p.read(1024);
  ASSERT_TRUE(eof) << "the end of stream was missed";
  EXPECT_EQ(eof->ec, net::error::eof);
}

TEST(SocketReads, AReadThatLeftBytesQueuedIsFollowedByTheRest) {
  Pair p;
  p.send("0123456789");
  auto a = p.read(4);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->bytes, "0123");
  auto b = p.read(1024);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->bytes, "456789");
}

TEST(SocketReads, APeerResetIsReported) {
  Pair p;
  p.send("x");
  auto a = p.read(1024);
  ASSERT_TRUE(a);
  p.client.set_option(net::socket_base::linger(true, 0));
  p.client.close();
  auto b = p.read(1024);
  ASSERT_TRUE(b) << "the reset was missed";
  EXPECT_TRUE(b->ec == net::error::connection_reset || b->ec == net::error::eof) << b->ec.message();
}

}  // namespace
}  // namespace bgproxy::proxy
