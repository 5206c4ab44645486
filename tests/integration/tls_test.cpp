// Issue 6 / SPEC §3 `listen[].tls`: TLS termination with SNI (exact, wildcard, default),
// TLS 1.2/1.3 only, proxied requests over TLS (X-Forwarded-Proto: https, keep-alive),
// plaintext to a TLS port, handshake churn without fd or memory growth, certificate reload
// (a new certificate for new handshakes, open connections untouched, an expired one refused),
// and session resumption. Certificates are made by the fixture with the openssl CLI.

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "harness.hpp"

namespace bgtest {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// A blocking TLS client over OpenSSL (socket timeouts bound every call).

struct TlsOptions {
  std::string sni;                 ///< empty: no SNI extension
  int max_version = 0;             ///< e.g. TLS1_2_VERSION; 0 = library maximum
  SSL_SESSION* session = nullptr;  ///< offered for resumption
  /// ALPN offer in wire format; this client speaks HTTP/1.1, so by default it offers only that.
  std::string alpn = std::string("\x08http/1.1", 9);
};

class TlsClient {
public:
  /// @return nullptr (with `*err`) when the TCP connect or the handshake fails
  static std::unique_ptr<TlsClient> connect(SSL_CTX* ctx, std::uint16_t port, const TlsOptions& o,
                                            std::string* err = nullptr) {
    std::unique_ptr<TlsClient> c(new TlsClient());
    c->fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(c->fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(c->fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c->fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      if (err) *err = std::string("connect: ") + std::strerror(errno);
      return nullptr;
    }
    c->ssl_ = SSL_new(ctx);
    SSL_set_fd(c->ssl_, c->fd_);
    if (!o.sni.empty()) SSL_set_tlsext_host_name(c->ssl_, o.sni.c_str());
    if (o.max_version) SSL_set_max_proto_version(c->ssl_, o.max_version);
    if (o.session) SSL_set_session(c->ssl_, o.session);
    SSL_set_alpn_protos(c->ssl_, reinterpret_cast<const unsigned char*>(o.alpn.data()),
                        static_cast<unsigned>(o.alpn.size()));
    ERR_clear_error();
    if (SSL_connect(c->ssl_) != 1) {
      char buf[256] = "handshake failed";
      if (auto e = ERR_get_error()) ERR_error_string_n(e, buf, sizeof buf);
      if (err) *err = buf;
      return nullptr;
    }
    return c;
  }

  ~TlsClient() {
    if (ssl_) {
      SSL_shutdown(ssl_);
      SSL_free(ssl_);
    }
    if (fd_ >= 0) ::close(fd_);
  }

  /// The served certificate's subject CN.
  std::string subject_cn() const {
    X509* x = SSL_get1_peer_certificate(ssl_);
    if (!x) return "";
    char cn[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    X509_free(x);
    return cn;
  }
  std::string version() const { return SSL_get_version(ssl_); }
  std::string alpn() const {
    const unsigned char* p = nullptr;
    unsigned n = 0;
    SSL_get0_alpn_selected(ssl_, &p, &n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  bool reused() const { return SSL_session_reused(ssl_) == 1; }
  /// The session to resume later (owned by the caller: SSL_SESSION_free).
  SSL_SESSION* session() const { return SSL_get1_session(ssl_); }

  bool send(std::string_view data) {
    while (!data.empty()) {
      const int n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  std::optional<Response> read_response(std::string* why = nullptr) {
    ResponseParser parser;
    for (;;) {
      if (!buf_.empty()) {
        buf_.erase(0, parser.feed(buf_));
        if (parser.done()) return parser.response();
        if (parser.failed()) {
          if (why) *why = parser.error();
          return std::nullopt;
        }
      }
      char tmp[16384];
      const int n = SSL_read(ssl_, tmp, sizeof tmp);
      if (n <= 0) {
        if (why) *why = "SSL_read: error " + std::to_string(SSL_get_error(ssl_, n));
        return std::nullopt;
      }
      buf_.append(tmp, static_cast<std::size_t>(n));
    }
  }

private:
  TlsClient() = default;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string buf_;
};

/// run_command() execs without a PATH search.
std::string which(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    auto colon = dirs.find(':', start);
    if (colon == std::string::npos) colon = dirs.size();
    fs::path candidate = fs::path(dirs.substr(start, colon - start)) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = colon + 1;
  }
  return name;
}

std::size_t fd_count(pid_t pid) {
  std::size_t n = 0;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (auto* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(d);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Fixture: a CA and leaves for a.test, b.test, *.w.test, and an expired a.test.

class TlsTest : public IntegrationTest {
protected:
  void SetUp() override {
    openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             path("ca.key"), "-out", path("ca.pem"), "-days", "30", "-subj", "/CN=bgproxy test CA"});
    leaf("a", "a.test", "30");
    leaf("b", "b.test", "30");
    leaf("w", "*.w.test", "30");
    leaf("expired", "a.test", "-1");
    ctx_ = SSL_CTX_new(TLS_client_method());
    ASSERT_NE(ctx_, nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    ASSERT_EQ(SSL_CTX_load_verify_locations(ctx_, path("ca.pem").c_str(), nullptr), 1);
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);  // resumption only when a test asks
  }

  void TearDown() override {
    if (ctx_) SSL_CTX_free(ctx_);
    IntegrationTest::TearDown();
  }

  std::string path(std::string_view name) const { return (dir_ / name).string(); }

  void openssl(std::vector<std::string> args) {
    args.insert(args.begin(), which("openssl"));
    auto r = run_command(args, dir_.path(), Ms(20000));
    ASSERT_EQ(r.exit_code, 0) << "openssl " << args[1] << " failed:\n" << r.err;
  }

  /// NAME.pem / NAME.key: a leaf for `dns` signed by the CA, valid for `days` (negative: expired).
  void leaf(const std::string& name, const std::string& dns, const std::string& days) {
    openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path(name + ".key"),
             "-out", path(name + ".csr"), "-subj", "/CN=" + dns});
    write_file(dir_ / (name + ".ext"), "subjectAltName=DNS:" + dns + "\n");
    openssl({"x509", "-req", "-in", path(name + ".csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
             "-CAcreateserial", "-out", path(name + ".pem"), "-days", days, "-extfile", path(name + ".ext")});
  }

  std::string pair(const std::string& name) const {
    return "{ certificate: " + path(name + ".pem") + ", private_key: " + path(name + ".key") + " }";
  }

  Proxy& start_tls_proxy(const std::string& tls) {
    ProxyConfig cfg;
    cfg.tls = tls;
    return start_proxy(cfg);
  }

  /// The CN the proxy serves for `sni`, after a verified handshake ("" on failure, reason in `why`).
  std::string served_cn(std::uint16_t port, const std::string& sni, std::string* why = nullptr) {
    auto c = TlsClient::connect(ctx_, port, {sni}, why);
    return c ? c->subject_cn() : "";
  }

  void reload(Proxy& p) { p.process().signal(SIGHUP); }

  SSL_CTX* ctx_ = nullptr;
};

std::string get_close(std::string_view target = "/") { return get_request(target, "Connection: close\r\n"); }

TEST_F(TlsTest, SniSelectsTheCertificate) {
  Proxy& p = start_tls_proxy("[" + pair("a") + ", " + pair("b") + ", " + pair("w") + "]");
  std::string why;
  EXPECT_EQ(served_cn(p.port(), "a.test", &why), "a.test") << why;
  EXPECT_EQ(served_cn(p.port(), "b.test", &why), "b.test") << why;
  EXPECT_EQ(served_cn(p.port(), "B.Test", &why), "b.test") << why;  // names are case-insensitive
}

TEST_F(TlsTest, WildcardMatchesOneLabel) {
  Proxy& p = start_tls_proxy("[" + pair("a") + ", " + pair("w") + "]");
  std::string why;
  EXPECT_EQ(served_cn(p.port(), "x.w.test", &why), "*.w.test") << why;
  EXPECT_EQ(served_cn(p.port(), "other.w.test", &why), "*.w.test") << why;
  // One label only: deeper names and the bare suffix get the default (which then fails to
  // verify as a hostname, but the handshake itself is fine without SSL_set1_host).
  EXPECT_EQ(served_cn(p.port(), "a.x.w.test", &why), "a.test") << why;
  EXPECT_EQ(served_cn(p.port(), "w.test", &why), "a.test") << why;
}

TEST_F(TlsTest, DefaultCertificateWithoutOrWithUnknownSni) {
  Proxy& p = start_tls_proxy("[" + pair("b") + ", " + pair("a") + "]");
  std::string why;
  EXPECT_EQ(served_cn(p.port(), "", &why), "b.test") << why;
  EXPECT_EQ(served_cn(p.port(), "nobody.example", &why), "b.test") << why;
  EXPECT_EQ(served_cn(p.port(), "a.test", &why), "a.test") << why;
}

TEST_F(TlsTest, AlpnPrefersTheListenersFirstProtocolTheClientOffers) {
  const std::string h2_then_http11("\x02h2\x08http/1.1", 12);
  Proxy& both = start_tls_proxy(pair("a"));  // default protocols: [h2, http/1.1]
  std::string why;
  auto c = TlsClient::connect(ctx_, both.port(), {"a.test", 0, nullptr, h2_then_http11}, &why);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->alpn(), "h2");
  c = TlsClient::connect(ctx_, both.port(), {"a.test", 0, nullptr, std::string("\x03foo", 4)}, &why);
  ASSERT_TRUE(c) << why;  // nothing in common: no ALPN, the handshake still succeeds
  EXPECT_EQ(c->alpn(), "");

  ProxyConfig only_http11;
  only_http11.tls = pair("a");
  only_http11.protocols = "[http/1.1]";
  Proxy& one = start_proxy(only_http11);
  c = TlsClient::connect(ctx_, one.port(), {"a.test", 0, nullptr, h2_then_http11}, &why);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->alpn(), "http/1.1");
}

TEST_F(TlsTest, Http2ByAlpnCarriesAMebibyteAnswerAndManySmallOnesIntact) {
  // Over TLS the DATA frames are copied into one buffer per write (one TLS record for many
  // frames); over h2c large payloads are pointed at instead (H2cDownstream covers those).
  Proxy& p = start_tls_proxy(pair("a"));  // default protocols: [h2, http/1.1]
  const std::string base = "https://127.0.0.1:" + std::to_string(p.port());
  constexpr std::size_t kMiB = 1 << 20;
  auto big =
      run_command({which("nghttp"), base + "/download?body_bytes=" + std::to_string(kMiB)}, dir_.path(), Ms(20000));
  ASSERT_EQ(big.exit_code, 0) << big.err;
  EXPECT_EQ(big.out.size(), kMiB);
  EXPECT_EQ(fnv1a_hex(big.out), fnv1a_hex(pattern_bytes(0, kMiB))) << "the answer changed on the way";

  // 40 streams at once on one connection: their frames share writes.
  auto small = run_command({which("nghttp"), "-m", "40", base + "/small?body_bytes=100"}, dir_.path(), Ms(20000));
  ASSERT_EQ(small.exit_code, 0) << small.err;
  std::string want;
  for (int i = 0; i < 40; ++i) want += pattern_bytes(0, 100);
  EXPECT_EQ(small.out, want);
}

TEST_F(TlsTest, ProxiedGetCarriesForwardedProtoHttpsAndKeepsAlive) {
  Proxy& p = start_tls_proxy(pair("a"));
  std::string why;
  auto c = TlsClient::connect(ctx_, p.port(), {"a.test"}, &why);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->alpn(), "http/1.1");
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(c->send(get_request("/tls?i=" + std::to_string(i), "", "a.test")));
    auto r = c->read_response(&why);
    ASSERT_TRUE(r) << "request " << i << ": " << why;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("X-Backend"), "blue");
    Echo e = parse_echo(r->body);
    EXPECT_EQ(e.value("X-Forwarded-Proto"), "https");
    EXPECT_EQ(e.value("Host"), "a.test");
    EXPECT_EQ(e.target, "/tls?i=" + std::to_string(i));
    EXPECT_EQ(e.request_on_connection, static_cast<std::uint64_t>(i)) << "the upstream connection is reused";
  }
  // A body both ways, bigger than one TLS record.
  const std::string body = pattern_bytes(0, 100000);
  ASSERT_TRUE(c->send(request_with_body("POST", "/upload", body, "", "a.test")));
  auto r = c->read_response(&why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(parse_echo(r->body).body_fnv1a, fnv1a_hex(body));
  // Connection: close ends with close_notify and EOF.
  ASSERT_TRUE(c->send(get_close()));
  r = c->read_response(&why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->header("Connection"), "close");
  EXPECT_FALSE(c->read_response(&why)) << "the connection should have been closed";
  auto ok = p.wait_metric("bgproxy_tls_handshakes_total", {}, [](double v) { return v >= 1; });
  EXPECT_EQ(ok, 1);
}

TEST_F(TlsTest, OpensslCliRefusesTls11AndAcceptsTls13) {
  Proxy& p = start_tls_proxy(pair("a"));
  const std::string target = "127.0.0.1:" + std::to_string(p.port());
  // SECLEVEL=0 lets the client offer TLS 1.1 at all; the server must still refuse it.
  auto old = run_command({which("timeout"), "10", which("openssl"), "s_client", "-connect", target, "-servername", "a.test",
                          "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"},
                         dir_.path(), Ms(15000));
  EXPECT_NE(old.exit_code, 0) << old.out;
  EXPECT_NE(old.out.find("no peer certificate available"), std::string::npos) << old.out;
  auto tls13 = run_command({which("timeout"), "10", which("openssl"), "s_client", "-connect", target, "-servername", "a.test",
                            "-tls1_3", "-CAfile", path("ca.pem"), "-verify_return_error"},
                           dir_.path(), Ms(15000));
  EXPECT_EQ(tls13.exit_code, 0) << tls13.out << tls13.err;
  EXPECT_NE(tls13.out.find("TLSv1.3"), std::string::npos) << tls13.out;
  EXPECT_NE(tls13.out.find("CN = a.test"), std::string::npos) << tls13.out;
  auto tls12 = run_command({which("timeout"), "10", which("openssl"), "s_client", "-connect", target, "-servername", "a.test",
                            "-tls1_2", "-CAfile", path("ca.pem"), "-verify_return_error"},
                           dir_.path(), Ms(15000));
  EXPECT_EQ(tls12.exit_code, 0) << tls12.out << tls12.err;
  EXPECT_NE(tls12.out.find("ECDHE"), std::string::npos) << tls12.out;
  auto refused = p.wait_metric("bgproxy_tls_handshake_failures_total", {{"reason", "protocol"}},
                               [](double v) { return v >= 1; });
  EXPECT_GE(refused.value_or(0), 1) << "the TLS 1.1 attempt should reach the server and be counted";
}

TEST_F(TlsTest, PlaintextToTlsPortGetsACleanClose) {
  Proxy& p = start_tls_proxy(pair("a"));
  for (int i = 0; i < 3; ++i) {
    Client c(p.port());
    c.send(get_request("/"));
    EXPECT_EQ(c.read_until_close(Ms(5000)), ReadEnd::Eof) << "attempt " << i;
  }
  auto failures = p.wait_metric("bgproxy_tls_handshake_failures_total", {{"reason", "protocol"}},
                                [](double v) { return v >= 3; });
  EXPECT_EQ(failures, 3);
  // The worker is fine afterwards.
  std::string why;
  auto c = TlsClient::connect(ctx_, p.port(), {"a.test"}, &why);
  ASSERT_TRUE(c) << why;
  ASSERT_TRUE(c->send(get_request("/")));
  auto r = c->read_response(&why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(p.process().running());
}

TEST_F(TlsTest, ThousandHandshakesWithoutFdOrMemoryGrowth) {
  Proxy& p = start_tls_proxy("[" + pair("a") + ", " + pair("b") + "]");
  auto handshake = [&](int i) {
    std::string why;
    auto c = TlsClient::connect(ctx_, p.port(), {i % 2 ? "a.test" : "b.test", i % 3 ? 0 : TLS1_2_VERSION}, &why);
    if (!c) {
      ADD_FAILURE() << "handshake " << i << ": " << why;
      return false;
    }
    if (i % 50 == 0) {  // now and then a request too
      if (!c->send(get_request("/"))) return false;
      auto r = c->read_response(&why);
      if (!r || r->status != 200) {
        ADD_FAILURE() << "request on handshake " << i << ": " << why;
        return false;
      }
    }
    return true;
  };
  auto settle = [&] {
    return p.wait_metric("bgproxy_client_connections", {}, [](double v) { return v == 0; }, Ms(5000));
  };
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(handshake(i));  // warm-up: caches, pools, arenas
  ASSERT_EQ(settle(), 0);
  const auto fds_before = fd_count(p.pid());
  const auto rss_before = proc_status_kb(p.pid(), "VmRSS");
  ASSERT_TRUE(rss_before);
  const auto t0 = Clock::now();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(handshake(i));
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_EQ(settle(), 0);
  const auto fds_after = fd_count(p.pid());
  const auto rss_after = proc_status_kb(p.pid(), "VmRSS");
  ASSERT_TRUE(rss_after);
  std::cout << "[ figures  ] 1000 handshakes in " << seconds << " s (" << 1000 / seconds
            << "/s, sequential); fds " << fds_before << " -> " << fds_after << "; VmRSS " << *rss_before << " -> "
            << *rss_after << " KiB\n";
  // A leak would show as ~1000; the only fds allowed to appear are pooled upstream
  // connections of a worker that had none yet (at most one per worker thread).
  EXPECT_LE(fds_after, fds_before + 2);
  const long allowed_kb = sanitized_build() ? 512 * 1024 : 8 * 1024;  // ASan quarantine holds freed memory
  EXPECT_LT(*rss_after - *rss_before, allowed_kb);
  auto done = p.wait_metric("bgproxy_tls_handshakes_total", {}, [](double v) { return v >= 1100; });
  EXPECT_EQ(done, 1100);
  auto failed = metric_value(p.metrics(), "bgproxy_tls_handshake_failures_total");
  EXPECT_EQ(failed, 0);
}

TEST_F(TlsTest, ReloadServesTheNewCertificateAndKeepsOpenConnections) {
  fs::copy_file(dir_ / "a.pem", dir_ / "live.pem");
  fs::copy_file(dir_ / "a.key", dir_ / "live.key");
  Proxy& p = start_tls_proxy(pair("live"));
  std::string why;
  auto old = TlsClient::connect(ctx_, p.port(), {"a.test"}, &why);
  ASSERT_TRUE(old) << why;
  EXPECT_EQ(old->subject_cn(), "a.test");
  ASSERT_TRUE(old->send(get_request("/before")));
  ASSERT_TRUE(old->read_response(&why)) << why;

  // A new valid certificate: new handshakes get it, the open connection keeps working.
  fs::copy_file(dir_ / "b.pem", dir_ / "live.pem", fs::copy_options::overwrite_existing);
  fs::copy_file(dir_ / "b.key", dir_ / "live.key", fs::copy_options::overwrite_existing);
  reload(p);
  ASSERT_TRUE(p.process().wait_for_line(std::regex("certificates reloaded, serving b\\.test"), Ms(5000)))
      << p.process().stderr_text();
  EXPECT_EQ(served_cn(p.port(), "b.test", &why), "b.test") << why;
  ASSERT_TRUE(old->send(get_request("/after")));
  auto r = old->read_response(&why);
  ASSERT_TRUE(r) << why;
  EXPECT_EQ(parse_echo(r->body).target, "/after");
  EXPECT_EQ(metric_value(p.metrics(), "bgproxy_config_reloads_total", {{"result", "success"}}), 1);

  // An expired certificate: refused with file and reason, the previous one keeps serving.
  fs::copy_file(dir_ / "expired.pem", dir_ / "live.pem", fs::copy_options::overwrite_existing);
  fs::copy_file(dir_ / "a.key", dir_ / "live.key", fs::copy_options::overwrite_existing);
  reload(p);
  const std::string live = (dir_ / "live.pem").string();
  ASSERT_TRUE(p.process().wait_for_line(std::regex("tls: cannot load .*live\\.pem: certificate expired"), Ms(5000)))
      << p.process().stderr_text();
  EXPECT_EQ(served_cn(p.port(), "b.test", &why), "b.test") << why;
  EXPECT_EQ(served_cn(p.port(), "a.test", &why), "b.test") << why;
  EXPECT_EQ(metric_value(p.metrics(), "bgproxy_config_reloads_total", {{"result", "failure"}}), 1);

  // A key that does not parse: refused too, naming the key file.
  write_file(dir_ / "live.key", "not a key\n");
  fs::copy_file(dir_ / "a.pem", dir_ / "live.pem", fs::copy_options::overwrite_existing);
  reload(p);
  ASSERT_TRUE(p.process().wait_for_line(std::regex("tls: cannot load .*live\\.key: "), Ms(5000)))
      << p.process().stderr_text();
  EXPECT_EQ(served_cn(p.port(), "a.test", &why), "b.test") << why;
  EXPECT_EQ(metric_value(p.metrics(), "bgproxy_config_reloads_total", {{"result", "failure"}}), 2);
  EXPECT_TRUE(p.process().running());
}

TEST_F(TlsTest, SessionResumption) {
  Proxy& p = start_tls_proxy(pair("a"));
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version == TLS1_2_VERSION ? "TLS 1.2" : "TLS 1.3");
    std::string why;
    SSL_SESSION* session = nullptr;
    {
      auto first = TlsClient::connect(ctx_, p.port(), {"a.test", version}, &why);
      ASSERT_TRUE(first) << why;
      EXPECT_FALSE(first->reused());
      // TLS 1.3 tickets arrive after the handshake: read a response first.
      ASSERT_TRUE(first->send(get_request("/")));
      ASSERT_TRUE(first->read_response(&why)) << why;
      session = first->session();
    }
    ASSERT_NE(session, nullptr);
    auto second = TlsClient::connect(ctx_, p.port(), {"a.test", version, session}, &why);
    SSL_SESSION_free(session);
    ASSERT_TRUE(second) << why;
    EXPECT_TRUE(second->reused());
    EXPECT_EQ(second->version(), version == TLS1_2_VERSION ? "TLSv1.2" : "TLSv1.3");
    ASSERT_TRUE(second->send(get_request("/")));
    auto r = second->read_response(&why);
    ASSERT_TRUE(r) << why;
    EXPECT_EQ(r->status, 200);
  }
}

