#pragma once
/// Objects a connection needs only while an exchange runs, kept by its worker between exchanges
/// (issue 14): a connection takes one when a request's first byte arrives and gives it back when
/// it goes idle, so idle connections hold none, and the objects, with the capacity their strings
/// and arrays grew to, are reused rather than freed and allocated again.
/// Thread: the owning worker's only.

#include <cstddef>
#include <memory>
#include <vector>

namespace bgproxy::proxy {

template <class T>
class FreeList {
 public:
  /// @param keep objects kept for reuse once given back; more are destroyed at once
  explicit FreeList(std::size_t keep) : keep_(keep) { spare_.reserve(keep); }

  std::unique_ptr<T> take() {
    if (spare_.empty()) return std::make_unique<T>();
    auto object = std::move(spare_.back());
    spare_.pop_back();
    return object;
  }
  void give(std::unique_ptr<T> object) noexcept {
    if (spare_.size() < keep_) spare_.push_back(std::move(object));
  }
  /// Destroys the objects kept for reuse (a crowd of clients went idle or away).
  void release() noexcept { spare_.clear(); }

  std::size_t kept() const noexcept { return spare_.size(); }

 private:
  std::vector<std::unique_ptr<T>> spare_;
  std::size_t keep_;
};

}  // namespace bgproxy::proxy
