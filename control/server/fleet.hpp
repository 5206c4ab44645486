#pragma once
/// The fleet's link to etcd (README "Running a fleet", SPEC §12) on the control thread: reads
/// and watches every key under the fleet's prefix, writes service keys by compare-and-swap,
/// keeps this instance's member key and stats keys alive under one lease. What the values mean
/// is the control server's business (control_server_fleet.cpp); this class moves them.
///
/// (Re)connecting: the first read of the prefix is retried until etcd answers; then a watch
/// from the read's revision carries every change, and after any break in it the prefix is read
/// again (a resync) so the owner can settle what it changed alone meanwhile. A watch from a
/// compacted revision resyncs too.
/// Thread: control.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bgproxy/config/config.hpp"
#include "control/cluster/etcd_client.hpp"
#include "control/core/fleet_view.hpp"
#include "control/core/stats_history.hpp"

namespace bgproxy::control {

class Fleet {
 public:
  /// What the fleet tells its owner; every call on the control thread.
  class Owner {
   public:
    virtual ~Owner() = default;
    /// A service key's value at `mod_revision`, from a resync's read or the watch, in revision
    /// order per key; values this instance wrote come back too.
    virtual void on_service_value(const std::string& service, std::int64_t mod_revision, const std::string& value) = 0;
    /// A resync's read was delivered; `present` are the services whose key exists, with their
    /// mod_revision. The owner writes what it changed alone, and creates missing keys.
    virtual void on_resynced(const std::map<std::string, std::int64_t>& present) = 0;
  };

  /// How a compare-and-swap of a service key ended.
  struct CasOutcome {
    enum class Kind { committed, conflict, unreachable };
    Kind kind = Kind::unreachable;
    std::int64_t revision = 0;  ///< committed: the key's new mod_revision; conflict: the current one (0: absent)
    std::string current;        ///< conflict: the current value
    std::string why;            ///< unreachable: etcd's or the transport's words
  };

  /// @param instance this instance's name (`cluster.instance` or hostname:admin port)
  /// @param admin_address where its admin listener is bound, for the member key
  Fleet(boost::asio::io_context& ioc, const config::Config& cfg, std::string instance, std::string admin_address,
        Owner& owner);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  /// @return empty, or why the fleet cannot start (a password or TLS file unusable)
  std::string start();
  /// Revokes this instance's lease (its member and stats keys go at once), best effort.
  void stop();

  /// Reads the fleet's keys again (after a reload added services: their keys get created).
  void refresh() { resync(); }

  /// Writes `value` to the service's key if its mod_revision is `expected` (0: it must not exist).
  void write_service(const std::string& service, std::int64_t expected, const std::string& value,
                     std::function<void(CasOutcome)> done);
  /// This instance's window of `service`, under its leased stats key (skipped while one is in flight).
  void publish_stats(const std::string& service, const ServiceWindow& window);
  /// The revision this instance routes by, for its member key.
  void set_revision(std::int64_t revision);

  bool connected() const noexcept { return link_.value_or(false); }
  const std::string& instance() const noexcept { return instance_; }
  std::vector<FleetMember> members() const;
  /// The other members' published windows of `service`, added to `sum`.
  void add_others(const std::string& service, ServiceWindow& sum) const;

 private:
  void resync();
  void on_resync_read(cluster::EtcdResult<cluster::RangeResult> r);
  void start_watch(std::int64_t from_revision);
  void on_events(const cluster::WatchResponse& r);
  void take(const cluster::KeyValue& kv, bool deleted);
  void set_connected(bool connected, const std::string& why);
  void retry_later();

  // The lease behind this instance's member and stats keys.
  void keep_lease();  ///< schedules the next refresh_lease()
  void refresh_lease();
  void grant_lease();
  void put_member();

  boost::asio::io_context& ioc_;
  const config::Cluster cluster_;
  const std::string admin_address_;
  const std::string instance_;
  const std::string started_;  ///< RFC 3339, for the member key
  Owner& owner_;
  std::unique_ptr<cluster::Client> client_;
  std::unique_ptr<cluster::Watch> watch_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer lease_timer_;
  std::optional<bool> link_;  ///< reaches etcd and watches it; nullopt until the first answer or failure
  bool resyncing_ = false;
  bool stopped_ = false;
  std::int64_t lease_ = 0;
  bool granting_ = false;
  std::int64_t revision_ = 0;
  bool member_dirty_ = true;  ///< the member key does not say what it should (yet)
  std::map<std::string, FleetMember> members_;               ///< by instance
  std::map<std::string, std::map<std::string, ServiceWindow>> stats_;  ///< by service, then instance
  std::map<std::string, bool> stats_in_flight_;              ///< by service
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

/// `cluster.instance`, else "HOSTNAME:PORT" with the admin listener's port.
std::string instance_name(const config::Config& cfg, std::uint16_t admin_port);

}  // namespace bgproxy::control
