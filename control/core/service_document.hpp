#pragma once
/// bgproxy::control — one service's shared state as a fleet keeps it in etcd (README "Running a
/// fleet"): the value of PREFIX/services/NAME, and how an instance takes such a value into its
/// own state. The value is the state file's document holding that one service and its newest
/// history entries, plus who wrote it and what the change was, so `etcdctl get` reads like the
/// state file and one reader serves both.
/// Pure. Thread: control.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

#include "bgproxy/config/config.hpp"
#include "control/core/state.hpp"

namespace bgproxy::control {

/// History entries of its service a value carries: enough for `bgctl history` on any member,
/// small enough that every change stays a small write.
inline constexpr std::size_t document_history = 100;

struct ServiceDocument {
  ServiceState service;
  std::vector<HistoryEntry> history;  ///< this service's newest entries, oldest first
  std::string by;                     ///< the instance that wrote it
  std::string change;                 ///< what the change was, for logs: "split green 30"
};

/// {"version":1,"services":[S],"history":[...],"by":"a","change":"split green 30"}
std::string to_document(const State& s, std::size_t service, std::string_view by, std::string_view change);
/// @return the document, or why it is unusable (naming the field)
boost::system::result<ServiceDocument, std::string> parse_document(std::string_view text);

/// `s` with service `service` as `doc` says: its state replaced, its history entries from the
/// document's oldest on replaced by the document's (older local ones stay), all entries in time
/// order, at most State::max_history. Taking the same document twice changes nothing more.
State adopt(const State& s, std::size_t service, const ServiceDocument& doc);

/// A history entry as one line for logs: "split green 30", "switch green", "rollback",
/// "canary advance", "server drain 127.0.0.1:5006".
std::string change_summary(const HistoryEntry& e);

}  // namespace bgproxy::control
