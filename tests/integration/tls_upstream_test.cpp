// Issue 6 item 2: upstream TLS per color pool (`blue.tls`). The backend is
// `openssl s_server -www` (an HTTP/1.0 status page over TLS); certificates are made
// by the fixture with the openssl CLI, like TlsTest's.

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <mutex>
#include <regex>
#include <thread>

#include "harness.hpp"

namespace bgtest {
namespace {

namespace fs = std::filesystem;

/// run_command() execs without a PATH search.
std::string which(const std::string& name) {
  const char* env = std::getenv("PATH");
  const std::string dirs = env ? env : "/usr/bin:/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    auto colon = dirs.find(':', start);
    if (colon == std::string::npos) colon = dirs.size();
    const fs::path candidate = fs::path(dirs.substr(start, colon - start)) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = colon + 1;
  }
  return name;
}

/// A port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

/// A keep-alive HTTP/1.1 server over TLS (s_server -www closes after every answer): each
/// answer's body is "conn=C req=R", the connection's number and the request's on it.
class KeepAliveTlsServer {
public:
  KeepAliveTlsServer(const std::string& cert, const std::string& key) {
    std::signal(SIGPIPE, SIG_IGN);  // a peer gone mid-write is an error return, not the end of the test binary
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str());
    SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM);
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 16);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~KeepAliveTlsServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    acceptor_.join();
    {
      std::lock_guard lock(mu_);
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : connections_) t.join();
    ::close(listen_fd_);
    SSL_CTX_free(ctx_);
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int connections() const { return accepted_.load(); }

private:
  void accept_loop() {
    for (;;) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      const int n = ++accepted_;
      std::lock_guard lock(mu_);
      fds_.push_back(fd);
      connections_.emplace_back([this, fd, n] { serve(fd, n); });
    }
  }

  void serve(int fd, int conn) {
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      std::string in;
      for (int req = 1;; ++req) {
        std::size_t end;
        while ((end = in.find("\r\n\r\n")) == std::string::npos) {
          char buf[4096];
          const int n = SSL_read(ssl, buf, sizeof buf);
          if (n <= 0) goto done;
          in.append(buf, static_cast<std::size_t>(n));
        }
        in.erase(0, end + 4);
        const std::string body = "conn=" + std::to_string(conn) + " req=" + std::to_string(req);
        const std::string out = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        if (SSL_write(ssl, out.data(), static_cast<int>(out.size())) <= 0) break;
      }
    }
  done:
    SSL_shutdown(ssl);
    SSL_free(ssl);
    std::lock_guard lock(mu_);
    ::close(fd);
    fds_.erase(std::find(fds_.begin(), fds_.end(), fd));
  }

  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> connections_;
};

// Fixture: a CA with a leaf for a.test, and another CA that signed nothing the backend has.
class TlsUpstreamTest : public IntegrationTest {
protected:
  void SetUp() override {
    ca("ca");
    ca("other_ca");
    leaf("a", "a.test");
  }

  void TearDown() override {
    proxies_.clear();  // before the TLS backend, like the harness's own order
    server_.reset();
    IntegrationTest::TearDown();
  }

  std::string path(std::string_view name) const { return (dir_ / name).string(); }

  void openssl(std::vector<std::string> args) {
    args.insert(args.begin(), which("openssl"));
    auto r = run_command(args, dir_.path(), Ms(20000));
    ASSERT_EQ(r.exit_code, 0) << "openssl " << args[1] << " failed:\n" << r.err;
  }

