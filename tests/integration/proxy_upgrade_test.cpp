// SPEC §4 "Upgrade: websocket is tunnelled": a raw RFC 6455 handshake and hand-written masked
// frames through the proxy to the backend's echo server.

#include "harness.hpp"

namespace bgtest {
namespace {

class ProxyUpgrade : public IntegrationTest {};

std::string ws_frame(std::uint8_t opcode, const std::string& payload) {
  std::string f;
  f += static_cast<char>(0x80 | opcode);
  std::size_t n = payload.size();
  if (n < 126) {
    f += static_cast<char>(0x80 | n);
  } else if (n < 65536) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xff);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xff);
  }
  const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
  for (unsigned char k : key) f += static_cast<char>(k);
  for (std::size_t i = 0; i < n; ++i) f += static_cast<char>(payload[i] ^ key[i % 4]);
  return f;
}

struct WsFrame {
  bool fin = false;
  std::uint8_t opcode = 0;
  bool masked = false;
  std::string payload;
};

/// Reads one server frame from `c` (unmasked per RFC 6455).
std::optional<WsFrame> read_frame(Client& c, Ms timeout) {
  if (!c.read_at_least(2, timeout)) return std::nullopt;
  auto& b = c.buffered();
  WsFrame f;
  f.fin = (b[0] & 0x80) != 0;
  f.opcode = static_cast<std::uint8_t>(b[0] & 0x0f);
  f.masked = (b[1] & 0x80) != 0;
  std::uint64_t n = static_cast<std::uint8_t>(b[1]) & 0x7f;
  std::size_t hdr = 2;
  if (n == 126) {
    if (!c.read_at_least(4, timeout)) return std::nullopt;
    n = (static_cast<std::uint64_t>(static_cast<std::uint8_t>(b[2])) << 8) | static_cast<std::uint8_t>(b[3]);
    hdr = 4;
  } else if (n == 127) {
    if (!c.read_at_least(10, timeout)) return std::nullopt;
    n = 0;
    for (int i = 0; i < 8; ++i) n = (n << 8) | static_cast<std::uint8_t>(b[2 + i]);
    hdr = 10;
  }
  if (f.masked) hdr += 4;
  if (!c.read_at_least(hdr + n, timeout)) return std::nullopt;
  f.payload = b.substr(hdr, n);
  b.erase(0, hdr + n);
  return f;
}

/// Reads one whole message: a first frame and its continuation frames up to FIN (the echo server
/// may fragment what it sends back).
std::optional<WsFrame> read_message(Client& c, Ms timeout) {
  auto first = read_frame(c, timeout);
  if (!first) return first;
  while (!first->fin) {
    auto next = read_frame(c, timeout);
    if (!next) return next;
    EXPECT_EQ(next->opcode, 0x0) << "expected a continuation frame";
    EXPECT_FALSE(next->masked);
    first->payload += next->payload;
    first->fin = next->fin;
  }
  return first;
}

TEST_F(ProxyUpgrade, WebSocketEchoThroughProxy) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  c.send("GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  auto r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  ASSERT_EQ(r->status, 101) << r->raw_head;
  EXPECT_EQ(r->header("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  std::string upgrade = r->header("Upgrade").value_or("");
  for (auto& ch : upgrade) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  EXPECT_EQ(upgrade, "websocket");
  EXPECT_EQ(r->header("X-Backend"), "blue");

  c.send(ws_frame(0x1, "hello through the proxy"));
  auto f = read_message(c, Ms(3000));
  ASSERT_TRUE(f) << "no echo frame; buffered " << c.buffered().size() << " bytes";
  EXPECT_TRUE(f->fin);
  EXPECT_EQ(f->opcode, 0x1);
  EXPECT_FALSE(f->masked);
  EXPECT_EQ(f->payload, "hello through the proxy");

  std::string big = pattern_bytes(3, 70000);
  c.send(ws_frame(0x2, big));
  f = read_message(c, Ms(5000));
  ASSERT_TRUE(f) << "no echo of the 70000-byte frame";
  EXPECT_EQ(f->opcode, 0x2);
  EXPECT_EQ(f->payload.size(), big.size());
  EXPECT_TRUE(f->payload == big);

  // Close handshake: status 1000.
  c.send(ws_frame(0x8, std::string("\x03\xe8", 2)));
  f = read_frame(c, Ms(3000));
  ASSERT_TRUE(f) << "no close frame back";
  EXPECT_EQ(f->opcode, 0x8);
  EXPECT_NE(c.read_until_close(Ms(3000)), ReadEnd::Timeout) << "tunnel not closed after the close handshake";
}

TEST_F(ProxyUpgrade, WebSocketFramesSentWithHandshakeAndSplitAcrossWrites) {
  Proxy& p = start_proxy({});
  Client c(p.port());
  // The handshake, then a frame split into 1-byte writes.
  c.send("GET /ws HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
         "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  auto r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  ASSERT_EQ(r->status, 101) << r->raw_head;
  std::string frame = ws_frame(0x1, "split");
  for (char ch : frame) c.send(std::string(1, ch));
  auto f = read_message(c, Ms(3000));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->payload, "split");
}

}  // namespace
}  // namespace bgtest
