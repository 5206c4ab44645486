#include "control/server/smoke_run.hpp"

#include <utility>

#include <boost/asio/post.hpp>

#include "control/server/server_transport.hpp"

namespace bgproxy::control {

SmokeRun::SmokeRun(boost::asio::io_context& ioc, std::shared_ptr<const config::Config> cfg,
                   routing::ServerInfo server, std::shared_ptr<const tls::UpstreamTlsServer> tls,
                   std::vector<std::string> paths)
    : ioc_(ioc), cfg_(std::move(cfg)), server_(std::move(server)), tls_(std::move(tls)), paths_(std::move(paths)),
      deadline_(ioc) {}

void SmokeRun::start(Done done) {
  done_ = std::move(done);
  ask_next();
}

void SmokeRun::ask_next() {
  const bool failed = !results_.empty() && !results_.back().ok();
  if (failed || results_.size() == paths_.size()) {
    auto done = std::move(done_);
    return done(std::move(results_));
  }
  SmokeResult& r = results_.emplace_back();
  r.path = paths_[results_.size() - 1];
  r.server = server_.endpoint.text;
  // A plain GET of the path whatever the service's health check asks (it may be gRPC's): any
  // 2xx or 3xx passes. A new connection per path, as a new client's.
  config::HealthCheck hc;
  hc.protocol = config::HealthProtocol::http;
  hc.path = r.path;
  hc.expect_status = {config::StatusRange{200, 399}};
  std::string error;
  transport_ = transport_for(ioc_, *cfg_, server_, tls_, hc, error);
  if (!transport_) {
    r.error = std::move(error);
    return ask_next();
  }
  started_ = std::chrono::steady_clock::now();
  deadline_.expires_after(smoke_timeout);
  deadline_.async_wait([self = shared_from_this(), transport = transport_](boost::system::error_code ec) {
    if (ec || transport != self->transport_) return;
    transport->close();  // its `done` never runs now
    self->finish_one(HealthAnswer{false, 0, "timeout after " + std::to_string(smoke_timeout.count()) + "s", false});
  });
  transport_->check([self = shared_from_this(), transport = transport_](HealthAnswer answer) {
    if (transport != self->transport_) return;
    self->deadline_.cancel();
    self->finish_one(std::move(answer));
  });
}

void SmokeRun::finish_one(HealthAnswer answer) {
  SmokeResult& r = results_.back();
  r.latency_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  r.status = answer.status;
  if (!answer.ok) r.error = answer.error.empty() ? "failed" : std::move(answer.error);
  // Not from inside the transport's own handler: it may still be on the stack.
  boost::asio::post(ioc_, [self = shared_from_this(), transport = std::move(transport_)] {
    transport->close();
    self->ask_next();
  });
}

}  // namespace bgproxy::control
