#pragma once
/// bgproxy::control — where the runtime state (state.hpp) is kept between changes and across
/// restarts: one interface, one implementation per backend. The control server reads the store
/// once at start and writes every change to it before the change runs and is acknowledged, so
/// what runs is what a restart restores. Backends: the local state file (state_file.hpp); a
/// cluster store that several instances share (etcd, README "Running a fleet") comes next.
/// Thread: control.

#include <optional>
#include <string>

#include <boost/system/result.hpp>

#include "control/core/state.hpp"

namespace bgproxy::control {

class StateStore {
 public:
  virtual ~StateStore() = default;

  struct Loaded {
    std::optional<State> state;  ///< nullopt: nothing usable is stored, start from the config's `initial`
    std::string problem;         ///< non-empty when what was stored is unusable (and what became of it)
  };
  /// Reads the stored state. Nothing stored is not a problem; something unusable is reported,
  /// and never silently lost.
  virtual Loaded load() = 0;

  /// Makes `s` the stored state.
  /// @return an error message naming the store and the cause when `s` could not be made durable;
  /// the caller then refuses the change `s` carries
  virtual boost::system::result<void, std::string> save(const State& s) = 0;

  /// Where the state is kept, for the log: "/var/lib/bgproxy/state.json".
  virtual const std::string& location() const noexcept = 0;
};

}  // namespace bgproxy::control
