#pragma once
/// The one part of an active health check that differs by protocol (README "Health checks"):
/// asking a server once, over a connection kept between checks. HealthProbe does the rest — when,
/// for how long, and what a failure on a kept connection means — the same for every transport.
/// Thread: control.

#include <cstddef>
#include <functional>
#include <string>

namespace bgproxy::control {

/// A health answer with a longer body fails: it is small by nature, and a check buffers nothing
/// without bound.
inline constexpr std::size_t max_health_body = 64 * 1024;

/// One check as the transport saw it.
struct HealthAnswer {
  bool ok = false;
  unsigned status = 0;  ///< the HTTP status, 0 when none arrived
  std::string error;    ///< why not ok, as health::CheckResult::error ("status 503", "connect: ...")
  /// It failed on a connection kept from an earlier check, before any answer: the server may
  /// just have closed it while idle, which says nothing about the server's health.
  bool kept_connection_lost = false;
};

class HealthTransport {
 public:
  using Done = std::function<void(HealthAnswer)>;

  virtual ~HealthTransport() = default;

  /// Asks once, on the kept connection or on a new one. `done` runs once (possibly before
  /// check() returns), unless close() comes first. One check at a time.
  virtual void check(Done done) = 0;
  /// Drops the connection and the check in progress, whose `done` then never runs; the next
  /// check opens a new connection.
  virtual void close() = 0;
};

}  // namespace bgproxy::control
