#include "proxy/app/server.hpp"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <utility>
#include <thread>

#include <boost/asio/post.hpp>
#include <spdlog/async.h>
#include <spdlog/spdlog.h>

#include "bgproxy/config/parse.hpp"
#include "proxy/admin/metrics.hpp"
#include "proxy/admin/status.hpp"
#include "proxy/app/sockets.hpp"

namespace bgproxy::proxy {

Server::Server(config::Config cfg)
    : initial_config_(std::make_shared<const config::Config>(std::move(cfg))),
      signals_(ioc_, SIGTERM, SIGINT, SIGHUP),
      shutdown_timer_(ioc_) {}

Server::~Server() {
  for (auto& w : workers_) w->stop();
  workers_.clear();
}

bool Server::prepare(api::ListeningSockets* inherited) {
  try {
    runtime_ = make_runtime(initial_config_, nullptr);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return false;
  }
  initial_config_.reset();
  const auto& cfg = *runtime_->config;

  // Until the control plane publishes the state it restored, route by `initial`.
  std::vector<std::uint32_t> weights;
  for (const auto& s : cfg.services) weights.push_back(s.initial_green_bp);
  table_ = std::make_shared<const routing::RoutingTable>(routing::build_table(cfg, weights, 1));

  const unsigned threads = cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < threads; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, runtime_, table_, connection_limit_, [this](std::uint32_t slot) {
      net::post(ioc_, [this, slot] {
        // The slot names a server of the generation that failed; report it by its current id.
        const auto& ids = runtime_->server_slot;
        const auto it = std::find(ids.begin(), ids.end(), slot);
        if (it != ids.end() && on_ejection_) on_ejection_(static_cast<std::uint32_t>(it - ids.begin()));
      });
    }));
  }

  try {
    const auto keys = listener_keys(cfg);
    for (std::size_t li = 0; li < cfg.listen.size(); ++li) {
      const auto& l = cfg.listen[li];
      ListenerState state{keys[li], l.address.text, {}, nullptr, {}, l.speaks(config::Protocol::h2c), l.speaks(config::Protocol::http1)};
      std::vector<int> taken;
      if (inherited) {
        for (auto& il : inherited->listeners) {
          if (il.address == state.key) taken = std::exchange(il.fds, {});
        }
      }
      auto sockets = bind_listener_sockets(l, state, std::move(taken));
      for (std::size_t i = 0; i < sockets.size(); ++i) workers_[i % workers_.size()]->add_listener(std::move(sockets[i]));
      listeners_.push_back(std::move(state));
    }
    if (inherited && inherited->admin_fd >= 0 && inherited->admin_address == cfg.admin.address.text) {
      tcp::acceptor admin(ioc_);
      tcp::endpoint local;
      socklen_t len = static_cast<socklen_t>(local.capacity());
      ::getsockname(inherited->admin_fd, local.data(), &len);
      local.resize(len);
      admin.assign(local.protocol(), std::exchange(inherited->admin_fd, -1));
      admin_ = make_admin(std::move(admin));
    } else {
      admin_ = make_admin(bind_listener(ioc_, resolve(ioc_, cfg.admin.address), false));
    }
  } catch (const TlsLoadError& e) {
    spdlog::error("{}", e.what());
    return false;
  } catch (const boost::system::system_error& e) {
    spdlog::error("cannot listen: {}", e.what());
    return false;
  }
  return true;
}

std::unique_ptr<AdminServer> Server::make_admin(tcp::acceptor&& bound) {
  admin_text_ = endpoint_text(bound.local_endpoint());
  admin_fd_ = bound.native_handle();
  return std::make_unique<AdminServer>(
      ioc_, std::move(bound),
      AdminServer::Handlers{
          [this](auto reply) {
            collect([this, reply](stats::RequestStats s) {
              auto text = render_metrics(MetricsInput{*runtime_->config, runtime_->servers, *table_, s});
              text += render_reload_metrics();
              for (const auto& source : metrics_sources_) text += source();
              reply(std::move(text));
            });
          },
          [this](auto reply) { reply(render_status(*runtime_->config, *table_)); },
          [this](auto reply) {
            reply(page_data_source_ ? page_data_source_() : std::string(R"({"ok":false,"error":"starting"})"));
          },
          [this] { return ready_ && !stopping_; }});
}

int Server::run() {
  admin_->start();
  for (auto& w : workers_) w->start();
  signals_.async_wait([this](boost::system::error_code ec, int signo) {
    if (!ec) on_signal(signo);
  });
  work_.emplace(ioc_.get_executor());
  ready_ = true;
  std::string listen_text;
  for (const auto& l : listeners_) listen_text += (listen_text.empty() ? "" : ",") + l.bound_text;
  spdlog::info("bgproxy ready: listen={} admin={} threads={} services={}", listen_text, admin_text_,
               workers_.size(), runtime_->config->services.size());
  if (on_ready_ && !on_ready_()) {
    handed_over_ = true;
    exit_code_ = 1;
    shutdown();
  } else {
    sd_notify(0, "READY=1");
    feed_systemd_watchdog();
  }
  ioc_.run();
  spdlog::info("bgproxy stopped");
  return exit_code_;
}

void Server::publish(routing::RoutingTableConstSharedPtr t, std::function<void()> done) {
  table_ = t;
  auto pending = std::make_shared<std::size_t>(workers_.size());
  auto finish = std::make_shared<std::function<void()>>(std::move(done));
  for (auto& w : workers_) {
    w->publish(t, [this, pending, finish] {
      net::post(ioc_, [pending, finish] {
        if (--*pending == 0) (*finish)();
      });
    });
  }
}

