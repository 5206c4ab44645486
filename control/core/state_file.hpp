#pragma once
/// bgproxy::control — the state store of a single instance: the state file (README "bgctl
/// walkthrough"), replaced atomically on every save (temp file in the same directory, fsync,
/// rename, fsync of the directory).
/// Thread: control.

#include <string>
#include <utility>

#include "control/core/state_store.hpp"

namespace bgproxy::control {

class StateFile final : public StateStore {
 public:
  explicit StateFile(std::string path) : path_(std::move(path)) {}

  /// Reads the file. Missing → {nullopt, ""}. Corrupt (unparsable JSON or wrong shape) → the file
  /// is renamed to "<path>.corrupt-<unix seconds>" and {nullopt, "state file X is corrupt (why); moved to Y"}.
  Loaded load() override;

  /// @return an error message (with errno text) when the state could not be made durable;
  /// the caller then refuses the change.
  boost::system::result<void, std::string> save(const State& s) override;

  const std::string& location() const noexcept override { return path_; }

 private:
  std::string path_;
};

}  // namespace bgproxy::control
