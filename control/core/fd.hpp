#pragma once
/// bgproxy::control::Fd — owns a POSIX file descriptor and closes it on scope exit.
/// Header-only, for the control side's plain-POSIX code: the state file writer (control/core)
/// and bgctl's socket client (control/bgctl, which links bg_control_core). The data plane's
/// sockets are Asio's and need no such class.
/// Thread: any (one owner).

#include <utility>

#include <unistd.h>

namespace bgproxy::control {

class Fd {
 public:
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }

  int get() const noexcept { return fd_; }
  /// Gives the descriptor up, for a caller that closes it by hand to check close()'s result.
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

}  // namespace bgproxy::control
