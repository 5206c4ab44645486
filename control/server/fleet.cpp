// Fleet: the resync read, the watch, compare-and-swap writes, the lease with its member and
// stats keys.
#include "control/server/fleet.hpp"

#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <set>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "control/core/fleet_stats.hpp"

namespace bgproxy::control {

namespace net = boost::asio;
namespace json = boost::json;
using cluster::EtcdResult;

namespace {

constexpr auto retry_period = std::chrono::seconds(1);

std::string utc_now() {
  const auto t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string instance_name(const config::Config& cfg, std::uint16_t admin_port) {
  if (!cfg.cluster.instance.empty()) return cfg.cluster.instance;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
  return std::string(host) + ":" + std::to_string(admin_port);
}

Fleet::Fleet(net::io_context& ioc, const config::Config& cfg, std::string instance, std::string admin_address,
             Owner& owner)
    : ioc_(ioc),
      cluster_(cfg.cluster),
      admin_address_(std::move(admin_address)),
      instance_(std::move(instance)),
      started_(utc_now()),
      owner_(owner),
      retry_timer_(ioc),
      lease_timer_(ioc) {}

Fleet::~Fleet() {
  *alive_ = false;
  if (client_) client_->close();
}

std::string Fleet::start() {
  auto options = cluster::client_options(cluster_);
  if (!options) return options.error().message;
  auto client = cluster::Client::create(ioc_, std::move(*options));
  if (!client) return client.error().message;
  client_ = std::move(*client);
  spdlog::info("cluster: instance {} joining the fleet at {} (prefix {})", instance_, client_->current_endpoint(),
               cluster_.prefix);
  resync();
  grant_lease();
  keep_lease();
  return {};
}

void Fleet::stop() {
  if (stopped_) return;
  stopped_ = true;
  retry_timer_.cancel();
  lease_timer_.cancel();
  if (watch_) watch_->stop();
  if (client_ && lease_ != 0) {
    // The answer does not matter: the lease expires by itself otherwise.
    client_->lease_revoke(lease_, [](EtcdResult<cluster::ResponseHeader>) {});
  }
}

// ---------------------------------------------------------------------------------------------
// Reading: the resync and the watch

void Fleet::resync() {
  if (resyncing_ || stopped_) return;
  resyncing_ = true;
  cluster::RangeOptions o;
  o.range_end = cluster::prefix_end(cluster_.prefix + "/");
  client_->range(cluster_.prefix + "/", o, [this, alive = alive_](EtcdResult<cluster::RangeResult> r) {
    if (*alive) on_resync_read(std::move(r));
  });
}

void Fleet::on_resync_read(EtcdResult<cluster::RangeResult> r) {
  resyncing_ = false;
  if (stopped_) return;
  if (!r) {
    set_connected(false, cluster::describe(r.error()));
    return retry_later();
  }
  stats_.clear();
  std::map<std::string, std::int64_t> present;
  const std::string services = cluster_.prefix + "/services/";
  const std::string members = cluster_.prefix + "/members/";
  std::set<std::string> live;
  for (const auto& kv : r->kvs) {
    take(kv, false);
    if (kv.key.starts_with(services)) present[kv.key.substr(services.size())] = kv.mod_revision;
    if (kv.key.starts_with(members)) live.insert(kv.key.substr(members.size()));
  }
  // Members whose lease expired while this instance did not watch.
  std::erase_if(members_, [&](const auto& m) {
    if (live.contains(m.first)) return false;
    spdlog::info("cluster: member {} left", m.first);
    return true;
  });
  if (!watch_) start_watch(r->header.revision + 1);
  // A new watch says when it is created; its connection resyncs again, and settles then.
  if (!watch_->connected()) return;
  set_connected(true, {});
  owner_.on_resynced(present);
}

void Fleet::retry_later() {
  retry_timer_.expires_after(retry_period);
  retry_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (!ec && *alive) resync();
  });
}

void Fleet::start_watch(std::int64_t from_revision) {
  cluster::WatchOptions o;
  o.key = cluster_.prefix + "/";
  o.range_end = cluster::prefix_end(o.key);
  o.start_revision = from_revision;
  // A lost watch must be noticed within about a lease's time, so status and metrics say so.
  o.ping_interval = std::chrono::milliseconds(500);
  o.max_backoff = std::chrono::milliseconds(1000);
  cluster::Watch::Handlers h;
  h.on_events = [this, alive = alive_](const cluster::WatchResponse& r) {
    if (*alive) on_events(r);
  };
  h.on_compacted = [this, alive = alive_](std::int64_t compact_revision) {
    if (!*alive) return;
    spdlog::warn("cluster: watch revision compacted (up to {}); reading the fleet's keys again", compact_revision);
    // The watch stopped: a fresh one starts after the new read.
    watch_.reset();
    resync();
  };
  h.on_connection = [this, alive = alive_](bool up, const cluster::EtcdError* why) {
    if (!*alive) return;
    if (!up) return set_connected(false, why ? cluster::describe(*why) : "watch closed");
    // Back after a break: read everything again so that what this instance did alone is settled.
    if (!connected()) resync();
  };
  watch_ = client_->watch(std::move(o), std::move(h));
}

void Fleet::on_events(const cluster::WatchResponse& r) {
  for (const auto& e : r.events) take(e.kv, e.type == cluster::WatchEvent::Type::del);
}

void Fleet::take(const cluster::KeyValue& kv, bool deleted) {
  const std::string root = cluster_.prefix + "/";
  if (!kv.key.starts_with(root)) return;
  const std::string_view rest = std::string_view(kv.key).substr(root.size());
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) return;
  const std::string_view kind = rest.substr(0, slash);
  const std::string name(rest.substr(slash + 1));
  if (kind == "services") {
    if (deleted) {
      spdlog::warn("cluster: key of service {} deleted in etcd; routing stays as it is", name);
      return;
    }
    owner_.on_service_value(name, kv.mod_revision, kv.value);
  } else if (kind == "members") {
    if (deleted) {
      if (members_.erase(name) != 0) spdlog::info("cluster: member {} left", name);
      return;
    }
    json::error_code ec;
    const auto v = json::parse(kv.value, ec);
    const auto* o = ec ? nullptr : v.if_object();
    FleetMember m;
    m.instance = name;
    m.connected = true;
    if (o != nullptr) {
      if (const auto* a = o->if_contains("address"); a && a->is_string()) m.address = a->get_string();
      if (const auto* rev = o->if_contains("revision"); rev && rev->is_int64()) m.revision = rev->get_int64();
    }
    if (!members_.contains(name)) spdlog::info("cluster: member {} joined ({})", name, m.address);
    members_[name] = std::move(m);
  } else if (kind == "stats") {
    const auto split = name.find('/');
    if (split == std::string::npos) return;
    const std::string service = name.substr(0, split);
    const std::string instance = name.substr(split + 1);
    if (deleted) {
      stats_[service].erase(instance);
      return;
    }
    auto w = parse_stats_document(kv.value);
    if (!w) {
      spdlog::warn("cluster: stats of {} from {} unusable: {}", service, instance, w.error());
      return;
    }
    stats_[service][instance] = std::move(*w);
  }
}

