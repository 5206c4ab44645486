#include "fleet_harness.hpp"

#include <signal.h>

#include <algorithm>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace bgtest::fleet {

namespace fs = std::filesystem;

const char* bgctl_bin() { return BGCTL_BIN; }

namespace {

std::string tail(const std::string& text, std::size_t lines) {
  std::size_t pos = text.size();
  for (std::size_t n = 0; pos > 0 && n <= lines; ++n) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

/// Lines of `text` containing `needle`, the last `max` of them.
std::string grep(const std::string& text, const std::string& needle, std::size_t max) {
  std::vector<std::string> hits;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) hits.push_back(line);
  std::string out;
  for (std::size_t i = hits.size() > max ? hits.size() - max : 0; i < hits.size(); ++i) out += hits[i] + "\n";
  return out;
}

}  // namespace

double num(const json::value& v) { return v.to_number<double>(); }

std::string str(const json::object& o, const char* key) {
  const auto* p = o.if_contains(key);
  return p && p->is_string() ? std::string(p->as_string()) : std::string();
}

std::vector<json::object> entries(const json::array& history, const std::string& verb) {
  std::vector<json::object> r;
  for (const auto& e : history)
    if (e.is_object() && str(e.as_object(), "command") == verb) r.push_back(e.as_object());
  return r;
}

// ---------------------------------------------------------------------------------------------

void FleetTest::start_fleet(FleetOptions o) {
  options_ = std::move(o);
  const fs::path etcd_dir = dir_ / "etcd";
  fs::create_directories(etcd_dir);
  if (options_.etcd_members == 1) {
    single_ = std::make_unique<etcd::Member>(etcd_dir);
  } else {
    cluster_ = std::make_unique<etcd::Cluster>(etcd_dir, options_.etcd_members);
  }
  blue_ = std::make_unique<Backend>("blue", dir_.path());
  green_ = std::make_unique<Backend>("green", dir_.path());
  int i = 0;
  for (const auto& name : options_.instances) {
    index_[name] = i++;
    ProxyConfig cfg;
    cfg.blue = {blue_->address()};
    cfg.green = {green_->address()};
    cfg.service_extra = options_.service_extra;
    cfg.top_extra = options_.top_extra;
    cfg.cluster = "etcd:\n"
                  "  endpoints: " + endpoints_yaml(name) + "\n"
                  "  prefix: " + options_.prefix + "\n"
                  "  timeout: " + options_.etcd_timeout + "\n"
                  "  lease_ttl: " + options_.lease_ttl + "\n"
                  "instance: " + name + "\n";
    configs_[name] = cfg;
  }
  for (const auto& name : options_.instances) start_instance(name);
  if (!options_.wait_joined) return;
  std::vector<std::string> sorted = options_.instances;
  std::sort(sorted.begin(), sorted.end());
  for (const auto& name : options_.instances) {
    if (!wait_members(name, sorted, Ms(10000)))
      throw std::runtime_error("instance " + name + " did not join the fleet within 10 s; status: " +
                               json::serialize(status_json(name)));
  }
}

etcd::Member& FleetTest::etcd_member(std::size_t i) {
  if (single_) {
    if (i != 0) throw std::out_of_range("one etcd member only");
    return *single_;
  }
  return cluster_->member(i);
}

std::string FleetTest::endpoints_yaml(const std::string& instance) const {
  std::vector<std::size_t> which;
  if (auto it = options_.endpoints_of.find(instance); it != options_.endpoints_of.end()) {
    which = it->second;
  } else {
    for (std::size_t i = 0; i < options_.etcd_members; ++i) which.push_back(i);
  }
  std::string y = "[";
  for (std::size_t k = 0; k < which.size(); ++k) {
    const auto& m = single_ ? *single_ : cluster_->member(which[k]);
    y += (k ? ", \"" : "\"") + m.url() + "\"";
  }
  return y + "]";
}

std::optional<std::size_t> FleetTest::etcd_leader() {
  for (std::size_t i = 0; i < etcd_size(); ++i) {
    auto& m = etcd_member(i);
    if (!m.running()) continue;
    const auto r = m.etcdctl({"endpoint", "status", "-w", "json"});
    if (r.exit_code != 0) continue;
    boost::system::error_code ec;
    // etcdctl prints one JSON array (possibly after warnings on other lines).
    const auto start = r.output.find('[');
    if (start == std::string::npos) continue;
    const auto v = json::parse(r.output.substr(start), ec);
    if (ec || !v.is_array() || v.as_array().empty()) continue;
    const auto& st = v.as_array()[0].as_object().at("Status").as_object();
    const auto& member_id = st.at("header").at("member_id");
    const auto* leader = st.if_contains("leader");
    if (leader == nullptr || leader->is_null()) continue;
    if (*leader == member_id) return i;
  }
  return std::nullopt;
}

std::optional<std::size_t> FleetTest::wait_etcd_leader(Ms timeout) {
  std::optional<std::size_t> leader;
  wait_until([&] { return (leader = etcd_leader()).has_value(); }, timeout, Ms(100));
  return leader;
}

// ---------------------------------------------------------------------------------------------

Proxy& FleetTest::start_instance(const std::string& instance) {
  if (auto it = proxies_.find(instance); it != proxies_.end()) {
    it->second->process().stop();
    stopped_.push_back(std::move(it->second));
    proxies_.erase(it);
  }
  auto p = std::make_unique<Proxy>(configs_.at(instance), dir_.path(), index_.at(instance));
  return *(proxies_[instance] = std::move(p));
}

Proxy& FleetTest::proxy(const std::string& instance) { return *proxies_.at(instance); }

