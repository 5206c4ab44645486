#include "proxy/app/server.hpp"

#include <systemd/sd-daemon.h>

#include <csignal>
#include <thread>

#include <boost/asio/post.hpp>
#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "bgproxy/config/parse.hpp"
#include "proxy/admin/metrics.hpp"
#include "proxy/admin/status.hpp"
#include "proxy/net/socket_options.hpp"

namespace bgproxy::proxy {
namespace {

constexpr int listen_backlog = 4096;

std::string endpoint_text(const tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

tcp::endpoint resolve(net::io_context& ioc, const config::Endpoint& e) {
  tcp::resolver resolver(ioc);
  return *resolver.resolve(e.host, std::to_string(e.port), tcp::resolver::numeric_service).begin();
}

tcp::acceptor bind_listener(net::io_context& ioc, const tcp::endpoint& ep, bool reuse_port) {
  tcp::acceptor a(ioc);
  a.open(ep.protocol());
  a.set_option(tcp::acceptor::reuse_address(true));
  if (reuse_port) a.set_option(ReusePort(true));
  a.bind(ep);
  a.listen(listen_backlog);
  return a;
}

std::shared_ptr<spdlog::logger> make_access_log(const config::AccessLog& cfg) {
  if (cfg.kind == config::AccessLog::Kind::off) return nullptr;
  spdlog::init_thread_pool(16384, 1);
  std::shared_ptr<spdlog::logger> log;
  // The data plane must never wait for the log: a full queue drops the oldest lines.
  if (cfg.kind == config::AccessLog::Kind::file) {
    log = spdlog::create_async_nb<spdlog::sinks::basic_file_sink_mt>("access", cfg.path);
  } else {
    log = spdlog::create_async_nb<spdlog::sinks::stdout_sink_mt>("access");
  }
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %v");
  log->flush_on(spdlog::level::info);
  return log;
}

}  // namespace

Server::Server(config::Config cfg) : signals_(ioc_, SIGTERM, SIGINT, SIGHUP), shutdown_timer_(ioc_) {
  runtime_.config = std::make_shared<const config::Config>(std::move(cfg));
  runtime_.settings = Settings::from(*runtime_.config);
  runtime_.servers = routing::enumerate_servers(*runtime_.config);
  for (const auto& s : runtime_.servers) {
    const auto& hc = runtime_.config->services[s.service].health_check;
    runtime_.passive_threshold.push_back(hc.enabled ? hc.passive_failures : 0);
  }
  runtime_.report_ejection = [this](std::uint32_t server) {
    net::post(ioc_, [this, server] {
      if (on_ejection_) on_ejection_(server);
    });
  };
}

Server::~Server() {
  for (auto& w : workers_) w->stop();
  workers_.clear();
  spdlog::drop("access");
}

bool Server::prepare() {
  const auto& cfg = *runtime_.config;
  try {
    for (const auto& s : runtime_.servers) runtime_.endpoints.push_back(resolve(ioc_, s.endpoint));
  } catch (const std::exception& e) {
    spdlog::error("cannot resolve backend server: {}", e.what());
    return false;
  }
  try {
    runtime_.access_log = make_access_log(cfg.access_log);
  } catch (const std::exception& e) {
    spdlog::error("access_log: cannot open {}: {}", cfg.access_log.path, e.what());
    return false;
  }

  // Until the control plane publishes the state it restored, route by `initial`.
  std::vector<std::uint32_t> weights;
  for (const auto& s : cfg.services) weights.push_back(s.initial_green_bp);
  table_ = std::make_shared<const routing::RoutingTable>(routing::build_table(cfg, weights, 1));

  const unsigned threads = cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < threads; ++i) workers_.push_back(std::make_unique<Worker>(i, runtime_, table_));

  for (const auto& l : cfg.listen) {
    if (l.tls.empty()) {
      tls_listeners_.push_back(nullptr);
      continue;
    }
    try {
      auto contexts = TlsContexts::load(l.tls);
      spdlog::info("tls: {}: serving {}", l.address.text, contexts->describe());
      tls_listeners_.push_back(std::make_shared<TlsListener>(std::move(contexts)));
    } catch (const TlsLoadError& e) {
      spdlog::error("{}", e.what());
      return false;
    }
  }

