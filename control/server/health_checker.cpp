#include "control/server/health_checker.hpp"

#include <optional>
#include <random>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "bgproxy/tls/upstream_tls.hpp"

namespace bgproxy::control {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

namespace ssl = net::ssl;

namespace {
constexpr std::uint64_t max_health_body = 64 * 1024;
}  // namespace

/// Checks one server, forever, until stopped.
class HealthChecker::Probe : public std::enable_shared_from_this<HealthChecker::Probe> {
 public:
  Probe(net::io_context& ioc, std::uint32_t id, tcp::endpoint endpoint, std::string host,
        std::shared_ptr<const config::Config> cfg, const config::HealthCheck& hc, OnResult on_result,
        std::uint64_t seed, std::shared_ptr<const tls::UpstreamTlsServer> tls)
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
    if (tls_settings_) {
      // A fresh TLS session per connection (nothing is pending on the old one here).
      tls_.emplace(socket_, tls_settings_->context());
      if (!tls_settings_->prepare(tls_->native_handle())) return fail("tls: cannot set the server name");
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

  std::shared_ptr<const config::Config> cfg_;  ///< what hc_ points into
  std::shared_ptr<const tls::UpstreamTlsServer> tls_settings_;  ///< the pool's TLS, the data plane's; null: plain
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
  tls::UpstreamTlsServers tls;
  try {
    tls = tls::load_upstream_tls(*cfg_, servers_);
  } catch (const tls::TlsLoadError& e) {
    // Start and reload load the same files first and refuse on error; this is a file changed since.
    spdlog::error("health checks of TLS pools: {}", e.what());
    tls.assign(servers_.size(), nullptr);
  }
  tcp::resolver resolver(ioc_);
  std::random_device seed;
  for (const auto& s : servers_) {
    const auto& svc = cfg_->services[s.service];
    if (!svc.health_check.enabled) continue;
    if ((s.color == routing::Color::blue ? svc.blue : svc.green).tls.enabled && !tls[s.id]) continue;
    error_code ec;
    const auto results = resolver.resolve(s.endpoint.host, std::to_string(s.endpoint.port), ec);
    if (ec || results.empty()) {
      spdlog::error("health check of {}: cannot resolve: {}", s.endpoint.text, ec.message());
      continue;
    }
    // Checks carry the service's host, as a client of the service would.
    const std::string host = svc.match.host != "*" ? svc.match.host : s.endpoint.text;
    auto probe = std::make_shared<Probe>(ioc_, s.id, *results.begin(), host, cfg_, svc.health_check, on_result_,
                                         (static_cast<std::uint64_t>(seed()) << 32) ^ seed(), tls[s.id]);
    probes_.push_back(probe);
    probe->start();
  }
}

void HealthChecker::stop() {
  for (auto& p : probes_) p->stop();
  probes_.clear();
}

}  // namespace bgproxy::control
