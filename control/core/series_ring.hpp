#pragma once
/// bgproxy::control — the admin web page's charts: per service and color, the request rate,
/// error rate and p95 of each of the last 15 minutes' seconds, as the control loop collected
/// them. Fixed size (every service's rings are allocated once), so it holds the same memory
/// after a day as after 15 minutes.
/// Pure: the caller says when each second ended. Thread: control.

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "control/core/service_runtime.hpp"
#include "control/core/stats_history.hpp"

namespace bgproxy::control {

/// One second of one color.
struct SecondFigures {
  float rps = 0;
  float error_rate = 0;
  float p95_seconds = 0;
};

class SeriesRing {
 public:
  static constexpr std::size_t capacity = 900;  ///< seconds: 15 minutes

  explicit SeriesRing(std::size_t services) : services_(services) {}

  /// Appends the second that ended at `unix_ms`, overwriting the oldest once full.
  /// @param figures per service, per color; a service beyond it gets zeros
  void push(std::int64_t unix_ms, const WindowFigures& figures);

  std::size_t size() const noexcept { return size_; }
  /// The i-th second, oldest first (i < size()).
  std::int64_t time_ms(std::size_t i) const noexcept { return times_[slot(i)]; }
  const SecondFigures& at(std::size_t service, std::size_t color, std::size_t i) const noexcept {
    return services_[service][color][slot(i)];
  }
  std::size_t services() const noexcept { return services_.size(); }

  /// A reload: each service keeps its own seconds; a new one has zeros for the seconds before it.
  void renumber(const ServiceRenumbering& renumbering) { services_ = renumbering.apply(services_); }

 private:
  using Series = std::array<std::array<SecondFigures, capacity>, 2>;  ///< by routing::Color
  std::size_t slot(std::size_t i) const noexcept { return (next_ + capacity - size_ + i) % capacity; }

  std::vector<Series> services_;
  std::array<std::int64_t, capacity> times_{};
  std::size_t next_ = 0;  ///< where the next second goes
  std::size_t size_ = 0;
};

}  // namespace bgproxy::control
