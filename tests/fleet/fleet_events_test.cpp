// Issue 16 in a fleet: a change made through one instance is on every instance's change feed,
// each naming the instance that made it.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "fleet_harness.hpp"

namespace bgtest::fleet {
namespace {

/// Subscribes to an instance's change feed; reads its lines.
class Feed {
 public:
  explicit Feed(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    const std::string req = "{\"command\":\"events\"}\n";
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
      throw std::runtime_error("cannot subscribe at " + path);
  }
  ~Feed() { ::close(fd_); }
  Feed(const Feed&) = delete;
  Feed& operator=(const Feed&) = delete;

  /// The next event of `kind`, or nullopt after `timeout`.
  std::optional<json::object> event(std::string_view kind, Ms timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (const auto nl = buf_.find('\n'); nl != std::string::npos) {
        auto v = json::parse(buf_.substr(0, nl)).as_object();
        buf_.erase(0, nl + 1);
        if (const auto* e = v.if_contains("event"); e && e->as_string() == kind) return v;
        continue;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char chunk[8192];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
    return std::nullopt;
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

class FleetEventsTest : public FleetTest {};

TEST_F(FleetEventsTest, AChangeViaAIsOnEveryInstancesFeedNamingA) {
  FleetOptions o;
  o.instances = {"a", "b"};
  o.service_extra = "sticky: none\nwatchdog: { enabled: false }\n";
  start_fleet(o);
  Feed on_a(socket_of("a"));
  Feed on_b(socket_of("b"));
  ctl("a", {"split", "--green", "30"});
  for (auto* feed : {&on_a, &on_b}) {
    const auto e = feed->event("switch", Ms(5000));
    ASSERT_TRUE(e) << (feed == &on_a ? "a" : "b") << ": no switch event";
    EXPECT_EQ(e->at("instance").as_string(), "a") << json::serialize(*e);
    EXPECT_EQ(e->at("command").as_string(), "split") << json::serialize(*e);
    EXPECT_EQ(e->at("after").at("green").to_number<double>(), 30.0) << json::serialize(*e);
  }
}

/// Counts the POSTs a webhook receiver on 127.0.0.1 is sent; answers each 200.
class Receiver {
 public:
  Receiver() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("receiver: cannot listen");
    port_ = ntohs(a.sin_port);
  }
  ~Receiver() { ::close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

  /// Serves for `how_long`; returns the bodies received.
  std::vector<std::string> serve(Ms how_long) {
    std::vector<std::string> bodies;
    const auto until = Clock::now() + how_long;
    while (Clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string in;
      const auto deadline = Clock::now() + Ms(2000);
      std::size_t end = std::string::npos;
      std::size_t length = 0;
      while (Clock::now() < deadline) {
        if (end == std::string::npos && (end = in.find("\r\n\r\n")) != std::string::npos) {
          const auto at = in.find("Content-Length: ");
          length = at < end ? std::stoul(in.substr(at + 16)) : 0;
        }
        if (end != std::string::npos && in.size() >= end + 4 + length) break;
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 20) <= 0) continue;
        char chunk[8192];
        const ssize_t n = ::recv(c, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        in.append(chunk, static_cast<std::size_t>(n));
      }
      if (end != std::string::npos) bodies.push_back(in.substr(end + 4, length));
      const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)::send(c, ok.data(), ok.size(), MSG_NOSIGNAL);
      ::close(c);
    }
    return bodies;
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

TEST_F(FleetEventsTest, OnlyTheMemberThatMadeAChangeNotifies) {
  Receiver rx;
  FleetOptions o;
  o.instances = {"a", "b"};
  o.service_extra = "sticky: none\nwatchdog: { enabled: false }\n";
  o.top_extra = "notify:\n  webhooks:\n    - url: " + rx.url() + "\n      events: [switch]\n";
  start_fleet(o);
  Feed on_b(socket_of("b"));
  ctl("a", {"split", "--green", "30"});
  ASSERT_TRUE(on_b.event("switch", Ms(5000))) << "b never took the change";
  // Both members have it now; a second's grace for a duplicate that should not come.
  const auto bodies = rx.serve(Ms(1000));
  ASSERT_EQ(bodies.size(), 1u) << "one notification per change, not one per member";
  EXPECT_EQ(json::parse(bodies[0]).at("instance").as_string(), "a") << bodies[0];
}

}  // namespace
}  // namespace bgtest::fleet