void Fleet::set_connected(bool connected, const std::string& why) {
  if (link_ == connected) return;
  link_ = connected;
  if (connected) {
    spdlog::info("cluster: connected to etcd at {} (instance {})", client_->current_endpoint(), instance_);
  } else {
    spdlog::warn("cluster: etcd unreachable: {}", why);
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

void Fleet::write_service(const std::string& service, std::int64_t expected, const std::string& value,
                          std::function<void(CasOutcome)> done) {
  client_->txn_cas(cluster_.prefix + "/services/" + service, expected, value, 0,
                   [this, alive = alive_, done = std::move(done)](EtcdResult<cluster::CasResult> r) {
                     if (!*alive) return;
                     CasOutcome out;
                     if (!r) {
                       out.kind = CasOutcome::Kind::unreachable;
                       out.why = cluster::describe(r.error());
                     } else if (r->succeeded) {
                       out.kind = CasOutcome::Kind::committed;
                       out.revision = r->header.revision;
                     } else {
                       out.kind = CasOutcome::Kind::conflict;
                       if (r->current) {
                         out.revision = r->current->mod_revision;
                         out.current = r->current->value;
                       }
                     }
                     done(std::move(out));
                   });
}

void Fleet::publish_stats(const std::string& service, const ServiceWindow& window) {
  if (!connected() || lease_ == 0 || stats_in_flight_[service]) return;
  stats_in_flight_[service] = true;
  client_->put(cluster_.prefix + "/stats/" + service + "/" + instance_, to_stats_document(window), lease_,
               [this, alive = alive_, service](EtcdResult<cluster::PutResult>) {
                 if (*alive) stats_in_flight_[service] = false;
               });
}

void Fleet::set_revision(std::int64_t revision) {
  if (revision == revision_) return;
  revision_ = revision;
  member_dirty_ = true;
  put_member();
}

std::vector<FleetMember> Fleet::members() const {
  std::vector<FleetMember> out;
  for (const auto& [name, m] : members_) {
    out.push_back(m);
    out.back().connected = connected();
    // Its own key lags behind by the put that carries the new revision.
    if (name == instance_) out.back().revision = revision_;
  }
  if (!members_.contains(instance_)) {
    // Not (yet, or no more) in etcd: still a member, one that is not connected.
    out.push_back(FleetMember{instance_, admin_address_, revision_, false});
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.instance < b.instance; });
  }
  return out;
}

