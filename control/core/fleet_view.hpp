#pragma once
/// bgproxy::control — the fleet as `bgctl status` and /metrics show it (README "Running a
/// fleet"): whether this instance reaches etcd, the revision it routes by, the members.
/// Pure data. Thread: control.

#include <cstdint>
#include <string>
#include <vector>

namespace bgproxy::control {

struct FleetMember {
  std::string instance;
  std::string address;        ///< its admin listener
  std::int64_t revision = 0;  ///< the etcd revision it routes by, as it last published
  bool connected = false;     ///< its leased key is alive, as this instance last saw etcd
};

struct FleetView {
  bool connected = false;  ///< this instance reaches etcd and watches it
  std::string instance;
  std::int64_t revision = 0;                    ///< the newest service revision this instance routes by
  std::vector<FleetMember> members;             ///< by instance name
  std::vector<std::int64_t> service_revisions;  ///< by service index: its key's mod_revision, 0 = none yet
  std::vector<std::uint64_t> conflicts;         ///< by service index: changes that lost a compare-and-swap
};

}  // namespace bgproxy::control
