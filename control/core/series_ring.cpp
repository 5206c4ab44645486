#include "control/core/series_ring.hpp"

namespace bgproxy::control {

void SeriesRing::push(std::int64_t unix_ms, const WindowFigures& figures) {
  times_[next_] = unix_ms;
  for (std::size_t si = 0; si < services_.size(); ++si) {
    for (std::size_t c = 0; c < 2; ++c) {
      SecondFigures f;
      if (si < figures.size()) {
        const auto& w = figures[si][c];
        f = {static_cast<float>(w.rps), static_cast<float>(w.error_rate), static_cast<float>(w.p95_seconds)};
      }
      services_[si][c][next_] = f;
    }
  }
  next_ = (next_ + 1) % capacity;
  if (size_ < capacity) ++size_;
}

}  // namespace bgproxy::control