TEST_F(TlsTest, Tls13ClientReusingItsSslObjectResumesEveryConnection) {
  // wrk's way (and a browser's: each TLS 1.3 ticket used once): one SSL object, SSL_shutdown and
  // SSL_clear between connections, the session it holds offered on the next. Each resumed
  // connection must bring a new ticket, or every other connection is a full handshake.
  Proxy& p = start_tls_proxy(pair("a"));
  // With OpenSSL's client session cache on (as wrk has it), a TLS 1.3 session that was resumed
  // is removed from the cache and marked not resumable: the next connection needs a new ticket.
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
  SSL* ssl = SSL_new(ctx);
  SSL_set_min_proto_version(ssl, TLS1_3_VERSION);
  int resumed = 0;
  for (int i = 0; i < 6; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(p.port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "a.test");
    ASSERT_EQ(SSL_connect(ssl), 1) << "connection " << i;
    const std::string request = "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
    ASSERT_EQ(SSL_write(ssl, request.data(), static_cast<int>(request.size())), static_cast<int>(request.size()));
    std::string response;
    char buf[4096];
    for (int n; (n = SSL_read(ssl, buf, sizeof buf)) > 0;) response.append(buf, static_cast<std::size_t>(n));
    EXPECT_EQ(response.rfind("HTTP/1.1 200", 0), 0u) << response;
    if (i > 0 && SSL_session_reused(ssl) == 1) ++resumed;
    SSL_shutdown(ssl);
    SSL_clear(ssl);
    ::close(fd);
  }
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  EXPECT_EQ(resumed, 5) << "of the 5 connections after the first, this many resumed";
}

