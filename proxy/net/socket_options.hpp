#pragma once
/// Socket options Asio does not name. SO_REUSEPORT lets every worker own an
/// acceptor on the same port, so the kernel spreads connections across workers
/// without a shared accept queue.

#include <sys/socket.h>

#include <cstddef>

namespace bgproxy::proxy {

/// A boolean option in Asio's SettableSocketOption shape.
template <int Level, int Name>
class BooleanOption {
 public:
  explicit BooleanOption(bool on) : value_(on ? 1 : 0) {}
  template <class Protocol> int level(const Protocol&) const { return Level; }
  template <class Protocol> int name(const Protocol&) const { return Name; }
  template <class Protocol> const int* data(const Protocol&) const { return &value_; }
  template <class Protocol> std::size_t size(const Protocol&) const { return sizeof(value_); }

 private:
  int value_;
};

using ReusePort = BooleanOption<SOL_SOCKET, SO_REUSEPORT>;

}  // namespace bgproxy::proxy
