// TlsSocket (proxy/net/tls_socket.hpp), the client-facing TLS stream, against Asio's ssl::stream as
// the peer, over a real TCP connection on 127.0.0.1: bytes arrive whole and in order both ways, a
// write waits for a peer that stops reading, close_notify leaves even when the socket had drained,
// and the ends of a stream read as Asio's own stream reports them.
#include "proxy/net/tls_stream.hpp"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

/// A P-256 key and a self-signed certificate for it, installed in `ctx`.
void install_self_signed(ssl::context& ctx) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("tls-socket.test"), -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  X509_sign(cert, key, EVP_sha256());
  SSL_CTX_use_certificate(ctx.native_handle(), cert);
  SSL_CTX_use_PrivateKey(ctx.native_handle(), key);
  X509_free(cert);
  EVP_PKEY_free(key);
}

/// Text of `n` bytes that shows where a byte went missing or came out of order.
std::string pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
  return s;
}

class TlsSocketTest : public ::testing::Test {
 protected:
  TlsSocketTest() {
    install_self_signed(server_ctx_);
    net::basic_socket_acceptor<tcp, net::io_context::executor_type> acceptor(
        ioc_.get_executor(), tcp::endpoint(net::ip::address_v4::loopback(), 0));
    client_.emplace(ioc_, client_ctx_);
    client_->next_layer().connect(acceptor.local_endpoint());
    server_.emplace(Socket(acceptor.accept()), server_ctx_);
  }

  /// Runs the loop until `done` holds (or 10 s pass: the test then fails on what is missing).
  template <class Done>
  void run_until(Done done) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < give_up) {
      ioc_.restart();
      ioc_.run_one_for(std::chrono::milliseconds(100));
    }
  }

  void handshake() {
    std::optional<error_code> server_done, client_done;
    server_->async_handshake(TlsStream::server, [&](error_code ec) { server_done = ec; });
    client_->async_handshake(ssl::stream_base::client, [&](error_code ec) { client_done = ec; });
    run_until([&] { return server_done && client_done; });
    ASSERT_TRUE(server_done && client_done) << "the handshake did not finish";
    ASSERT_FALSE(*server_done) << server_done->message();
    ASSERT_FALSE(*client_done) << client_done->message();
  }

  /// Reads from the server side until `n` bytes came or a read failed.
  std::pair<std::string, error_code> server_reads(std::size_t n) {
    std::string got;
    error_code failed;
    bool done = false;
    auto buf = std::make_shared<std::array<char, 4096>>();
    std::function<void()> next = [&] {
      server_->async_read_some(net::buffer(*buf), [&, buf](error_code ec, std::size_t k) {
        got.append(buf->data(), k);
        if (ec || got.size() >= n) {
          failed = ec;
          done = true;
          return;
        }
        next();
      });
    };
    next();
    run_until([&] { return done; });
    return {got, failed};
  }

  net::io_context ioc_{1};
  ssl::context server_ctx_{ssl::context::tls_server};
  ssl::context client_ctx_{ssl::context::tls_client};
  std::optional<ssl::stream<tcp::socket>> client_;
  std::optional<TlsStream> server_;
};

