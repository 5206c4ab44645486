// Server: the old process's side of a zero-downtime binary upgrade (see control/server/takeover.hpp).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <spdlog/spdlog.h>

#include "proxy/app/server.hpp"

extern char** environ;

namespace bgproxy::proxy {

namespace {

/// Writes `n` in decimal at `out` (room for 11 characters); async-signal-safe.
void write_decimal(char* out, long n) {
  char digits[24];
  int len = 0;
  do {
    digits[len++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n > 0);
  for (int i = 0; i < len; ++i) out[i] = digits[len - 1 - i];
  out[len] = '\0';
}

}  // namespace

void Server::set_command_line(std::vector<std::string> argv) {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  exe_path_ = ec ? argv.at(0) : exe.string();
  argv_ = std::move(argv);
}

api::ListeningSockets Server::listening_sockets() const {
  api::ListeningSockets out;
  for (const auto& l : listeners_) out.listeners.push_back({l.key, l.fds});
  out.admin_address = runtime_->config->admin.address.text;
  out.admin_fd = admin_fd_;
  return out;
}

std::string Server::start_successor(const std::string& takeover_from, std::function<void()> exited) {
  if (exe_path_.empty()) return "upgrade: this process does not know its command line";
  if (::access(exe_path_.c_str(), X_OK) != 0) {
    return "upgrade: cannot run " + exe_path_ + ": " + std::strerror(errno);
  }
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (auto& a : argv_) args.push_back(a.data());
  args.push_back(nullptr);
  // systemd's watchdog variables name the process that must ping: the new one will be it.
  std::vector<std::string> env_storage;
  std::vector<char*> env;
  const bool watchdog = std::getenv("WATCHDOG_USEC") != nullptr;
  char watchdog_pid[32] = "WATCHDOG_PID=";
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "WATCHDOG_PID=", 13) != 0 && std::strncmp(*e, "BGPROXY_TAKEOVER_FROM=", 22) != 0) {
      env.push_back(*e);
    }
  }
  if (watchdog) env.push_back(watchdog_pid);
  std::string takeover = "BGPROXY_TAKEOVER_FROM=" + takeover_from;
  env.push_back(takeover.data());
  env.push_back(nullptr);
  rlimit files{};
  const int max_fd = ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY
                         ? static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1 << 20))
                         : 65536;
  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) return std::string("upgrade: pipe: ") + std::strerror(errno);
  // The life line: the new process holds its write end (fd 4) without knowing; we read EOF
  // when it exits, so a new process that dies before taking over fails the upgrade at once.
  int life_pipe[2];
  if (::pipe2(life_pipe, O_CLOEXEC) != 0) {
    ::close(status_pipe[0]);
    ::close(status_pipe[1]);
    return std::string("upgrade: pipe: ") + std::strerror(errno);
  }

  const pid_t child = ::fork();
  if (child < 0) {
    for (int fd : {status_pipe[0], status_pipe[1], life_pipe[0], life_pipe[1]}) ::close(fd);
    return std::string("upgrade: fork: ") + std::strerror(errno);
  }
  if (child == 0) {
    // A grandchild, so the new process is nobody's zombie and outlives us. _Fork: no atfork
    // handlers in the child of a multithreaded process.
    if (::_Fork() != 0) ::_exit(0);
    // Only the status pipe and stdio cross exec: no client or listening socket leaks into the
    // new process (it receives the listening ones over the control socket). Asio's sockets are
    // not close-on-exec.
    ::dup2(status_pipe[1], 3);
    ::fcntl(3, F_SETFD, FD_CLOEXEC);
    ::dup2(life_pipe[1], 4);  // not close-on-exec
    if (::close_range(5, ~0U, 0) != 0) {
      for (int fd = 5; fd < max_fd; ++fd) ::close(fd);
    }
    write_decimal(watchdog_pid + 13, ::getpid());
    ::execve(exe_path_.c_str(), args.data(), env.data());
    const int err = errno;
    (void)!::write(3, &err, sizeof err);
    ::_exit(127);
  }
  ::close(status_pipe[1]);
  ::close(life_pipe[1]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  int exec_errno = 0;
  ssize_t n;
  while ((n = ::read(status_pipe[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
  }
  ::close(status_pipe[0]);
  if (n > 0) {
    ::close(life_pipe[0]);
    return "upgrade: cannot start " + exe_path_ + ": " + std::strerror(exec_errno);
  }
  auto life = std::make_shared<net::posix::stream_descriptor>(ioc_, life_pipe[0]);
  auto byte = std::make_shared<char>();
  life->async_read_some(net::buffer(byte.get(), 1), [life, byte, exited = std::move(exited)](
                                                         boost::system::error_code, std::size_t) {
    if (exited) exited();
  });
  spdlog::info("upgrade: started {}; waiting for it to take over", exe_path_);
  return {};
}

void Server::hand_over(std::int32_t new_pid) {
  // systemd follows the new main process; this one must not announce that the service stops.
  sd_notifyf(0, "MAINPID=%d", static_cast<int>(new_pid));
  handed_over_ = true;
  shutdown();
}

}  // namespace bgproxy::proxy
