#pragma once
/// Fleet test harness (issue 13, SPEC §12): a real etcd on loopback (one member or three), the
/// demo backends blue and green, and up to three bgproxy instances "a", "b", "c" in front of the
/// same backends, each with its own config, state file, control socket and admin port, and
/// `cluster.instance` set to its name.
///
/// Everything is bounded: waits poll an observable (a `bgctl --json` answer, a response, a
/// metric, a log line) until a deadline; nothing synchronises on a bare sleep.
/// Thread: the test's thread, except bgctl() which may run from several threads at once.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "../cluster/etcd_server.hpp"
#include "../integration/harness.hpp"

namespace bgtest::fleet {

namespace json = boost::json;

/// The bgctl binary under test (compile definition set by tests/CMakeLists.txt).
const char* bgctl_bin();

struct FleetOptions {
  std::size_t etcd_members = 1;                        ///< 1 (a single member) or 3
  std::vector<std::string> instances{"a", "b", "c"};   ///< started in this order
  std::string lease_ttl = "2s";
  std::string etcd_timeout = "1s";                     ///< cluster.etcd.timeout
  std::string prefix = "/bgproxy/fleet-test";
  /// Raw YAML lines added to the service (watchdog, canary, sticky ...), as ProxyConfig's.
  std::string service_extra = "sticky: none\n";
  /// Raw top-level YAML lines (a `notify:` section), as ProxyConfig's.
  std::string top_extra;
  /// Which etcd members an instance is given as endpoints (indexes); absent = every member.
  std::map<std::string, std::vector<std::size_t>> endpoints_of;
  /// Wait at start until every instance is connected and sees every instance as a member.
  bool wait_joined = true;
};

/// The fixture: start_fleet() first, then the helpers. On failure TearDown prints the tail of
/// every instance's log and of the etcd members' logs (and the temp dir is kept).
class FleetTest : public ::testing::Test {
 protected:
  void TearDown() override;

  void start_fleet(FleetOptions o);

  // --- etcd
  std::size_t etcd_size() const { return options_.etcd_members; }
  etcd::Member& etcd_member(std::size_t i);
  /// Index of the member that is the raft leader now, by `etcdctl endpoint status` on every
  /// running member; nullopt when none of them reports one.
  std::optional<std::size_t> etcd_leader();
  /// Waits until a running member reports a leader that is running.
  std::optional<std::size_t> wait_etcd_leader(Ms timeout);
  /// The endpoints list of `instance` as YAML: ["http://127.0.0.1:P", ...].
  std::string endpoints_yaml(const std::string& instance) const;

  // --- instances
  /// (Re)starts `instance` with its config, state file and socket; waits for its ready line only.
  Proxy& start_instance(const std::string& instance);
  Proxy& proxy(const std::string& instance);
  bool has_proxy(const std::string& instance) const { return proxies_.count(instance) != 0; }
  /// SIGKILL (or SIGTERM with graceful=true) and reap; the Proxy object stays for its log.
  void stop_instance(const std::string& instance, bool graceful = false);
  std::string socket_of(const std::string& instance) const;
  std::string log_of(const std::string& instance);

  // --- bgctl
  /// `bgctl -S SOCKET ARGS...` (args may start with global flags like --json or --local).
  CommandResult bgctl(const std::string& instance, std::vector<std::string> args, Ms timeout = Ms(10000));
  /// `bgctl -S SOCKET --json ARGS...`, which must exit 0 with ok:true (else throws).
  json::object ctl(const std::string& instance, std::vector<std::string> args);
  json::object status_json(const std::string& instance);
  /// services[0] of status_json.
  json::object service_status(const std::string& instance);
  /// `bgctl --json history --limit 1000`'s array, oldest first.
  json::array history_json(const std::string& instance);
  /// Green weight of services[0] in `instance`'s status.
  double green_weight(const std::string& instance);
  std::string phase(const std::string& instance);

  // --- traffic
  /// One GET through `instance` (fresh connection); the answering backend's name ("blue",
  /// "green"), or "" when no 2xx/5xx answer from a backend came back. `extra` = raw header lines.
  std::string routed_color(const std::string& instance, const std::string& extra = "");
  /// `n` GETs through `instance` forced to `color` by the override header; @return their statuses.
  std::vector<int> send_forced(const std::string& instance, const std::string& color, int n);

  // --- metrics
  std::optional<double> metric(const std::string& instance, const std::string& name,
                               const std::map<std::string, std::string>& labels = {});

  /// Polls `pred` every `every` until it holds or `timeout` passed; @return whether it held.
  static bool wait_until(const std::function<bool()>& pred, Ms timeout, Ms every = Ms(20));

  /// Waits until every running instance has fleet.connected and lists `members` (sorted names).
  bool wait_members(const std::string& instance, const std::vector<std::string>& members, Ms timeout);
  /// Waits until every listed instance has published its window of service app (its stats key
  /// exists in etcd, read through member 0).
  bool wait_stats_published(const std::vector<std::string>& instances, Ms timeout);
  /// Waits until every listed instance reports green weight `green`.
  bool wait_green(const std::vector<std::string>& instances, double green, Ms timeout);

  TempDir dir_;
  FleetOptions options_;
  std::unique_ptr<etcd::Member> single_;
  std::unique_ptr<etcd::Cluster> cluster_;
  std::unique_ptr<Backend> blue_, green_;
  std::map<std::string, ProxyConfig> configs_;
  std::map<std::string, int> index_;
  std::map<std::string, std::unique_ptr<Proxy>> proxies_;
  std::vector<std::unique_ptr<Proxy>> stopped_;  ///< earlier runs of restarted instances, for their logs
};

/// Entries of `history` whose `command` is `verb`.
std::vector<json::object> entries(const json::array& history, const std::string& verb);
/// A JSON number as a double.
double num(const json::value& v);
/// A string field, or "" when absent or not a string.
std::string str(const json::object& o, const char* key);

}  // namespace bgtest::fleet