  void ca(const std::string& name) {
    openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             path(name + ".key"), "-out", path(name + ".pem"), "-days", "30", "-subj", "/CN=bgproxy " + name});
  }

  void leaf(const std::string& name, const std::string& dns) {
    openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path(name + ".key"),
             "-out", path(name + ".csr"), "-subj", "/CN=" + dns});
    write_file(dir_ / (name + ".ext"), "subjectAltName=DNS:" + dns + "\n");
    openssl({"x509", "-req", "-in", path(name + ".csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
             "-CAcreateserial", "-out", path(name + ".pem"), "-days", "30", "-extfile", path(name + ".ext")});
  }

  /// `openssl s_server -www` with the a.test certificate; @return its "127.0.0.1:PORT".
  std::string start_tls_backend() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      const auto port = free_port();
      server_ = std::make_unique<Process>(
          std::vector<std::string>{which("openssl"), "s_server", "-www", "-accept", "127.0.0.1:" + std::to_string(port),
                                   "-cert", path("a.pem"), "-key", path("a.key")},
          dir_.path(), "s_server");
      const auto deadline = Clock::now() + Ms(5000);
      while (Clock::now() < deadline && server_->running()) {
        if (Client::try_connect(port, Ms(200))) return "127.0.0.1:" + std::to_string(port);
        std::this_thread::sleep_for(Ms(20));
      }
      server_.reset();
    }
    ADD_FAILURE() << "openssl s_server did not start";
    return "127.0.0.1:1";
  }

  Proxy& start_with(const std::string& backend, const std::string& tls) {
    ProxyConfig cfg;
    cfg.blue = {backend};
    cfg.blue_tls = tls;
    return start_proxy(cfg);
  }

  std::optional<double> connect_failures(Proxy& p, const std::string& backend) {
    return p.wait_metric("bgproxy_upstream_failures_total",
                         {{"service", "app"}, {"color", "blue"}, {"server", backend}, {"reason", "connect"}},
                         [](double x) { return x >= 1; });
  }

  std::unique_ptr<Process> server_;
};

std::string get_close() { return get_request("/", "Connection: close\r\n"); }

