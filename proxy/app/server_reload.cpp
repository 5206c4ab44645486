// Server: building config generations and applying a reload as one step.
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include <boost/asio/post.hpp>
#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "bgproxy/config/parse.hpp"
#include "proxy/app/server.hpp"
#include "proxy/app/sockets.hpp"

namespace bgproxy::proxy {

namespace {

bool same_access_log(const config::AccessLog& a, const config::AccessLog& b) {
  return a.kind == b.kind && a.path == b.path;
}

}  // namespace

/// Everything a reload prepares before it changes anything; destroying it undoes it
/// (new sockets close, loaded certificates are dropped).
struct Server::Staged {
  RuntimeConstSharedPtr runtime;
  std::vector<ListenerState> listeners;  ///< the new config's, in its order
  std::vector<std::vector<ListeningSocket>> added;  ///< by worker
  std::vector<std::string> removed;
  std::vector<std::pair<std::string, ListenerInfo>> changed;
  std::vector<std::pair<std::shared_ptr<TlsListener>, TlsContextsPtr>> certificates;
  std::optional<tcp::acceptor> admin;  ///< bound when the admin address changed
  std::vector<std::string> added_text;  ///< "ADDRESS on BOUND", for the log
  std::vector<std::string> removed_text;  ///< their addresses, for the log
  std::vector<std::string> notes;  ///< what the reload leaves as it was, and why

  Staged() = default;
  Staged(Staged&&) = default;
  Staged& operator=(Staged&&) = default;
  ~Staged() {
    for (auto& per_worker : added) {
      for (auto& s : per_worker) {
        if (s.fd >= 0) ::close(s.fd);
      }
    }
  }
};

RuntimeConstSharedPtr Server::make_runtime(std::shared_ptr<const config::Config> cfg, const Runtime* previous) {
  auto rt = std::make_shared<Runtime>();
  rt->generation = previous ? previous->generation + 1 : 1;
  rt->config = cfg;
  rt->settings = Settings::from(*cfg);
  rt->servers = routing::enumerate_servers(*cfg);
  for (const auto& s : rt->servers) {
    try {
      rt->endpoints.push_back(resolve(ioc_, s.endpoint));
    } catch (const std::exception& e) {
      throw std::runtime_error("cannot resolve backend server " + s.endpoint.text + ": " + e.what());
    }
  }
  for (const auto& svc : cfg->services) rt->service_slot.push_back(slots_.service(svc.name));
  for (const auto& s : rt->servers) {
    rt->server_slot.push_back(slots_.server(cfg->services[s.service].name, s.color, s.endpoint.text));
  }
  rt->service_slots = slots_.services();
  rt->server_slots = slots_.servers();
  if (previous) {
    std::vector<std::int64_t> previous_id(rt->server_slots, -1);
    for (std::size_t id = 0; id < previous->server_slot.size(); ++id) {
      previous_id[previous->server_slot[id]] = static_cast<std::int64_t>(id);
    }
    for (std::size_t id = 0; id < rt->server_slot.size(); ++id) {
      const auto slot = rt->server_slot[id];
      const auto before = previous_id[slot];
      if (before < 0) continue;  // a new server has no connections yet
      const auto b = static_cast<std::size_t>(before);
      if (rt->endpoints[id] != previous->endpoints[b] || rt->settings.upstream_tls[id] ||
          previous->settings.upstream_tls[b] || rt->settings.upstream_h2[id] != previous->settings.upstream_h2[b]) {
        rt->renewed_slots.push_back(slot);
      }
    }
  }
  rt->passive_threshold.assign(rt->server_slots, 0);
  for (const auto& s : rt->servers) {
    const auto& hc = cfg->services[s.service].health_check;
    rt->passive_threshold[rt->server_slot[s.id]] = hc.enabled ? hc.passive_failures : 0;
  }

  const auto& log_cfg = cfg->access_log;
  if (previous && same_access_log(previous->config->access_log, log_cfg)) {
    rt->access_log = previous->access_log;
  } else if (log_cfg.kind != config::AccessLog::Kind::off) {
    if (!log_pool_) log_pool_ = std::make_shared<spdlog::details::thread_pool>(16384, 1);
    spdlog::sink_ptr sink;
    try {
      if (log_cfg.kind == config::AccessLog::Kind::file) {
        sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_cfg.path);
      } else {
        sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
      }
    } catch (const std::exception& e) {
      throw std::runtime_error("access_log: cannot open " + log_cfg.path + ": " + e.what());
    }
    // The data plane must never wait for the log: a full queue drops the oldest lines.
    auto log = std::make_shared<spdlog::async_logger>("access", std::move(sink), log_pool_,
                                                      spdlog::async_overflow_policy::overrun_oldest);
    log->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %v");
    log->flush_on(spdlog::level::info);
    rt->access_log = std::move(log);
  }
  return rt;
}