void FleetTest::stop_instance(const std::string& instance, bool graceful) {
  auto& p = proxy(instance).process();
  if (graceful) {
    p.stop();
  } else {
    p.signal(SIGKILL);
    p.wait_exit(Ms(5000));
  }
}

std::string FleetTest::socket_of(const std::string& instance) const {
  return (dir_ / ("control-" + std::to_string(index_.at(instance)) + ".sock")).string();
}

std::string FleetTest::log_of(const std::string& instance) { return proxy(instance).process().stderr_text(); }

CommandResult FleetTest::bgctl(const std::string& instance, std::vector<std::string> args, Ms timeout) {
  std::vector<std::string> argv{bgctl_bin(), "-S", socket_of(instance)};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(std::move(argv), dir_.path(), timeout);
}

json::object FleetTest::ctl(const std::string& instance, std::vector<std::string> args) {
  std::string shown;
  for (const auto& a : args) shown += " " + a;
  args.insert(args.begin(), "--json");
  const auto r = bgctl(instance, args);
  if (r.exit_code != 0)
    throw std::runtime_error("bgctl" + shown + " on " + instance + ": exit " + std::to_string(r.exit_code) + ": " +
                             r.err + r.out);
  boost::system::error_code ec;
  const auto v = json::parse(r.out, ec);
  if (ec || !v.is_object() || !v.as_object().contains("ok") || !v.at("ok").as_bool())
    throw std::runtime_error("bgctl" + shown + " on " + instance + " not ok: " + r.out);
  return v.as_object();
}

json::object FleetTest::status_json(const std::string& instance) { return ctl(instance, {"status"}); }

json::object FleetTest::service_status(const std::string& instance) {
  return status_json(instance).at("services").as_array().at(0).as_object();
}

json::array FleetTest::history_json(const std::string& instance) {
  return ctl(instance, {"history", "--limit", "1000"}).at("history").as_array();
}

double FleetTest::green_weight(const std::string& instance) {
  return num(service_status(instance).at("weights").at("green"));
}

std::string FleetTest::phase(const std::string& instance) { return str(service_status(instance), "phase"); }

// ---------------------------------------------------------------------------------------------

std::string FleetTest::routed_color(const std::string& instance, const std::string& extra) {
  const auto r = round_trip(proxy(instance).port(), get_request("/fleet", "Connection: close\r\n" + extra), Ms(3000));
  if (!r) return "";
  return r->header("X-Backend").value_or("");
}

std::vector<int> FleetTest::send_forced(const std::string& instance, const std::string& color, int n) {
  std::vector<int> statuses;
  std::optional<Client> c;
  for (int i = 0; i < n; ++i) {
    if (!c) c = Client::try_connect(proxy(instance).port());
    if (!c) {
      statuses.push_back(0);
      continue;
    }
    std::optional<Response> r;
    if (c->try_send(get_request("/forced/" + std::to_string(i), "X-Bg-Color: " + color + "\r\n"))) r = c->read_response();
    statuses.push_back(r ? r->status : 0);
    if (!r || r->header("Connection").value_or("") == "close") c.reset();
  }
  return statuses;
}

std::optional<double> FleetTest::metric(const std::string& instance, const std::string& name,
                                        const std::map<std::string, std::string>& labels) {
  return metric_value(proxy(instance).metrics(), name, labels);
}

bool FleetTest::wait_until(const std::function<bool()>& pred, Ms timeout, Ms every) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

bool FleetTest::wait_members(const std::string& instance, const std::vector<std::string>& members, Ms timeout) {
  return wait_until(
      [&] {
        const auto st = status_json(instance);
        const auto* f = st.if_contains("fleet");
        if (f == nullptr || !f->is_object()) return false;
        const auto& fleet = f->as_object();
        if (!fleet.contains("connected") || !fleet.at("connected").as_bool()) return false;
        std::vector<std::string> names;
        for (const auto& m : fleet.at("members").as_array()) names.push_back(str(m.as_object(), "instance"));
        return names == members;
      },
      timeout, Ms(50));
}

bool FleetTest::wait_stats_published(const std::vector<std::string>& instances, Ms timeout) {
  return wait_until(
      [&] {
        const auto r = etcd_member(0).etcdctl({"get", "--prefix", "--keys-only", options_.prefix + "/stats/app/"});
        if (r.exit_code != 0) return false;
        for (const auto& i : instances)
          if (r.output.find(options_.prefix + "/stats/app/" + i + "\n") == std::string::npos) return false;
        return true;
      },
      timeout, Ms(100));
}

bool FleetTest::wait_green(const std::vector<std::string>& instances, double green, Ms timeout) {
  return wait_until(
      [&] {
        for (const auto& i : instances)
          if (green_weight(i) != green) return false;
        return true;
      },
      timeout);
}

void FleetTest::TearDown() {
  if (!HasFailure()) return;
  auto print = [](const std::string& tag, const std::string& text) {
    std::cerr << "----- " << tag << " cluster lines (last 30) -----\n"
              << grep(text, "cluster", 30) << "----- " << tag << " stderr (tail) -----\n"
              << tail(text, 30) << "\n";
  };
  for (auto& p : stopped_) print(p->process().tag() + " (earlier run)", p->process().stderr_text());
  for (auto& [name, p] : proxies_) print(name + " " + p->process().tag(), p->process().stderr_text());
  for (std::size_t i = 0; i < etcd_size() && (single_ || cluster_); ++i)
    std::cerr << "----- etcd member " << i << " log (tail) -----\n" << tail(etcd_member(i).log(), 10) << "\n";
}

}  // namespace bgtest::fleet
