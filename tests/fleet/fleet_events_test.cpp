// Issue 16 in a fleet: a change made through one instance is on every instance's change feed,
// each naming the instance that made it.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>

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

}  // namespace
}  // namespace bgtest::fleet