TEST_F(TlsSocketTest, BytesCrossWholeAndInOrderBothWaysAfterAMove) {
  handshake();
  // An HTTP/2 connection takes the stream over from the session that did the handshake.
  TlsStream moved(std::move(*server_));
  server_.reset();
  server_.emplace(std::move(moved));

  const std::string up = pattern(100'000);  // several records, several reads
  bool client_wrote = false;
  net::async_write(*client_, net::buffer(up), [&](error_code ec, std::size_t) { client_wrote = !ec; });
  auto [got, ec] = server_reads(up.size());
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(got == up) << "the server read " << got.size() << " bytes, not the ones sent";
  run_until([&] { return client_wrote; });

  // Down: a gather write of small and large pieces, as the sessions write a head and a body.
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n";
  const std::string body = pattern(70'000);
  std::array<net::const_buffer, 3> pieces{net::buffer(head), net::buffer(body.data(), 10),
                                          net::buffer(body.data() + 10, body.size() - 10)};
  std::optional<error_code> wrote;
  net::async_write(*server_, pieces, [&](error_code e, std::size_t) { wrote = e; });
  std::string down(head.size() + body.size(), '\0');
  std::optional<error_code> read;
  net::async_read(*client_, net::buffer(down), [&](error_code e, std::size_t) { read = e; });
  run_until([&] { return wrote && read; });
  ASSERT_TRUE(wrote && read);
  EXPECT_FALSE(*wrote) << wrote->message();
  EXPECT_FALSE(*read) << read->message();
  EXPECT_TRUE(down == head + body) << "the client did not read what the server wrote";
}

TEST_F(TlsSocketTest, AWriteWaitsForAPeerThatStopsReadingAndLosesNothing) {
  handshake();
  const std::string big = pattern(16 << 20);  // far more than both sockets' buffers hold
  std::optional<error_code> wrote;
  net::async_write(*server_, net::buffer(big), [&](error_code e, std::size_t) { wrote = e; });
  for (int i = 0; i < 20; ++i) {  // the loop has nothing left to do but wait for the peer
    ioc_.restart();
    ioc_.poll();
  }
  EXPECT_FALSE(wrote) << "the write completed while its bytes could not have left";

  std::string down(big.size(), '\0');
  std::optional<error_code> read;
  net::async_read(*client_, net::buffer(down), [&](error_code e, std::size_t) { read = e; });
  run_until([&] { return wrote && read; });
  ASSERT_TRUE(wrote && read);
  EXPECT_FALSE(*wrote) << wrote->message();
  EXPECT_TRUE(down == big) << "bytes were lost or reordered behind the full socket";
}

TEST_F(TlsSocketTest, ShutdownSendsCloseNotifyAfterTheSocketDrained) {
  handshake();
  const std::string request = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  net::async_write(*client_, net::buffer(request), [](error_code, std::size_t) {});
  auto [got, ec] = server_reads(request.size());  // the read that emptied the socket
  ASSERT_EQ(got, request);

  std::optional<error_code> server_shut;
  server_->async_shutdown([&](error_code e) { server_shut = e; });
  // The client only reads: it sends nothing until it has the server's close_notify.
  std::array<char, 64> buf{};
  std::optional<error_code> client_read;
  client_->async_read_some(net::buffer(buf), [&](error_code e, std::size_t) { client_read = e; });
  run_until([&] { return client_read.has_value(); });
  ASSERT_TRUE(client_read) << "close_notify never came";
  EXPECT_EQ(*client_read, net::error::eof) << client_read->message();

  std::optional<error_code> client_shut;
  client_->async_shutdown([&](error_code e) { client_shut = e; });
  run_until([&] { return server_shut && client_shut; });
  ASSERT_TRUE(server_shut) << "the server's shutdown did not see the client's close_notify";
  EXPECT_FALSE(*server_shut) << server_shut->message();
}

TEST_F(TlsSocketTest, CloseNotifyReadsAsEof) {
  handshake();
  std::optional<error_code> client_shut;
  client_->async_shutdown([&](error_code e) { client_shut = e; });
  auto [got, ec] = server_reads(1);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(ec, net::error::eof) << ec.message();
}

TEST_F(TlsSocketTest, APeerClosingWithoutCloseNotifyIsATruncatedStream) {
  handshake();
  // A FIN and no close_notify (a close() would reset: the client left the tickets unread).
  client_->next_layer().shutdown(tcp::socket::shutdown_send);
  auto [got, ec] = server_reads(1);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(ec, ssl::error::stream_truncated) << ec.message();
}

}  // namespace
}  // namespace bgproxy::proxy
