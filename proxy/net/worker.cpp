#include "proxy/net/worker.hpp"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <random>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "proxy/http/client_session.hpp"
#include "proxy/http/exchange.hpp"
#include "proxy/net/reactor_records.hpp"

namespace bgproxy::proxy {
namespace {
constexpr auto sweep_period = std::chrono::milliseconds(100);
/// Read buffers kept for reuse (32 KiB each, at most 8 MiB): the churn of connections going idle
/// and active, and of HTTP/2 streams (each holds one, and its backend connection another, while
/// it runs: 100 streams on a connection took 64 spares dry and mapped a block per request).
constexpr std::size_t spare_blocks = 256;
/// Exchanges kept for reuse (~2 KiB each with their arrays): a connection gives its own back
/// after every exchange, so this is the swing in concurrent exchanges that allocates nothing.
constexpr std::size_t spare_exchanges = 256;

/// Closes a listening socket that another process may hold too (binary upgrade). release()
/// takes it out of this loop's epoll set first: a plain close leaves it there while any other
/// descriptor of the socket lives, and every connection it gets would still wake this loop.
void stop_listening(Acceptor& a) {
  boost::system::error_code ec;
  const auto fd = a.release(ec);
  if (!ec) ::close(fd);
}
}  // namespace

Worker::Worker(unsigned index, RuntimeConstSharedPtr runtime, routing::RoutingTableConstSharedPtr table,
               ConnectionLimit& connections, EjectionReport report_ejection)
    : index_(index),
      runtime_(std::move(runtime)),
      connection_limit_(connections),
      report_ejection_(std::move(report_ejection)),
      blocks_(spare_blocks),
      exchanges_(spare_exchanges),
      executor_(ioc_->get_executor()),
      sweep_timer_(std::in_place, executor_),
      table_(std::move(table)),
      pool_(executor_, 0, blocks_),
      now_(Clock::now()),
      rng_state_(std::random_device{}() | 1ULL) {
  fit_to(*runtime_);
}

Worker::~Worker() {
  stop();
  join();
  listeners_.clear();
  sweep_timer_.reset();
  pool_.close_idle();
  ioc_.reset();
}

Worker::ListenerPtr Worker::make_listener(ListeningSocket s) {
  return std::make_shared<Listener>(
      Listener{std::move(s.key), Acceptor(executor_, s.v6 ? tcp::v6() : tcp::v4(), s.fd), std::move(s.info)});
}

void Worker::add_listener(ListeningSocket socket) { listeners_.push_back(make_listener(std::move(socket))); }

void Worker::fit_to(const Runtime& rt) {
  // Slots only grow, so a request pinned to an older generation still indexes its own entries.
  if (stats_.services.size() < rt.service_slots) stats_.services.resize(rt.service_slots);
  if (stats_.servers.size() < rt.server_slots) stats_.servers.resize(rt.server_slots);
  if (consecutive_failures_.size() < rt.server_slots) consecutive_failures_.resize(rt.server_slots, 0);
  pool_.grow(rt.server_slots);
}

void Worker::start() {
  work_.emplace(executor_);
  for (const auto& l : listeners_) do_accept(l);
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

void Worker::update(WorkerUpdate u, std::function<void()> done) {
  net::post(executor_, [this, u = std::move(u), done = std::move(done)]() mutable {
    runtime_ = std::move(u.runtime);
    table_ = std::move(u.table);
    fit_to(*runtime_);
    for (const auto slot : runtime_->renewed_slots) pool_.renew(slot);
    for (const auto& key : u.removed) {
      std::erase_if(listeners_, [&key](const ListenerPtr& l) {
        if (l->key != key) return false;
        stop_listening(l->acceptor);
        return true;
      });
    }
    for (auto& [key, info] : u.changed) {
      for (auto& l : listeners_)
        if (l->key == key) l->info = info;
    }
    for (auto& s : u.added) {
      auto l = make_listener(std::move(s));
      if (draining_) continue;  // closes it
      listeners_.push_back(l);
      do_accept(l);
    }
    done();
  });
}

void Worker::ping(std::function<void()> reply) { net::post(executor_, std::move(reply)); }

void Worker::collect(std::function<void(stats::RequestStats)> reply) {
  net::post(executor_, [this, reply = std::move(reply)] {
    auto copy = stats_;
    copy.client_connections = static_cast<std::int64_t>(connections_);
    for (std::uint32_t slot = 0; slot < copy.servers.size(); ++slot) {
      const auto learned = std::chrono::duration_cast<std::chrono::microseconds>(pool_.learned_idle(slot));
      copy.servers[slot].learned_idle_us = static_cast<std::uint64_t>(learned.count());
    }
    reply(std::move(copy));
  });
}

void Worker::cut(int service, routing::Color color, std::function<void(std::uint64_t)> reply) {
  net::post(executor_, [this, service, color, reply = std::move(reply)] {
    // on_cut() may close a session and so unlink it; iterate over a copy.
    std::vector<Timed*> all;
    for (auto& t : timed_) all.push_back(&t);
    std::uint64_t cut = 0;
    for (auto* t : all) cut += t->on_cut(service, color) ? 1 : 0;
    reply(cut);
  });
}

void Worker::drain() {
  net::post(executor_, [this] {
    if (draining_) return;
    draining_ = true;
    for (auto& l : listeners_) stop_listening(l->acceptor);
    listeners_.clear();
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
  connection_limit_.release();
  maybe_finish_drain();
}

void Worker::server_failed(std::uint32_t server_slot) {
  const auto& thresholds = runtime_->passive_threshold;
  const auto threshold = server_slot < thresholds.size() ? thresholds[server_slot] : 0;
  if (threshold == 0 || ++consecutive_failures_[server_slot] < threshold) return;
  consecutive_failures_[server_slot] = 0;
  if (report_ejection_) report_ejection_(server_slot);
}

void Worker::maybe_finish_drain() {
  if (!draining_ || connections_ != 0) return;
  sweeping_ = false;
  if (sweep_timer_) sweep_timer_->cancel();
  pool_.close_idle();
  work_.reset();
}

void Worker::do_accept(const ListenerPtr& l) {
  l->acceptor.async_accept(
      [this, l](boost::system::error_code ec, Socket socket) { on_accept(l, ec, std::move(socket)); });
}

void Worker::on_accept(const ListenerPtr& l, boost::system::error_code ec, Socket socket) {
  if (ec == net::error::operation_aborted) return;
  const bool accepting = !draining_ && l->acceptor.is_open();
  if (ec) {
    if (!accepting) return;
    // EMFILE and friends: log, back off by one sweep, keep listening.
    spdlog::warn("worker {}: accept failed: {}", index_, ec.message());
    auto timer = std::make_shared<Timer>(executor_);
    timer->expires_after(sweep_period);
    timer->async_wait([this, l, timer](boost::system::error_code) {
      if (!draining_ && l->acceptor.is_open()) do_accept(l);
    });
    return;
  }
  if (!connection_limit_.acquire(runtime_->settings.max_connections)) {
    boost::system::error_code ignored;
    socket.close(ignored);
  } else {
    // Accepted before the drain closed the acceptor: still served (with Connection: close),
    // under deadlines, so the sweep runs again if the drain had already finished.
    ++connections_;
    peak_connections_ = std::max(peak_connections_, connections_);
    if (!sweeping_) do_sweep();
    start_session(*this, std::move(socket), l->info);
  }
  if (accepting) do_accept(l);
}

void Worker::give_back_memory() {
  // Worth a walk over the heap only once a crowd has mostly gone, or gone idle at once.
  constexpr std::uint64_t crowd = 1000;
  constexpr auto at_most_every = std::chrono::seconds(1);
  shed_since_trim_ += shed_.size();
  const bool crowd_idle = shed_since_trim_ >= crowd;
  const bool crowd_gone = peak_connections_ >= crowd && connections_ <= peak_connections_ / 2;
  // The spare blocks are all taken back (8 MiB) and connections still go quiet: the last few
  // hundred of a crowd, whose blocks would otherwise stay until the next crowd.
  const bool spares_full = shed_since_trim_ != 0 && blocks_.kept() >= spare_blocks;
  if ((!crowd_idle && !crowd_gone && !spares_full) || now_ - last_trim_ < at_most_every) return;
  peak_connections_ = connections_;
  shed_since_trim_ = 0;
  last_trim_ = now_;
  blocks_.release();
  exchanges_.release();
  release_retired_reactor_records(*ioc_);
  ::malloc_trim(0);
}

void Worker::do_sweep() {
  sweeping_ = true;
  sweep_timer_->expires_after(sweep_period);
  sweep_timer_->async_wait([this](boost::system::error_code ec) {
    // A cancel that came after the timer fired does not stop it: check the drain here too.
    if (ec || !sweeping_) return;
    now_ = Clock::now();
    expired_.clear();
    shed_.clear();
    for (auto& t : timed_) {
      if (t.deadline() <= now_) expired_.push_back(&t);
      else if (t.shed_at() <= now_) shed_.push_back(&t);
    }
    for (auto* t : expired_) t->on_deadline();
    for (auto* t : shed_) t->on_shed();
    pool_.watch_idle(now_, runtime_->settings.upstream_idle);
    give_back_memory();
    do_sweep();
  });
}

}  // namespace bgproxy::proxy
