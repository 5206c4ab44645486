#include "control/server/health_checker.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <map>
#include <optional>
#include <random>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

namespace bgproxy::control {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace ssl = net::ssl;

namespace {
constexpr std::uint64_t max_health_body = 64 * 1024;

/// A pool's upstream TLS for its checks: the same settings as the data plane's
/// (TLS 1.2+, the pool's CA or the system paths, an optional client certificate).
/// @return null (and logs why) when a file cannot be loaded
std::shared_ptr<ssl::context> make_check_context(const config::UpstreamTls& t) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* h = ctx->native_handle();
  SSL_CTX_set_min_proto_version(h, TLS1_2_VERSION);
  bool ok = true;
  if (t.verify) {
    ok = t.ca.empty() ? SSL_CTX_set_default_verify_paths(h) == 1
                      : SSL_CTX_load_verify_locations(h, t.ca.c_str(), nullptr) == 1;
    SSL_CTX_set_verify(h, SSL_VERIFY_PEER, nullptr);
  }
  if (ok && !t.client_certificate.empty()) {
    ok = SSL_CTX_use_certificate_chain_file(h, t.client_certificate.c_str()) == 1 &&
         SSL_CTX_use_PrivateKey_file(h, t.client_key.c_str(), SSL_FILETYPE_PEM) == 1 &&
         SSL_CTX_check_private_key(h) == 1;
  }
  if (!ok) {
    const unsigned long e = ERR_peek_last_error();
    const char* r = e != 0 ? ERR_reason_error_string(e) : nullptr;
    ERR_clear_error();
    spdlog::error("health check: upstream tls: {}", r != nullptr ? r : "cannot load the CA or client certificate");
    return nullptr;
  }
  return ctx;
}

/// SNI and the verified name of one server: `sni`, else its host when a name; an IP is checked as an IP.
bool prepare_check_ssl(SSL* ssl, const config::UpstreamTls& t, const config::Endpoint& server) {
  error_code ec;
  (void)net::ip::make_address(server.host, ec);
  const bool ip = t.sni.empty() && !ec;
  const std::string& name = t.sni.empty() ? server.host : t.sni;
  if (!ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) return false;
  if (!t.verify) return true;
  if (ip) return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
  return SSL_set1_host(ssl, name.c_str()) == 1;
}
}  // namespace

/// TLS of one probed server: its pool's context and settings.
struct CheckTls {
  std::shared_ptr<ssl::context> context;
  const config::UpstreamTls* settings = nullptr;
  const config::Endpoint* server = nullptr;
};

/// Checks one server, forever, until stopped.
class HealthChecker::Probe : public std::enable_shared_from_this<HealthChecker::Probe> {
 public:
  Probe(net::io_context& ioc, std::uint32_t id, tcp::endpoint endpoint, std::string host,
        std::shared_ptr<const config::Config> cfg, const config::HealthCheck& hc, OnResult on_result,
        std::uint64_t seed, CheckTls tls)
      : cfg_(std::move(cfg)),
        tls_settings_(std::move(tls)),
        socket_(ioc),
        interval_timer_(ioc),
        deadline_(ioc),
        id_(id),
        endpoint_(endpoint),
        hc_(hc),
        on_result_(std::move(on_result)),
        rng_(seed) {
    request_.method(http::verb::get);
    request_.target(hc.path);
    request_.version(11);
    request_.set(http::field::host, host);
    request_.set(http::field::user_agent, "bgproxy-health-check");
  }

  void start() { check(); }

  void stop() {
    stopped_ = true;
    interval_timer_.cancel();
    deadline_.cancel();
    close();
  }

 private:
  void close() {
    error_code ignored;
    socket_.close(ignored);
  }

