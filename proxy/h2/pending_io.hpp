#pragma once
/// A read or write an HTTP/2 adapter holds for a session until it can complete (an H2Stream for
/// the client side, an H2Upstream for the backend side). Thread: the worker's.

#include <cstddef>
#include <optional>
#include <utility>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/system/error_code.hpp>

namespace bgproxy::proxy {

using IoHandler = boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;

/// A read or write of the session waiting on its stream. Its handler is only ever
/// move-constructed: Boost 1.81's any_completion_handler move-assignment copies the handler into
/// a new wrapper of itself, without end.
class PendingIo {
 public:
  explicit operator bool() const noexcept { return handler_.has_value(); }
  void set(IoHandler h) {
    handler_.reset();
    handler_.emplace(std::move(h));
  }
  IoHandler take() {
    IoHandler h(std::move(*handler_));
    handler_.reset();
    return h;
  }

 private:
  std::optional<IoHandler> handler_;
};

}  // namespace bgproxy::proxy