TEST_F(TlsUpstreamTest, RequestReachesTheBackendOverTls) {
  const auto backend = start_tls_backend();
  Proxy& p = start_with(backend, "{ ca: " + path("ca.pem") + ", sni: a.test }");
  std::string why;
  auto r = round_trip(p.port(), get_close(), Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("s_server"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("Ciphers supported in s_server binary"), std::string::npos) << r->body;
}

TEST_F(TlsUpstreamTest, UnknownCaIsRefusedWith502) {
  const auto backend = start_tls_backend();
  Proxy& p = start_with(backend, "{ enabled: true, verify: true, ca: " + path("other_ca.pem") + ", sni: a.test }");
  std::string why;
  auto r = round_trip(p.port(), get_close(), Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 502);
  auto v = connect_failures(p, backend);
  ASSERT_TRUE(v) << p.metrics();
  EXPECT_GE(*v, 1);
}

TEST_F(TlsUpstreamTest, HostNameMismatchIsRefusedWith502) {
  const auto backend = start_tls_backend();
  Proxy& p = start_with(backend, "{ ca: " + path("ca.pem") + ", sni: b.test }");
  std::string why;
  auto r = round_trip(p.port(), get_close(), Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 502);
  auto v = connect_failures(p, backend);
  ASSERT_TRUE(v) << p.metrics();
  EXPECT_GE(*v, 1);
}

TEST_F(TlsUpstreamTest, IpAddressWithoutSniIsCheckedAgainstTheCertificate) {
  // No `sni`: the server is an IP, so the certificate (for a.test) must carry that IP: it does not.
  const auto backend = start_tls_backend();
  Proxy& p = start_with(backend, "{ ca: " + path("ca.pem") + " }");
  std::string why;
  auto r = round_trip(p.port(), get_close(), Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 502);
}

TEST_F(TlsUpstreamTest, VerifyOffAcceptsAnyCertificate) {
  const auto backend = start_tls_backend();
  Proxy& p = start_with(backend, "{ verify: false, sni: b.test }");
  std::string why;
  auto r = round_trip(p.port(), get_close(), Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body.find("s_server"), std::string::npos) << r->body;
}

TEST_F(TlsUpstreamTest, TwoRequestsInARow) {
  // s_server -www answers HTTP/1.0 and closes, so the pooled connection is not kept:
  // both requests succeed, each over its own upstream TLS connection.
  const auto backend = start_tls_backend();
  Proxy& p = start_with(backend, "{ ca: " + path("ca.pem") + ", sni: a.test }");
  for (int i = 0; i < 2; ++i) {
    std::string why;
    auto r = round_trip(p.port(), get_request("/"), Ms(5000), &why);
    ASSERT_TRUE(r) << "request " << i << ": " << why;
    EXPECT_EQ(r->status, 200);
  }
  const auto v = metric_value(p.metrics(), "bgproxy_upstream_failures_total", {{"server", backend}});
  EXPECT_TRUE(!v || *v == 0) << p.metrics();
}

TEST_F(TlsUpstreamTest, PooledTlsConnectionIsReused) {
  KeepAliveTlsServer server(path("a.pem"), path("a.key"));
  Proxy& p = start_with(server.address(), "{ ca: " + path("ca.pem") + ", sni: a.test }");
  Client c(p.port());
  for (int i = 1; i <= 3; ++i) {
    c.send(get_request("/"));
    auto r = c.read_response();
    ASSERT_TRUE(r) << "request " << i << ": " << c.last_error();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "conn=1 req=" + std::to_string(i));
    // Idle past a sweep tick: the next take_idle peeks at the TLS connection first.
    std::this_thread::sleep_for(Ms(i == 1 ? 1200 : 50));
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(TlsUpstreamTest, ActiveHealthChecksUseTls) {
  const auto backend = start_tls_backend();
  ProxyConfig cfg;
  cfg.blue = {backend};
  cfg.blue_tls = "{ ca: " + path("ca.pem") + ", sni: a.test }";
  cfg.health_check = true;
  cfg.service_extra = "health_check: { path: /health, interval: 200ms, timeout: 150ms, rise: 1, fall: 2 }\n";
  Proxy& p = start_proxy(cfg);
  const std::regex up("server blue/" + std::regex_replace(backend, std::regex("[.]"), "\\.") + " up: ");
  ASSERT_TRUE(p.process().wait_for_line(up, Ms(5000))) << p.process().stderr_text();
  std::string why;
  auto r = round_trip(p.port(), get_close(), Ms(5000), &why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(p.process().stderr_text().find(" down: "), std::string::npos) << p.process().stderr_text();
}

TEST_F(TlsUpstreamTest, ActiveHealthChecksFailOnAnUntrustedCertificate) {
  const auto backend = start_tls_backend();
  ProxyConfig cfg;
  cfg.blue = {backend};
  cfg.blue_tls = "{ ca: " + path("other_ca.pem") + ", sni: a.test }";
  cfg.health_check = true;
  cfg.service_extra = "health_check: { path: /health, interval: 200ms, timeout: 150ms, rise: 1, fall: 2 }\n";
  Proxy& p = start_proxy(cfg);
  // Servers start unproven: with checks every 200 ms and rise 1, a passing check would have
  // brought it up well within this wait (as in ActiveHealthChecksUseTls).
  const std::regex up("server blue/" + std::regex_replace(backend, std::regex("[.]"), "\\.") + " up: ");
  EXPECT_FALSE(p.process().wait_for_line(up, Ms(1500))) << p.process().stderr_text();
}

TEST_F(TlsUpstreamTest, UnreadableCaStopsTheStart) {
  ProxyConfig cfg;
  cfg.blue = {"127.0.0.1:1"};
  cfg.blue_tls = "{ ca: " + path("missing.pem") + " }";
  const auto file = dir_ / "bad.yaml";
  write_file(file, render_config(cfg, dir_.path(), 7));
  Process proc({BGPROXY_BIN, "-c", file.string()}, dir_.path(), "bad_ca");
  const auto code = proc.wait_exit(Ms(5000));
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 1);
  EXPECT_NE(proc.stderr_text().find("missing.pem"), std::string::npos) << proc.stderr_text();
}

}  // namespace
}  // namespace bgtest