TEST_F(TlsTest, TicketsSurviveACertificateReload) {
  Proxy& p = start_tls_proxy(pair("a"));
  std::vector<std::pair<int, SSL_SESSION*>> sessions;
  std::string why;
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    auto c = TlsClient::connect(ctx_, p.port(), {"a.test", version}, &why);
    ASSERT_TRUE(c) << why;
    ASSERT_TRUE(c->send(get_request("/")));
    ASSERT_TRUE(c->read_response(&why)) << why;
    sessions.emplace_back(version, c->session());
  }
  reload(p);
  ASSERT_TRUE(p.process().wait_for_line(std::regex("certificates reloaded"), Ms(5000)))
      << p.process().stderr_text();
  for (auto& [version, session] : sessions) {
    SCOPED_TRACE(version == TLS1_2_VERSION ? "TLS 1.2" : "TLS 1.3");
    auto c = TlsClient::connect(ctx_, p.port(), {"a.test", version, session}, &why);
    SSL_SESSION_free(session);
    ASSERT_TRUE(c) << why;
    EXPECT_TRUE(c->reused()) << "the ticket key ring outlives the reloaded contexts";
  }
}

TEST_F(TlsTest, HandshakeTimeoutIsCounted) {
  ProxyConfig cfg;
  cfg.tls = pair("a");
  cfg.client_header = "500ms";
  Proxy& p = start_proxy(cfg);
  Client c(p.port());  // connects, never says hello
  EXPECT_EQ(c.read_until_close(Ms(5000)), ReadEnd::Eof);
  auto t = p.wait_metric("bgproxy_tls_handshake_failures_total", {{"reason", "timeout"}},
                         [](double v) { return v >= 1; });
  EXPECT_EQ(t, 1);
}

TEST_F(TlsTest, BadCertificateRefusesStart) {
  ProxyConfig cfg;
  cfg.tls = "{ certificate: " + path("missing.pem") + ", private_key: " + path("a.key") + " }";
  cfg.blue.push_back("127.0.0.1:1");
  EXPECT_THROW(start_proxy(cfg), std::runtime_error);
}

}  // namespace
}  // namespace bgtest
