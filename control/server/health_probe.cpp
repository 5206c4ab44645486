#include "control/server/health_probe.hpp"

#include <string>
#include <utility>

namespace bgproxy::control {

using error_code = boost::system::error_code;

HealthProbe::HealthProbe(boost::asio::io_context& ioc, std::uint32_t server, const config::HealthCheck& hc,
                         std::shared_ptr<HealthTransport> transport, HealthResultHandler on_result, std::uint64_t seed)
    : interval_timer_(ioc),
      deadline_(ioc),
      server_(server),
      interval_(hc.interval),
      timeout_(hc.timeout),
      transport_(std::move(transport)),
      on_result_(std::move(on_result)),
      rng_(seed) {}

void HealthProbe::stop() {
  stopped_ = true;
  interval_timer_.cancel();
  deadline_.cancel();
  transport_->close();
}

void HealthProbe::schedule() {
  if (stopped_) return;
  // ±10 % jitter: checks of many servers drift apart instead of firing together.
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  interval_timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double, std::milli>(static_cast<double>(interval_.count()) * jitter(rng_))));
  interval_timer_.async_wait([weak = weak_from_this()](error_code ec) {
    if (auto self = weak.lock(); self && !ec) self->check();
  });
}

void HealthProbe::check() {
  if (stopped_) return;
  started_ = std::chrono::steady_clock::now();
  finished_ = false;
  retried_ = false;
  deadline_.expires_after(timeout_);
  deadline_.async_wait([weak = weak_from_this()](error_code ec) {
    auto self = weak.lock();
    if (!self || ec || self->finished_ || self->stopped_) return;
    // Closing first means the transport's `done` never runs for this check: one result only.
    self->transport_->close();
    self->finish(HealthAnswer{false, 0, "timeout after " + std::to_string(self->timeout_.count()) + "ms", false});
  });
  ask();
}

void HealthProbe::ask() {
  transport_->check([self = shared_from_this()](HealthAnswer answer) { self->on_answer(std::move(answer)); });
}

void HealthProbe::on_answer(HealthAnswer answer) {
  if (finished_ || stopped_) return;
  // A kept-alive connection the server closed while idle fails its next check without saying
  // anything about the server: try once more on a fresh one, within the same timeout.
  if (answer.kept_connection_lost && !retried_) {
    retried_ = true;
    transport_->close();
    return ask();
  }
  finish(std::move(answer));
}

void HealthProbe::finish(HealthAnswer answer) {
  finished_ = true;
  deadline_.cancel();
  if (!answer.ok) transport_->close();
  health::CheckResult r;
  r.ok = answer.ok;
  r.status = answer.status;
  r.latency_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  r.error = std::move(answer.error);
  on_result_(server_, r);
  schedule();
}

}  // namespace bgproxy::control
