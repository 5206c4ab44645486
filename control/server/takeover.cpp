#include "control/server/takeover.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <boost/json.hpp>

namespace bgproxy::control {

namespace json = boost::json;

namespace {

constexpr std::size_t max_fds = 1024;
constexpr std::size_t max_answer = 1 << 20;

[[noreturn]] void fail(const std::string& why) { throw std::runtime_error("upgrade: " + why); }

int connect_unix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) fail("control socket path too long: " + path);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

/// Reads one answer line; the fds come with its first bytes.
std::string read_answer(int fd, std::vector<int>& fds) {
  std::string line;
  char buf[4096];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds)];
  while (line.find('\n') == std::string::npos) {
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const auto n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const auto count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const auto* data = reinterpret_cast<const int*>(CMSG_DATA(c));
      fds.insert(fds.end(), data, data + count);
    }
    if (n < 0) fail(std::string("reading the answer: ") + std::strerror(errno));
    if (n == 0) fail("the running process closed the connection without an answer");
    if ((msg.msg_flags & MSG_CTRUNC) != 0) fail("too many sockets to take over");
    line.append(buf, static_cast<std::size_t>(n));
    if (line.size() > max_answer) fail("answer too long");
  }
  line.resize(line.find('\n'));
  return line;
}

Inherited parse_answer(const std::string& line, const std::vector<int>& fds) {
  boost::system::error_code ec;
  const auto doc = json::parse(line, ec);
  const auto* o = ec ? nullptr : doc.if_object();
  if (o == nullptr) fail("malformed answer: " + line);
  if (const auto* ok = o->if_contains("ok"); ok == nullptr || !ok->is_bool() || !ok->get_bool()) {
    const auto* error = o->if_contains("error");
    fail("the running process refused: " +
         std::string(error != nullptr && error->is_string() ? std::string_view(error->get_string()) : line));
  }
  Inherited in;
  std::size_t next = 0;
  const auto take = [&]() {
    if (next >= fds.size()) fail("fewer sockets than announced");
    return fds[next++];
  };
  in.from_pid = static_cast<std::int32_t>(o->at("pid").to_number<std::int64_t>());
  for (const auto& l : o->at("listeners").as_array()) {
    api::ListeningSockets::Listener listener;
    listener.address = std::string(l.at("address").as_string());
    const auto count = l.at("count").to_number<std::int64_t>();
    for (std::int64_t i = 0; i < count; ++i) listener.fds.push_back(take());
    in.sockets.listeners.push_back(std::move(listener));
  }
  in.sockets.admin_address = std::string(o->at("admin").as_string());
  in.sockets.admin_fd = take();
  in.control_fd = take();
  for (const auto& h : o->at("health").as_array()) {
    InheritedHealth ih;
    ih.service = std::string(h.at("service").as_string());
    ih.color = h.at("color").as_string() == "green" ? routing::Color::green : routing::Color::blue;
    ih.address = std::string(h.at("address").as_string());
    ih.up = h.at("up").as_bool();
    in.health.push_back(std::move(ih));
  }
  return in;
}

}  // namespace

std::optional<Inherited> request_takeover(const std::string& socket_path) {
  const int fd = connect_unix(socket_path);
  if (fd < 0) return std::nullopt;
  std::vector<int> fds;
  try {
    if (!write_all(fd, R"({"command":"takeover","pid":)" + std::to_string(::getpid()) + "}\n")) {
      fail(std::string("cannot ask the running process: ") + std::strerror(errno));
    }
    const auto line = read_answer(fd, fds);
    Inherited in;
    try {
      in = parse_answer(line, fds);
    } catch (const std::runtime_error&) {
      throw;
    } catch (const std::exception& e) {
      fail(std::string("malformed answer (") + e.what() + "): " + line);
    }
    in.channel = fd;
    return in;
  } catch (...) {
    for (int f : fds) ::close(f);
    ::close(fd);
    throw;
  }
}

bool finish_takeover(Inherited& in) {
  if (in.channel < 0) return false;
  const timeval limit{10, 0};
  ::setsockopt(in.channel, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  bool acknowledged = false;
  if (write_all(in.channel, "{\"command\":\"takeover_done\"}\n")) {
    std::vector<int> none;
    try {
      const auto line = read_answer(in.channel, none);
      acknowledged = line.find("\"ok\":true") != std::string::npos;
    } catch (const std::runtime_error&) {
      acknowledged = false;  // no answer: the old process gave up on us
    }
    for (int fd : none) ::close(fd);
  }
  ::close(in.channel);
  in.channel = -1;
  return acknowledged;
}

void close_unused(Inherited& in) {
  for (auto& l : in.sockets.listeners) {
    for (int fd : l.fds) ::close(fd);
    l.fds.clear();
  }
  if (in.sockets.admin_fd >= 0) ::close(in.sockets.admin_fd);
  in.sockets.admin_fd = -1;
  if (in.control_fd >= 0) ::close(in.control_fd);
  in.control_fd = -1;
}

bool send_with_fds(int socket, const std::string& line, const std::vector<int>& fds) {
  if (fds.size() > max_fds) {
    errno = E2BIG;
    return false;
  }
  const std::string data = line + "\n";
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  // The fds travel with the first byte; the rest of a long line follows plainly.
  auto n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
  while (n < 0 && (errno == EINTR || errno == EAGAIN)) n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
  if (n < 0) return false;
  return static_cast<std::size_t>(n) == data.size() || write_all(socket, data.substr(static_cast<std::size_t>(n)));
}

}  // namespace bgproxy::control