  void schedule() {
    if (stopped_) return;
    // ±10 % jitter: checks of many servers drift apart instead of firing together.
    std::uniform_real_distribution<double> jitter(0.9, 1.1);
    interval_timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double, std::milli>(static_cast<double>(hc_.interval.count()) * jitter(rng_))));
    interval_timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->check();
    });
  }

  void check() {
    if (stopped_) return;
    started_ = std::chrono::steady_clock::now();
    finished_ = false;
    timed_out_ = false;
    retried_ = false;
    deadline_.expires_after(hc_.timeout);
    deadline_.async_wait([weak = weak_from_this()](error_code ec) {
      auto self = weak.lock();
      if (!self || ec || self->finished_) return;
      self->timed_out_ = true;
      self->close();  // the pending operation completes with an error and reports the timeout
    });
    connect_and_send();
  }

  void connect_and_send() {
    if (socket_.is_open()) {
      reused_ = true;
      return send();
    }
    reused_ = false;
    if (tls_settings_.context) {
      // A fresh TLS session per connection (nothing is pending on the old one here).
      tls_.emplace(socket_, *tls_settings_.context);
      if (!prepare_check_ssl(tls_->native_handle(), *tls_settings_.settings, *tls_settings_.server))
        return fail("tls: cannot set the server name");
    }
    socket_.async_connect(endpoint_, [self = shared_from_this()](error_code ec) {
      if (ec) return self->fail("connect: " + ec.message());
      error_code ignored;
      self->socket_.set_option(tcp::no_delay(true), ignored);
      if (!self->tls_) return self->send();
      self->tls_->async_handshake(ssl::stream_base::client, [self](error_code hec) {
        if (hec) return self->fail("tls handshake: " + hec.message());
        self->send();
      });
    });
  }

  void send() {
    auto on_sent = [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->fail_or_retry("send: " + ec.message());
      self->read();
    };
    if (tls_) return http::async_write(*tls_, request_, std::move(on_sent));
    http::async_write(socket_, request_, std::move(on_sent));
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(max_health_body);
    auto on_read = [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->fail_or_retry("read: " + ec.message());
      const auto& res = self->parser_->get();
      const unsigned status = res.result_int();
      if (!res.keep_alive()) self->close();
      if (health::Tracker::status_expected(self->hc_, status)) return self->finish(true, status, {});
      self->finish(false, status, "status " + std::to_string(status));
    };
    if (tls_) return http::async_read(*tls_, buffer_, *parser_, std::move(on_read));
    http::async_read(socket_, buffer_, *parser_, std::move(on_read));
  }

  /// A kept-alive connection the server closed while idle fails its next check
  /// without saying anything about the server: try once more on a fresh one.
  void fail_or_retry(std::string error) {
    if (reused_ && !retried_ && !timed_out_ && !stopped_) {
      retried_ = true;
      close();
      buffer_.clear();
      return connect_and_send();
    }
    fail(std::move(error));
  }

  void fail(std::string error) { finish(false, 0, std::move(error)); }

  void finish(bool ok, unsigned status, std::string error) {
    if (finished_ || stopped_) return;
    finished_ = true;
    deadline_.cancel();
    if (timed_out_) {
      ok = false;
      status = 0;
      error = "timeout after " + std::to_string(hc_.timeout.count()) + "ms";
    }
    if (!ok) {
      close();
      buffer_.clear();
    }
    health::CheckResult r;
    r.ok = ok;
    r.status = status;
    r.latency_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    r.error = std::move(error);
    on_result_(id_, r);
    schedule();
  }

  std::shared_ptr<const config::Config> cfg_;  ///< what hc_ and tls_settings_ point into
  CheckTls tls_settings_;  ///< no context: plain HTTP
  tcp::socket socket_;
  std::optional<ssl::stream<tcp::socket&>> tls_;  ///< over socket_, for a TLS pool
  net::steady_timer interval_timer_;
  net::steady_timer deadline_;
  std::uint32_t id_;
  tcp::endpoint endpoint_;
  const config::HealthCheck& hc_;
  OnResult on_result_;
  std::mt19937_64 rng_;
  http::request<http::empty_body> request_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::chrono::steady_clock::time_point started_{};
  bool finished_ = false;
  bool timed_out_ = false;
  bool reused_ = false;
  bool retried_ = false;
  bool stopped_ = false;
};

HealthChecker::HealthChecker(net::io_context& ioc, std::shared_ptr<const config::Config> cfg,
                             std::vector<routing::ServerInfo> servers, OnResult on_result)
    : ioc_(ioc), cfg_(std::move(cfg)), servers_(std::move(servers)), on_result_(std::move(on_result)) {}

HealthChecker::~HealthChecker() { stop(); }

void HealthChecker::start() {
  tcp::resolver resolver(ioc_);
  std::random_device seed;
  std::map<std::pair<std::uint32_t, routing::Color>, std::shared_ptr<ssl::context>> contexts;
  for (const auto& s : servers_) {
    const auto& svc = cfg_->services[s.service];
    if (!svc.health_check.enabled) continue;
    const auto& pool_tls = (s.color == routing::Color::blue ? svc.blue : svc.green).tls;
    CheckTls tls;
    if (pool_tls.enabled) {
      auto& ctx = contexts[{s.service, s.color}];
      if (!ctx) ctx = make_check_context(pool_tls);
      if (!ctx) continue;
      tls = CheckTls{ctx, &pool_tls, &s.endpoint};
    }
    error_code ec;
    const auto results = resolver.resolve(s.endpoint.host, std::to_string(s.endpoint.port), ec);
    if (ec || results.empty()) {
      spdlog::error("health check of {}: cannot resolve: {}", s.endpoint.text, ec.message());
      continue;
    }
    // Checks carry the service's host, as a client of the service would.
    const std::string host = svc.match.host != "*" ? svc.match.host : s.endpoint.text;
    auto probe = std::make_shared<Probe>(ioc_, s.id, *results.begin(), host, cfg_, svc.health_check, on_result_,
                                         (static_cast<std::uint64_t>(seed()) << 32) ^ seed(), std::move(tls));
    probes_.push_back(probe);
    probe->start();
  }
}

void HealthChecker::stop() {
  for (auto& p : probes_) p->stop();
  probes_.clear();
}

}  // namespace bgproxy::control