void Server::add_metrics_source(std::function<std::string()> render) { metrics_sources_.push_back(std::move(render)); }

void Server::set_page_data_source(std::function<std::string()> render) { page_data_source_ = std::move(render); }

void Server::on_stop(std::function<void()> stop) { stop_hooks_.push_back(std::move(stop)); }

void Server::on_passive_ejection(std::function<void(std::uint32_t server)> eject) { on_ejection_ = std::move(eject); }

void Server::cut_exchanges(int service, routing::Color color, std::function<void(std::uint64_t)> done) {
  struct Sum {
    std::uint64_t cut = 0;
    std::size_t pending;
    std::function<void(std::uint64_t)> done;
  };
  auto sum = std::make_shared<Sum>(Sum{0, workers_.size(), std::move(done)});
  for (auto& w : workers_) {
    w->cut(service, color, [this, sum](std::uint64_t n) {
      net::post(ioc_, [sum, n] {
        sum->cut += n;
        if (--sum->pending == 0) sum->done(sum->cut);
      });
    });
  }
}

void Server::collect(std::function<void(stats::RequestStats)> done) {
  struct Merge {
    stats::RequestStats merged;
    std::size_t pending;
    std::function<void(stats::RequestStats)> done;
  };
  auto m = std::make_shared<Merge>(Merge{{}, workers_.size(), std::move(done)});
  for (auto& w : workers_) {
    w->collect([this, m](stats::RequestStats s) {
      net::post(ioc_, [this, m, s = std::move(s)] {
        m->merged.merge(s);
        if (--m->pending == 0) m->done(by_id(m->merged));
      });
    });
  }
}

stats::RequestStats Server::by_id(const stats::RequestStats& by_slot) const {
  const auto& rt = *runtime_;
  stats::RequestStats out(rt.service_slot.size(), rt.server_slot.size());
  // A shard copied before the workers took a new generation may lack its newest slots.
  for (std::size_t i = 0; i < rt.service_slot.size(); ++i) {
    if (rt.service_slot[i] < by_slot.services.size()) out.services[i] = by_slot.services[rt.service_slot[i]];
  }
  for (std::size_t i = 0; i < rt.server_slot.size(); ++i) {
    if (rt.server_slot[i] < by_slot.servers.size()) out.servers[i] = by_slot.servers[rt.server_slot[i]];
  }
  out.unrouted = by_slot.unrouted;
  out.client_connections = by_slot.client_connections;
  out.tls_handshakes = by_slot.tls_handshakes;
  out.tls_handshake_failures = by_slot.tls_handshake_failures;
  out.http2_protocol_errors = by_slot.http2_protocol_errors;
  return out;
}

void Server::on_signal(int signo) {
  if (signo == SIGHUP) {
    // Behind any control command in progress, so a reload never lands mid-change.
    if (reload_signal_) reload_signal_();
    else reload_now();
    signals_.async_wait([this](boost::system::error_code ec, int s) {
      if (!ec) on_signal(s);
    });
    return;
  }
  shutdown();
}

void Server::reload_now() {
  reload([](const ReloadResult&) {});  // logged; a signal has nobody to answer
}

void Server::notify_reloading() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const auto usec =
      static_cast<unsigned long long>(now.tv_sec) * 1000000ULL + static_cast<unsigned long long>(now.tv_nsec) / 1000;
  sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
}

std::string Server::render_reload_metrics() const {
  return "# HELP bgproxy_config_reloads_total Reloads (SIGHUP or bgctl reload), by result.\n"
         "# TYPE bgproxy_config_reloads_total counter\n"
         "bgproxy_config_reloads_total{result=\"success\"} " + std::to_string(reloads_ok_) + "\n"
         "bgproxy_config_reloads_total{result=\"failure\"} " + std::to_string(reloads_failed_) + "\n";
}

void Server::feed_systemd_watchdog() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0) return;
  // Ping every worker; only when all of them have answered is the process alive
  // for systemd (HAProxy's wdt idea): a wedged event loop stops the heartbeat.
  watchdog_timer_.expires_after(std::chrono::microseconds(usec / 3));
  watchdog_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    auto pending = std::make_shared<std::size_t>(workers_.size());
    for (auto& w : workers_) {
      w->ping([this, pending] {
        net::post(ioc_, [this, pending] {
          if (--*pending == 0) heartbeat_.beat();
        });
      });
    }
    feed_systemd_watchdog();
  });
}

void Server::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  if (!handed_over_) sd_notify(0, "STOPPING=1");
  const auto grace = runtime_->config->timeouts.shutdown;
  spdlog::info("shutting down: draining in-flight requests (up to {} ms)", grace.count());
  admin_->stop();
  signals_.cancel();
  watchdog_timer_.cancel();
  for (auto& stop : stop_hooks_) stop();
  for (auto& w : workers_) w->drain();
  shutdown_timer_.expires_after(grace);
  shutdown_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    spdlog::warn("shutdown grace expired: closing remaining connections");
    for (auto& w : workers_) w->stop();
  });
  // Joining blocks, so it happens off the control loop, which it then stops.
  std::thread([this] {
    for (auto& w : workers_) w->join();
    // Stop rather than wait for the loop to run dry: an admin client (a Prometheus
    // scraper) may hold a keep-alive connection open for a long while.
    net::post(ioc_, [this] {
      shutdown_timer_.cancel();
      work_.reset();
      ioc_.stop();
    });
  }).detach();
}

}  // namespace bgproxy::proxy
