// SPEC §4 "Bodies of any size stream through in both directions": large uploads and downloads
// arrive intact while the proxy's peak RSS stays bounded (it streams, it does not buffer).

#include <cstring>
#include <thread>

#include "harness.hpp"

namespace bgtest {
namespace {

class ProxyStream : public IntegrationTest {};

/// Peak-RSS bound for the proxy while streaming 100 MiB (sanitizer builds carry shadow memory).
constexpr long kMaxHwmKb = sanitized_build() ? 512 * 1024 : 64 * 1024;

/// Deterministic pseudo-random bytes (xorshift64*), generated piece by piece.
class Generator {
public:
  void fill(std::string& out, std::size_t n) {
    out.resize(n);
    std::size_t i = 0;
    while (i < n) {
      s_ ^= s_ >> 12;
      s_ ^= s_ << 25;
      s_ ^= s_ >> 27;
      std::uint64_t v = s_ * 0x2545F4914F6CDD1DULL;
      std::size_t k = std::min<std::size_t>(8, n - i);
      std::memcpy(out.data() + i, &v, k);
      i += k;
    }
  }

private:
  std::uint64_t s_ = 0x9E3779B97F4A7C15ULL;
};

std::size_t first_pattern_mismatch(const std::string& body) {
  for (std::size_t i = 0; i < body.size(); ++i)
    if (body[i] != static_cast<char>('a' + i % 26)) return i;
  return std::string::npos;
}

TEST_F(ProxyStream, Upload100MiBStreamedIntactWithBoundedProxyMemory) {
  Proxy& p = start_proxy({});
  const std::uint64_t total = 100ull << 20;
  Client c(p.port());
  c.send("POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: " + std::to_string(total) +
         "\r\n\r\n");
  Generator gen;
  Fnv1a fnv;
  std::string piece;
  auto deadline = Clock::now() + Ms(60000);
  for (std::uint64_t sent = 0; sent < total;) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(256 * 1024, total - sent));
    gen.fill(piece, n);
    fnv.update(piece);
    ASSERT_TRUE(c.try_send(piece, Ms(20000))) << "upload stalled at " << sent << " bytes: " << c.last_error();
    sent += n;
    ASSERT_LT(Clock::now(), deadline) << "upload too slow: " << sent << " bytes in 60 s";
  }
  auto r = c.read_response(Ms(20000));
  ASSERT_TRUE(r) << c.last_error();
  ASSERT_EQ(r->status, 200);
  Echo e = parse_echo(r->body);
  EXPECT_EQ(e.body_bytes, total);
  EXPECT_EQ(e.body_fnv1a, fnv.hex());
  auto hwm = proc_status_kb(p.pid(), "VmHWM");
  ASSERT_TRUE(hwm);
  EXPECT_LT(*hwm, kMaxHwmKb) << "proxy peak RSS " << *hwm / 1024 << " MiB: the upload was buffered";
}

TEST_F(ProxyStream, ChunkedUpload32MiBStreamedIntact) {
  Proxy& p = start_proxy({});
  const std::uint64_t total = 32ull << 20;
  Client c(p.port());
  c.send("POST /upload HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n");
  Generator gen;
  Fnv1a fnv;
  std::string piece;
  std::size_t sizes[] = {1, 4096, 65536, 100003, 1 << 20, 7};
  std::size_t k = 0;
  for (std::uint64_t sent = 0; sent < total;) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(sizes[k++ % 6], total - sent));
    gen.fill(piece, n);
    fnv.update(piece);
    char head[32];
    std::snprintf(head, sizeof head, "%zx\r\n", n);
    ASSERT_TRUE(c.try_send(std::string(head) + piece + "\r\n", Ms(20000)))
        << "upload stalled at " << sent << " bytes: " << c.last_error();
    sent += n;
  }
  c.send("0\r\n\r\n");
  auto r = c.read_response(Ms(20000));
  ASSERT_TRUE(r) << c.last_error();
  ASSERT_EQ(r->status, 200);
  Echo e = parse_echo(r->body);
  EXPECT_EQ(e.body_bytes, total);
  EXPECT_EQ(e.body_fnv1a, fnv.hex());
  auto hwm = proc_status_kb(p.pid(), "VmHWM");
  ASSERT_TRUE(hwm);
  EXPECT_LT(*hwm, kMaxHwmKb) << "proxy peak RSS " << *hwm / 1024 << " MiB";
}

TEST_F(ProxyStream, Download50MiBIntact) {
  Proxy& p = start_proxy({});
  const std::size_t total = 50u << 20;
  Client c(p.port());
  c.send(get_request("/?body_bytes=" + std::to_string(total)));
  auto r = c.read_response(Ms(30000));
  ASSERT_TRUE(r) << c.last_error();
  ASSERT_EQ(r->status, 200);
  ASSERT_EQ(r->body.size(), total);
  EXPECT_EQ(first_pattern_mismatch(r->body), std::string::npos);
  auto hwm = proc_status_kb(p.pid(), "VmHWM");
  ASSERT_TRUE(hwm);
  EXPECT_LT(*hwm, kMaxHwmKb) << "proxy peak RSS " << *hwm / 1024 << " MiB: the download was buffered";
  // Keep-alive survives a large body.
  c.send(get_request("/after"));
  r = c.read_response(Ms(3000));
  ASSERT_TRUE(r) << c.last_error();
  EXPECT_EQ(parse_echo(r->body).target, "/after");
}

TEST_F(ProxyStream, SlowReaderDownloadIsBackpressuredNotBuffered) {
  Proxy& p = start_proxy({});
  const std::size_t total = 64u << 20;
  Client c(p.port());
  c.send(get_request("/?body_bytes=" + std::to_string(total)));
  // Read nothing for a while: the proxy must stop reading from the backend instead of buffering.
  ASSERT_TRUE(c.read_at_least(1, Ms(3000))) << "no response byte";
  std::this_thread::sleep_for(Ms(1000));
  auto hwm = proc_status_kb(p.pid(), "VmHWM");
  ASSERT_TRUE(hwm);
  EXPECT_LT(*hwm, kMaxHwmKb) << "proxy peak RSS " << *hwm / 1024
                             << " MiB while the client was not reading";
  auto r = c.read_response(Ms(30000));
  ASSERT_TRUE(r) << c.last_error();
  ASSERT_EQ(r->body.size(), total);
  EXPECT_EQ(first_pattern_mismatch(r->body), std::string::npos);
}

}  // namespace
}  // namespace bgtest