std::vector<ListeningSocket> Server::bind_listener_sockets(const config::Listener& l, ListenerState& state,
                                                           std::vector<int> inherited) {
  if (!l.tls.empty() && !state.tls) {
    auto contexts = TlsContexts::load(l.tls, l.protocols);
    spdlog::info("tls: {}: serving {}", l.address.text, contexts->describe());
    state.tls = std::make_shared<TlsListener>(std::move(contexts));
  }
  std::vector<ListeningSocket> sockets;
  std::optional<tcp::endpoint> ep;
  // Inherited sockets keep their accept queues; more workers than sockets join with new ones.
  for (int fd : inherited) {
    tcp::endpoint local;
    socklen_t len = static_cast<socklen_t>(local.capacity());
    if (::getsockname(fd, local.data(), &len) != 0) {
      ::close(fd);
      continue;
    }
    local.resize(len);
    ep = local;
    sockets.push_back(ListeningSocket{state.key, fd, local.protocol() == tcp::v6(), state.info()});
  }
  if (!ep) ep = resolve(ioc_, l.address);
  std::vector<tcp::acceptor> bound;
  for (std::size_t i = sockets.size(); i < workers_.size(); ++i) {
    bound.push_back(bind_listener(ioc_, *ep, true));
    ep = bound.back().local_endpoint();  // port 0: every worker joins the port the first one got
  }
  for (auto& a : bound) {
    const bool v6 = a.local_endpoint().protocol() == tcp::v6();
    sockets.push_back(ListeningSocket{state.key, a.release(), v6, state.info()});
  }
  state.bound_text = endpoint_text(*ep);
  state.fds.clear();
  for (const auto& s : sockets) state.fds.push_back(s.fd);
  return sockets;
}

Server::Staged Server::stage_reload(std::shared_ptr<const config::Config> next) {
  const auto& running = *runtime_->config;
  Staged st;
  if (next->threads != running.threads) st.notes.push_back("threads: the change applies at the next restart");
  if (next->control.socket != running.control.socket || next->control.mode != running.control.mode) {
    st.notes.push_back("control: the socket change applies at the next restart");
  }
  st.runtime = make_runtime(next, runtime_.get());
  st.added.resize(workers_.size());
  const auto keys = listener_keys(*next);
  for (std::size_t li = 0; li < next->listen.size(); ++li) {
    const auto& l = next->listen[li];
    const auto kept = std::find_if(listeners_.begin(), listeners_.end(),
                                   [&key = keys[li]](const ListenerState& s) { return s.key == key; });
    if (kept == listeners_.end()) {
      ListenerState state{keys[li], l.address.text, {}, nullptr, {}, l.speaks(config::Protocol::h2c), l.speaks(config::Protocol::http1)};
      auto sockets = bind_listener_sockets(l, state);
      for (std::size_t i = 0; i < sockets.size(); ++i) st.added[i % workers_.size()].push_back(std::move(sockets[i]));
      st.added_text.push_back(l.address.text + " on " + state.bound_text);
      st.listeners.push_back(std::move(state));
      continue;
    }
    // A listener that stays keeps its sockets; its certificates follow the new file.
    ListenerState state = *kept;
    bool changed = state.h2c != l.speaks(config::Protocol::h2c) || state.http1 != l.speaks(config::Protocol::http1);
    state.h2c = l.speaks(config::Protocol::h2c);
    state.http1 = l.speaks(config::Protocol::http1);
    if (l.tls.empty()) {
      changed = changed || state.tls;
      state.tls = nullptr;
    } else if (state.tls) {
      st.certificates.emplace_back(state.tls, TlsContexts::load(l.tls, l.protocols));
    } else {
      state.tls = std::make_shared<TlsListener>(TlsContexts::load(l.tls, l.protocols));
      changed = true;
    }
    if (changed) st.changed.emplace_back(state.key, state.info());
    st.listeners.push_back(std::move(state));
  }
  for (const auto& s : listeners_) {
    if (std::find(keys.begin(), keys.end(), s.key) == keys.end()) {
      st.removed.push_back(s.key);
      st.removed_text.push_back(s.address);
    }
  }
  if (next->admin.address.text != running.admin.address.text) {
    st.admin.emplace(bind_listener(ioc_, resolve(ioc_, next->admin.address), false));
  }
  return st;
}

