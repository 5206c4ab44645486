// Issue 6 item 2: upstream TLS per color pool (`blue.tls`). The backend is
// `openssl s_server -www` (an HTTP/1.0 status page over TLS); certificates are made
// by the fixture with the openssl CLI, like TlsTest's.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
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