void Fleet::add_others(const std::string& service, ServiceWindow& sum) const {
  // Cut off from etcd, the others' windows age: the local figures alone decide (SPEC §12).
  if (!connected()) return;
  const auto it = stats_.find(service);
  if (it == stats_.end()) return;
  for (const auto& [instance, w] : it->second) {
    if (instance != instance_) add_window(sum, w);
  }
}

// ---------------------------------------------------------------------------------------------
// The lease

void Fleet::keep_lease() {
  const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(cluster_.lease_ttl);
  lease_timer_.expires_after(std::max(ttl / 3, std::chrono::milliseconds(200)));
  lease_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive || stopped_) return;
    refresh_lease();
    keep_lease();
  });
}

void Fleet::refresh_lease() {
  if (lease_ == 0) return grant_lease();
  client_->lease_keepalive(lease_, [this, alive = alive_, id = lease_](EtcdResult<cluster::LeaseKeepAliveResult> r) {
    if (!*alive || id != lease_) return;
    if (r && r->ttl == 0) {
      spdlog::warn("cluster: lease of instance {} expired; taking a new one", instance_);
      lease_ = 0;
      return grant_lease();
    }
    if (r && member_dirty_) put_member();
  });
}

void Fleet::grant_lease() {
  if (granting_ || stopped_) return;
  granting_ = true;
  const auto ttl = std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(cluster_.lease_ttl).count());
  client_->lease_grant(std::chrono::seconds(ttl), [this, alive = alive_](EtcdResult<cluster::LeaseGrantResult> r) {
    if (!*alive) return;
    granting_ = false;
    if (!r) return;
    lease_ = r->id;
    member_dirty_ = true;
    put_member();
  });
}

void Fleet::put_member() {
  if (lease_ == 0 || stopped_) return;
  member_dirty_ = false;
  const json::object value{{"instance", instance_},
                           {"address", admin_address_},
                           {"version", BGPROXY_VERSION},
                           {"started", started_},
                           {"revision", revision_}};
  client_->put(cluster_.prefix + "/members/" + instance_, json::serialize(value), lease_,
               [this, alive = alive_](EtcdResult<cluster::PutResult> r) {
                 if (*alive && !r) member_dirty_ = true;
               });
}

}  // namespace bgproxy::control
