#pragma once
// Runtime knobs and counters of the demo backend, shared by all worker threads.

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace bgproxy::demo {

/// A consistent-enough copy of the knobs, taken once per request.
struct KnobValues {
  int status = 0;            ///< 0 = normal (200 or the `status` query parameter)
  double error_rate = 0.0;   ///< fraction of normal requests answered 500
  int latency_ms = 0;        ///< added before the response head of normal requests
  int health_status = 200;   ///< status of /health
  int idle_close_ms = 0;     ///< 0 = off; close keep-alive connections idle that long
  /// 0 = off; else every keep-alive response says `Keep-Alive: timeout=N` and a connection idle
  /// N seconds is closed (the shorter of this and idle_close_ms wins when both are set), the way
  /// Apache or Node.js announce and enforce their keep-alive timeout.
  int keep_alive_timeout = 0;
  /// 0 = off; else every keep-alive response says `Keep-Alive: max=M` and the connection is
  /// closed right after its M-th response, which itself still looks kept alive (no
  /// `Connection: close`): the proxy can only know from the number it was told.
  int keep_alive_max = 0;
  /// 0 = off; else the JSON echo carries `"app_version":N`: two backends told different numbers
  /// answer alike but for that field (shadow traffic's comparison, README "Shadow traffic").
  int app_version = 0;

  /// The idle time after which a kept-alive connection is closed, in ms; 0 = never.
  int idle_limit_ms() const noexcept;
};

/// Knobs settable through /_knobs. Thread: any (relaxed atomics; a request may see a mix of an old
/// and a new setting while /_knobs runs, which is fine for a test backend).
class Knobs {
public:
  KnobValues load() const noexcept;

  /// Applies `query` (the part of the target after '?'). Validates everything first, so a bad
  /// query changes nothing. @return empty on success, else a message naming the bad parameter.
  std::string apply(std::string_view query);

  /// True (deterministically, by a shared counter) for a `rate` fraction of calls.
  bool draw_error(double rate) noexcept;

  void append_json(std::string& out) const;

private:
  std::atomic<int> status_{0};
  std::atomic<double> error_rate_{0.0};
  std::atomic<int> latency_ms_{0};
  std::atomic<int> health_status_{200};
  std::atomic<int> idle_close_ms_{0};
  std::atomic<int> keep_alive_timeout_{0};
  std::atomic<int> keep_alive_max_{0};
  std::atomic<int> app_version_{0};
  std::atomic<std::uint64_t> error_draws_{0};
};

/// Process-wide counters reported by /_stats. Thread: any.
struct Stats {
  std::atomic<std::uint64_t> requests{0};          ///< excludes /_stats, /_knobs and /health
  std::atomic<std::uint64_t> connections{0};       ///< accepted so far (also the connection id)
  std::atomic<std::int64_t> open_connections{0};

  void append_json(std::string& out) const;
};

}  // namespace bgproxy::demo