  try {
    for (std::size_t li = 0; li < cfg.listen.size(); ++li) {
      const auto& l = cfg.listen[li];
      auto ep = resolve(ioc_, l.address);
      for (auto& w : workers_) {
        auto a = bind_listener(ioc_, ep, true);
        ep = a.local_endpoint();  // port 0: every worker joins the port the first one got
        w->add_acceptor(std::move(a), ListenerInfo{tls_listeners_[li]});
      }
      listen_text_ += (listen_text_.empty() ? "" : ",") + endpoint_text(ep);
    }
    auto admin_acceptor = bind_listener(ioc_, resolve(ioc_, cfg.admin.address), false);
    admin_text_ = endpoint_text(admin_acceptor.local_endpoint());
    admin_ = std::make_unique<AdminServer>(
        ioc_, std::move(admin_acceptor),
        AdminServer::Handlers{
            [this](auto reply) {
              collect([this, reply](stats::RequestStats s) {
                auto text = render_metrics(MetricsInput{*runtime_.config, runtime_.servers, *table_, s});
                text += render_reload_metrics();
                for (const auto& source : metrics_sources_) text += source();
                reply(std::move(text));
              });
            },
            [this](auto reply) { reply(render_status(*runtime_.config, *table_)); },
            [this] { return ready_ && !stopping_; }});
  } catch (const boost::system::system_error& e) {
    spdlog::error("cannot listen: {}", e.what());
    return false;
  }
  return true;
}

int Server::run() {
  admin_->start();
  for (auto& w : workers_) w->start();
  signals_.async_wait([this](boost::system::error_code ec, int signo) {
    if (!ec) on_signal(signo);
  });
  work_.emplace(ioc_.get_executor());
  ready_ = true;
  spdlog::info("bgproxy ready: listen={} admin={} threads={} services={}", listen_text_, admin_text_,
               workers_.size(), runtime_.config->services.size());
  sd_notify(0, "READY=1");
  feed_systemd_watchdog();
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

void Server::on_stop(std::function<void()> stop) { stop_hooks_.push_back(std::move(stop)); }

void Server::on_passive_ejection(std::function<void(std::uint32_t server)> eject) { on_ejection_ = std::move(eject); }

void Server::collect(std::function<void(stats::RequestStats)> done) {
  struct Merge {
    stats::RequestStats merged;
    std::size_t pending;
    std::function<void(stats::RequestStats)> done;
  };
  auto m = std::make_shared<Merge>(Merge{{}, workers_.size(), std::move(done)});
  for (auto& w : workers_) {
    w->collect([this, m](stats::RequestStats s) {
      net::post(ioc_, [m, s = std::move(s)] {
        m->merged.merge(s);
        if (--m->pending == 0) m->done(std::move(m->merged));
      });
    });
  }
}

void Server::on_signal(int signo) {
  if (signo == SIGHUP) {
    reload();  // logged; a signal has nobody to answer
    signals_.async_wait([this](boost::system::error_code ec, int s) {
      if (!ec) on_signal(s);
    });
    return;
  }
  shutdown();
}

std::string Server::reload() {
  notify_reloading();
  auto problem = reload_config();
  sd_notify(0, "READY=1");
  return problem;
}

void Server::notify_reloading() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const auto usec =
      static_cast<unsigned long long>(now.tv_sec) * 1000000ULL + static_cast<unsigned long long>(now.tv_nsec) / 1000;
  sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
}

std::string Server::reload_config() {
  // Issue #7 applies a new config atomically; until then a reload validates the
  // file so an operator learns about mistakes, and keeps serving the old config.
  // TLS certificates are the exception: they are loaded again and used for new handshakes.
  auto parsed = config::load_file(runtime_.config->source_path);
  if (!parsed) {
    ++reloads_failed_;
    spdlog::error("reload refused, keeping the running config: {}", parsed.error().message);
    return "reload refused, keeping the running config: " + parsed.error().message;
  }
  if (auto problem = reload_certificates(*parsed); !problem.empty()) {
    ++reloads_failed_;
    spdlog::error("reload refused, keeping the running certificates: {}", problem);
    return "reload refused, keeping the running certificates: " + problem;
  }
  ++reloads_ok_;
  spdlog::warn("reload: {} is valid; applying a changed config needs a restart in this version",
               runtime_.config->source_path);
  return {};
}

std::string Server::reload_certificates(const config::Config& next) {
  const auto& running = runtime_.config->listen;
  // Everything is loaded before anything is replaced: one bad file keeps all the old ones.
  std::vector<TlsContextsPtr> loaded(running.size());
  for (std::size_t i = 0; i < running.size(); ++i) {
    if (!tls_listeners_[i]) continue;
    // Listener addresses need a restart; certificate paths of a listener that is still
    // there and still TLS follow the new file.
    const bool same = i < next.listen.size() && next.listen[i].address.text == running[i].address.text &&
                      !next.listen[i].tls.empty();
    try {
      loaded[i] = TlsContexts::load(same ? next.listen[i].tls : running[i].tls);
    } catch (const TlsLoadError& e) {
      return e.what();
    }
  }
  for (std::size_t i = 0; i < running.size(); ++i) {
    if (!loaded[i]) continue;
    spdlog::info("tls: {}: certificates reloaded, serving {}", running[i].address.text, loaded[i]->describe());
    tls_listeners_[i]->replace(std::move(loaded[i]));
  }
  return {};
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
        net::post(ioc_, [pending] {
          if (--*pending == 0) sd_notify(0, "WATCHDOG=1");
        });
      });
    }
    feed_systemd_watchdog();
  });
}

void Server::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  sd_notify(0, "STOPPING=1");
  const auto grace = runtime_.config->timeouts.shutdown;
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
