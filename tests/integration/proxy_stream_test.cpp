// SPEC §4 "Bodies of any size stream through in both directions": large uploads and downloads
// arrive intact while the proxy's peak RSS stays bounded (it streams, it does not buffer).

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
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

/// A backend that answers 413 as soon as it has a request head, then closes without reading
/// the body (as many application servers do to an upload they refuse) — or, with `hold`, keeps
/// the connection open that long without reading.
class EarlyAnswerBackend {
public:
  explicit EarlyAnswerBackend(Ms hold = Ms(0)) : hold_(hold) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0)
      throw std::runtime_error("early-answer backend: cannot listen");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~EarlyAnswerBackend() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int answered() const { return answered_; }

private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      std::string head;
      char buf[4096];
      const auto deadline = Clock::now() + Ms(5000);
      while (head.find("\r\n\r\n") == std::string::npos && Clock::now() < deadline) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 50) <= 0) continue;
        const auto n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        head.append(buf, static_cast<std::size_t>(n));
      }
      static constexpr std::string_view answer =
          "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large";
      if (::send(c, answer.data(), answer.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(answer.size())) ++answered_;
      for (auto until = Clock::now() + hold_; Clock::now() < until && !stop_;) std::this_thread::sleep_for(Ms(10));
      ::close(c);  // with the body unread: the proxy's next writes meet a reset
    }
  }

  int fd_ = -1;
  std::uint16_t port_ = 0;
  Ms hold_;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
  std::thread thread_;
};

TEST_F(ProxyStream, EarlyAnswerToAnUploadIsRelayedNotA502) {
  EarlyAnswerBackend backend;
  ProxyConfig cfg;
  cfg.blue = {backend.address()};
  Proxy& p = start_proxy(cfg);
  Client c(p.port());
  const std::uint64_t total = 64ull << 20;
  c.send("POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n");
  const std::string piece(256 * 1024, 'x');
  // The proxy stops taking the body once the backend has answered; sending may fail then.
  for (std::uint64_t sent = 0; sent < total && c.try_send(piece, Ms(3000)); sent += piece.size()) {
  }
  auto r = c.read_response(Ms(5000));
  ASSERT_TRUE(r) << "no answer: " << c.last_error();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->body, "too large");
  EXPECT_EQ(r->header("Connection").value_or(""), "close") << "the unread body makes the connection unusable";
  EXPECT_EQ(backend.answered(), 1);
  auto m = p.metrics();
  EXPECT_EQ(metric_value(m, "bgproxy_requests_total", {{"code", "4xx"}}), 1);
  EXPECT_EQ(metric_value(m, "bgproxy_requests_total", {{"code", "5xx"}}), 0);
}

TEST_F(ProxyStream, EarlyAnswerFromABackendThatStopsReadingComesAtOnce) {
  // The backend answers and then neither reads nor closes: the body stalls in the socket
  // buffers. The answer must reach the client now, not a 504 after upstream_response.
  EarlyAnswerBackend backend(Ms(8000));
  ProxyConfig cfg;
  cfg.blue = {backend.address()};
  cfg.upstream_response = "5s";
  Proxy& p = start_proxy(cfg);
  Client c(p.port());
  const std::uint64_t total = 64ull << 20;
  const auto t0 = Clock::now();
  c.send("POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n");
  const std::string piece(256 * 1024, 'x');
  for (std::uint64_t sent = 0; sent < total && c.try_send(piece, Ms(1000)); sent += piece.size()) {
  }
  auto r = c.read_response(Ms(5000));
  const auto took = std::chrono::duration_cast<Ms>(Clock::now() - t0).count();
  ASSERT_TRUE(r) << "no answer: " << c.last_error();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(r->body, "too large");
  EXPECT_EQ(r->header("Connection").value_or(""), "close");
  EXPECT_LT(took, 4000) << "the answer waited for the stalled body";
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
