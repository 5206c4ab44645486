#include "proxy/net/worker.hpp"

#include <random>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "proxy/http/client_session.hpp"

namespace bgproxy::proxy {
namespace {
constexpr auto sweep_period = std::chrono::milliseconds(100);
}

Worker::Worker(unsigned index, const Runtime& runtime, routing::RoutingTableConstSharedPtr table)
    : index_(index),
      runtime_(runtime),
      executor_(ioc_->get_executor()),
      sweep_timer_(std::in_place, executor_),
      table_(std::move(table)),
      pool_(executor_, runtime.servers.size()),
      stats_(runtime.config->services.size(), runtime.servers.size()),
      consecutive_failures_(runtime.servers.size(), 0),
      now_(Clock::now()),
      rng_state_(std::random_device{}() | 1ULL) {}

Worker::~Worker() {
  stop();
  join();
  listeners_.clear();
  sweep_timer_.reset();
  pool_.close_idle();
  ioc_.reset();
}

void Worker::add_acceptor(tcp::acceptor&& bound, ListenerInfo info) {
  const auto protocol = bound.local_endpoint().protocol();
  auto fd = bound.release();
  listeners_.push_back(std::make_unique<Listener>(Listener{Acceptor(executor_, protocol, fd), info}));
}

void Worker::start() {
  work_.emplace(executor_);
  for (std::size_t i = 0; i < listeners_.size(); ++i) do_accept(i);
  do_sweep();
  thread_ = std::thread([this] {
    ioc_->run();
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::stop() {
  if (ioc_) ioc_->stop();
}

void Worker::publish(routing::RoutingTableConstSharedPtr t, std::function<void()> done) {
  net::post(executor_, [this, t = std::move(t), done = std::move(done)]() mutable {
    table_ = std::move(t);
    done();
  });
}

void Worker::ping(std::function<void()> reply) { net::post(executor_, std::move(reply)); }

void Worker::collect(std::function<void(stats::RequestStats)> reply) {
  net::post(executor_, [this, reply = std::move(reply)] {
    auto copy = stats_;
    copy.client_connections = static_cast<std::int64_t>(connections_);
    reply(std::move(copy));
  });
}

void Worker::drain() {
  net::post(executor_, [this] {
    if (draining_) return;
    draining_ = true;
    for (auto& l : listeners_) {
      boost::system::error_code ignored;
      l->acceptor.close(ignored);
    }
    pool_.close_idle();
    // on_drain() may close a session and so unlink it; iterate over a copy.
    std::vector<Timed*> all;
    for (auto& t : timed_) all.push_back(&t);
    for (auto* t : all) t->on_drain();
    maybe_finish_drain();
  });
}

std::uint64_t Worker::random() noexcept {
  // xorshift64*: per-worker, lock-free, plenty for weighted choice.
  rng_state_ ^= rng_state_ >> 12;
  rng_state_ ^= rng_state_ << 25;
  rng_state_ ^= rng_state_ >> 27;
  return rng_state_ * 0x2545F4914F6CDD1DULL;
}

void Worker::connection_closed() noexcept {
  --connections_;
  runtime_.open_connections_release();
  maybe_finish_drain();
}

void Worker::server_failed(std::uint32_t server) {
  const auto threshold = runtime_.passive_threshold[server];
  if (threshold == 0 || ++consecutive_failures_[server] < threshold) return;
  consecutive_failures_[server] = 0;
  if (runtime_.report_ejection) runtime_.report_ejection(server);
}

void Worker::maybe_finish_drain() {
  if (!draining_ || connections_ != 0) return;
  if (sweep_timer_) sweep_timer_->cancel();
  pool_.close_idle();
  work_.reset();
}

void Worker::do_accept(std::size_t i) {
  listeners_[i]->acceptor.async_accept(
      [this, i](boost::system::error_code ec, Socket socket) { on_accept(i, ec, std::move(socket)); });
}

void Worker::on_accept(std::size_t i, boost::system::error_code ec, Socket socket) {
  if (ec == net::error::operation_aborted || draining_) return;
  if (ec) {
    // EMFILE and friends: log, back off by one sweep, keep listening.
    spdlog::warn("worker {}: accept failed: {}", index_, ec.message());
    auto timer = std::make_shared<Timer>(executor_);
    timer->expires_after(sweep_period);
    timer->async_wait([this, i, timer](boost::system::error_code) {
      if (!draining_) do_accept(i);
    });
    return;
  }
  if (!runtime_.open_connections_acquire()) {
    boost::system::error_code ignored;
    socket.close(ignored);
  } else {
    ++connections_;
    start_session(*this, std::move(socket), listeners_[i]->info);
  }
  do_accept(i);
}

void Worker::do_sweep() {
  sweep_timer_->expires_after(sweep_period);
  sweep_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    now_ = Clock::now();
    expired_.clear();
    for (auto& t : timed_) {
      if (t.deadline() <= now_) expired_.push_back(&t);
    }
    for (auto* t : expired_) t->on_deadline();
    do_sweep();
  });
}

}  // namespace bgproxy::proxy