void Server::reload(std::function<void(ReloadResult)> done) {
  notify_reloading();
  const auto refuse = [this, &done](const std::string& why) {
    ++reloads_failed_;
    spdlog::error("reload refused, keeping the running config: {}", why);
    sd_notify(0, "READY=1");
    done({false, "reload refused, keeping the running config: " + why});
  };
  if (stopping_) return refuse("shutting down");
  auto parsed = config::load_file(runtime_->config->source_path);
  if (!parsed) return refuse(parsed.error().message);
  auto next = std::make_shared<const config::Config>(std::move(*parsed));
  Staged staged;
  try {
    staged = stage_reload(next);
  } catch (const std::exception& e) {
    return refuse(e.what());
  }
  routing::RoutingTableConstSharedPtr table;
  std::function<void()> control_commit;
  if (prepare_reload_) {
    auto plan = prepare_reload_(next, staged.runtime->servers);
    if (!plan.error.empty()) return refuse(plan.error);
    table = std::move(plan.table);
    control_commit = std::move(plan.commit);
  } else {
    std::vector<std::uint32_t> weights;
    for (const auto& s : next->services) weights.push_back(s.initial_green_bp);
    table = std::make_shared<const routing::RoutingTable>(routing::build_table(*next, weights, table_->version + 1));
  }
  commit_reload(std::move(staged), std::move(table), std::move(control_commit), std::move(done));
}

void Server::commit_reload(Staged staged, routing::RoutingTableConstSharedPtr table,
                           std::function<void()> control_commit, std::function<void(ReloadResult)> done) {
  // Nothing below can fail: the reload is decided.
  for (auto& [listener, contexts] : staged.certificates) {
    spdlog::info("tls: certificates reloaded, serving {}", contexts->describe());
    listener->replace(std::move(contexts));
  }
  runtime_ = staged.runtime;
  table_ = table;
  listeners_ = std::move(staged.listeners);
  if (staged.admin) {
    admin_->stop();
    retired_admins_.push_back(std::move(admin_));
    admin_ = make_admin(std::move(*staged.admin));
    admin_->start();
    spdlog::info("reload: admin listener moved to {}", admin_text_);
  }
  for (const auto& text : staged.added_text) spdlog::info("listener added: {}", text);
  for (const auto& address : staged.removed_text) spdlog::info("listener removed: {}", address);
  std::string notes;
  for (const auto& note : staged.notes) {
    spdlog::warn("reload: {}", note);
    notes += (notes.empty() ? "" : "; ") + note;
  }

  auto pending = std::make_shared<std::size_t>(workers_.size());
  const auto generation = runtime_->generation;
  auto finish = [this, generation, notes, done = std::move(done)] {
    ++reloads_ok_;
    spdlog::info("reload: applied {} (generation {})", runtime_->config->source_path, generation);
    sd_notify(0, "READY=1");
    done({true, notes});
  };
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    WorkerUpdate u{runtime_, table_, std::move(staged.added[i]), staged.removed, staged.changed};
    staged.added[i].clear();  // the worker owns those sockets now
    workers_[i]->update(std::move(u), [this, pending, finish] {
      net::post(ioc_, [pending, finish] {
        if (--*pending == 0) finish();
      });
    });
  }
  // After the workers' updates are queued, so any table the control plane publishes from
  // now on reaches each worker after the generation it was built for.
  if (control_commit) control_commit();
}

}  // namespace bgproxy::proxy
