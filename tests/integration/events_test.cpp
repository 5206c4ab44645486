// Issue 16, the change feed and webhook notifications end to end: `{"command":"events"}` streams
// what bgctl changes; a subscriber that never reads does not delay acknowledgements and is
// dropped with a final error line; webhooks get the event with its figures, and a receiver that
// is slow, down or answers 500 is retried, counted, and never slows a switch down.

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bgtest {
namespace {

namespace json = boost::json;

double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

/// A raw change-feed client: sends one request line, then reads lines as they come.
class FeedClient {
public:
  explicit FeedClient(const std::string& path, std::string_view request = R"({"command":"events"})") {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      throw std::runtime_error("connect " + path + ": " + std::strerror(errno));
    const std::string line = std::string(request) + "\n";
    if (::send(fd_, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
      throw std::runtime_error("send failed");
  }
  ~FeedClient() { ::close(fd_); }
  FeedClient(const FeedClient&) = delete;
  FeedClient& operator=(const FeedClient&) = delete;

  bool send(std::string_view data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }

  /// The next line, or nullopt at EOF or after `timeout`.
  std::optional<std::string> line(Ms timeout = Ms(5000)) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (const auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      if (eof_) return std::nullopt;
      const auto left = std::chrono::duration_cast<Ms>(deadline - Clock::now()).count();
      if (left <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char chunk[65536];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) eof_ = true;
      else buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// The next line that parses as an event of `kind`.
  std::optional<json::object> event(std::string_view kind, Ms timeout = Ms(5000)) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto l = line(std::chrono::duration_cast<Ms>(deadline - Clock::now()));
      if (!l) return std::nullopt;
      auto v = json::parse(*l).as_object();
      if (v.at("event").as_string() == kind) return v;
    }
    return std::nullopt;
  }

private:
  int fd_ = -1;
  std::string buf_;
  bool eof_ = false;
};

/// A webhook receiver on 127.0.0.1: records every POST body, answers `status` after `delay`.
class Receiver {
public:
  Receiver(int status, Ms delay) : status_(status), delay_(delay) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("receiver: cannot listen");
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~Receiver() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

  /// Waits until `n` requests arrived; returns the bodies so far.
  std::vector<std::string> wait_for(std::size_t n, Ms timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return bodies_.size() >= n; });
    return bodies_;
  }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  std::vector<std::string> heads() {
    std::lock_guard lock(mu_);
    return heads_;
  }

private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      serve(c);
      ::close(c);
    }
  }

  void serve(int c) {
    std::string in;
    std::size_t need = std::string::npos;
    const auto deadline = Clock::now() + Ms(3000);
    while (Clock::now() < deadline && (need == std::string::npos || in.size() < need)) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char chunk[8192];
      const ssize_t n = ::recv(c, chunk, sizeof chunk, 0);
      if (n <= 0) return;
      in.append(chunk, static_cast<std::size_t>(n));
      const auto end = in.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      std::smatch m;
      const std::string head = in.substr(0, end);
      if (std::regex_search(head, m, std::regex("[Cc]ontent-[Ll]ength: *(\\d+)"))) need = end + 4 + std::stoul(m[1]);
      else need = end + 4;
    }
    if (need == std::string::npos || in.size() < need) return;
    const auto end = in.find("\r\n\r\n");
    {
      std::lock_guard lock(mu_);
      heads_.push_back(in.substr(0, end));
      bodies_.push_back(in.substr(end + 4, need - end - 4));
    }
    cv_.notify_all();
    const auto until = Clock::now() + delay_;
    while (!stop_ && Clock::now() < until) std::this_thread::sleep_for(Ms(10));
    const std::string answer = "HTTP/1.1 " + std::to_string(status_) + " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    (void)::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
  }

  int status_;
  Ms delay_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> bodies_;
  std::vector<std::string> heads_;
};

class EventsTest : public IntegrationTest {
protected:
  Proxy& start(const std::string& top_extra = {}, const std::string& service_extra = {}, bool health_check = false) {
    blue_ = &start_backend("blue");
    green_ = &start_backend("green");
    ProxyConfig cfg;
    cfg.blue = {blue_->address()};
    cfg.green = {green_->address()};
    cfg.top_extra = top_extra;
    cfg.service_extra = service_extra;
    cfg.health_check = health_check;
    Proxy& p = start_proxy(cfg);
    socket_ = (dir_ / "control-0.sock").string();
    return p;
  }

  /// `bgctl ARGS`; its wall time in `took`.
  CommandResult bgctl(std::vector<std::string> args, double* took = nullptr) {
    std::vector<std::string> argv{BGCTL_BIN, "-S", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto t0 = Clock::now();
    auto r = run_command(std::move(argv), dir_.path(), Ms(10000));
    if (took) *took = secs(Clock::now() - t0);
    return r;
  }

  static std::string webhook(const std::string& url, const std::string& extra = {}) {
    return "notify:\n  webhooks:\n    - url: " + url + "\n      events: [switch, rollback]\n      timeout: 300ms\n" +
           extra;
  }

  Backend* blue_ = nullptr;
  Backend* green_ = nullptr;
  std::string socket_;
};

double metric_of(Proxy& p, const std::string& result) {
  return metric_value(p.metrics(), "bgproxy_notifications_total", {{"result", result}}).value_or(-1);
}

// ---------------------------------------------------------------------------------------------
// The feed.

TEST_F(EventsTest, StreamsASwitchAsItHappens) {
  start();
  FeedClient feed(socket_);
  EXPECT_EQ(feed.line(), R"({"ok":true,"events":"subscribed"})");
  FeedClient only_other(socket_, R"({"command":"events","service":"app"})");
  EXPECT_EQ(only_other.line(), R"({"ok":true,"events":"subscribed"})");

  ASSERT_EQ(bgctl({"switch", "green"}).exit_code, 0);
  auto e = feed.event("switch");
  ASSERT_TRUE(e) << "no switch event";
  EXPECT_EQ(e->at("service").as_string(), "app");
  EXPECT_EQ(e->at("command").as_string(), "switch");
  EXPECT_EQ(e->at("reason").as_string(), "manual");
  EXPECT_FALSE(e->at("instance").as_string().empty());
  EXPECT_TRUE(std::regex_match(std::string(e->at("time").as_string()),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
  EXPECT_EQ(e->at("before").at("green").to_number<double>(), 0.0);
  EXPECT_EQ(e->at("after").at("green").to_number<double>(), 100.0);
  EXPECT_TRUE(only_other.event("switch")) << "the service's own subscriber missed it";

  // An operator disabling a server is a health event.
  ASSERT_EQ(bgctl({"server", "disable", green_->address()}).exit_code, 0);
  auto h = feed.event("health");
  ASSERT_TRUE(h) << "no health event";
  EXPECT_EQ(h->at("color").as_string(), "green");
  EXPECT_EQ(h->at("address").as_string(), green_->address());
  EXPECT_EQ(h->at("state").as_string(), "disabled");

  FeedClient unknown(socket_, R"({"command":"events","service":"nope"})");
  const auto refusal = unknown.line();
  ASSERT_TRUE(refusal);
  EXPECT_EQ(json::parse(*refusal).at("ok").as_bool(), false) << *refusal;
}

TEST_F(EventsTest, AStuckSubscriberDelaysNoAcknowledgementAndIsDropped) {
  start();
  FeedClient stuck(socket_);  // subscribes and reads nothing until it has been dropped
  {
    FeedClient probe(socket_);
    ASSERT_TRUE(probe.line());  // the stuck one's subscription was handled before this one's
  }
  // Acknowledgements of pipelined switches on one connection, each timed from its send.
  FeedClient ctl(socket_, R"({"command":"status"})");
  ASSERT_TRUE(ctl.line());
  Proxy& p = *proxies_.back();
  const std::regex dropped_line("events: a subscriber \\(pid \\d+\\) fell too far behind: dropped");
  std::vector<double> acks;
  bool dropped = false;
  for (int i = 0; i < 3000 && !dropped; ++i) {
    const std::string cmd = std::string(R"({"command":"switch","color":")") + (i % 2 ? "blue" : "green") + "\"}\n";
    const auto t0 = Clock::now();
    ASSERT_TRUE(ctl.send(cmd));
    const auto answer = ctl.line(Ms(5000));
    acks.push_back(secs(Clock::now() - t0));
    ASSERT_TRUE(answer && answer->find("\"ok\":true") != std::string::npos) << (answer ? *answer : "no answer");
    if (i % 50 == 49) dropped = p.process().wait_for_line(dropped_line, Ms(1)).has_value();
  }
  ASSERT_TRUE(dropped) << "the stuck subscriber was never dropped after " << acks.size() << " switches";
  std::sort(acks.begin(), acks.end());
  const double median = acks[acks.size() / 2];
  const double p99 = acks[acks.size() * 99 / 100];
  std::cout << "[ events ] " << acks.size() << " switch acks with a stuck subscriber: median " << median * 1000
            << " ms, p99 " << p99 * 1000 << " ms, max " << acks.back() * 1000 << " ms\n";
  EXPECT_LT(median, 0.05);
  EXPECT_LT(acks.back(), 1.0);

  // Read now, within the moment it is given: what was queued before, the error line, EOF.
  std::optional<std::string> last;
  std::size_t lines = 0;
  while (auto l = stuck.line(Ms(3000))) {
    last = l;
    ++lines;
  }
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, R"({"event":"error","error":"subscriber too slow: dropped"})") << "after " << lines << " lines";
  EXPECT_LT(lines, acks.size() + 2) << "events were dropped, not all delivered";
}

TEST_F(EventsTest, ACanaryStreamsItsStartVerdictStepsAndPromotion) {
  Proxy& p = start({}, "sticky: none\n"
                       "watchdog: { window: 2s, min_requests: 10, max_error_rate: 0.05, bake_time: 500ms }\n"
                       "canary: { steps: [10, 50, 100], interval: 1s }\n");
  FeedClient feed(socket_, R"({"command":"events","service":"app"})");
  ASSERT_TRUE(feed.line());
  RequestLoop loop(p.port(), 3);
  ASSERT_EQ(bgctl({"canary", "start"}).exit_code, 0);
  std::vector<std::string> kinds;
  std::optional<json::object> promoted;
  while (auto l = feed.line(Ms(20000))) {
    auto v = json::parse(*l).as_object();
    kinds.emplace_back(v.at("event").as_string());
    if (kinds.back() == "verdict" && kinds.size() < 4) {
      EXPECT_EQ(v.at("outcome").as_string(), "pass") << *l;
      EXPECT_NE(v.at("reason").as_string().find("n="), std::string::npos) << *l;
    }
    if (kinds.back() == "canary_step") {
      EXPECT_GE(v.at("step").as_int64(), 1) << *l;
    }
    if (kinds.back() == "promoted") {
      promoted = v;
      break;
    }
  }
  loop.stop();
  std::string shown;
  for (const auto& k : kinds) shown += k + " ";
  ASSERT_TRUE(promoted) << "not promoted; events: " << shown;
  EXPECT_EQ(promoted->at("color").as_string(), "green");
  EXPECT_EQ(promoted->at("weights").at("green").to_number<double>(), 100.0);
  EXPECT_EQ(kinds.front(), "switch") << shown;
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "canary_step"), 2) << shown;
  EXPECT_GE(std::count(kinds.begin(), kinds.end(), "verdict"), 1) << shown;
}

// ---------------------------------------------------------------------------------------------
// Webhooks.

TEST_F(EventsTest, WebhookGetsTheSwitchAndTheRollbackWithItsFigures) {
  Receiver rx(200, Ms(0));
  Proxy& p = start(webhook(rx.url()), "sticky: none\nwatchdog: { window: 3s, min_requests: 20, max_error_rate: 0.05 }\n");
  double took = 0;
  ASSERT_EQ(bgctl({"split", "--green", "50"}, &took).exit_code, 0);
  auto bodies = rx.wait_for(1, Ms(5000));
  ASSERT_EQ(bodies.size(), 1u);
  auto sw = json::parse(bodies[0]).as_object();
  EXPECT_EQ(sw.at("event").as_string(), "switch");
  EXPECT_EQ(sw.at("service").as_string(), "app");
  EXPECT_EQ(sw.at("command").as_string(), "split");
  EXPECT_EQ(sw.at("after").at("green").to_number<double>(), 50.0);
  EXPECT_EQ(sw.at("text").as_string(), "app: split blue 100% / green 0% -> blue 50% / green 50% (manual)");
  EXPECT_NE(rx.heads()[0].find("POST /hook HTTP/1.1"), std::string::npos) << rx.heads()[0];
  EXPECT_NE(rx.heads()[0].find("application/json"), std::string::npos) << rx.heads()[0];
  EXPECT_NE(rx.heads()[0].find("\r\nHost: 127.0.0.1:" + std::to_string(rx.port()) + "\r\n"), std::string::npos)
      << rx.heads()[0];

  // Green fails a third of its requests: the watchdog rolls back, the receiver hears why.
  green_->knobs("error_rate=0.3");
  RequestLoop loop(p.port(), 4);
  bodies = rx.wait_for(2, Ms(15000));
  loop.stop();
  ASSERT_EQ(bodies.size(), 2u) << "no rollback notification";
  auto rb = json::parse(bodies[1]).as_object();
  EXPECT_EQ(rb.at("event").as_string(), "rollback");
  EXPECT_EQ(rb.at("color").as_string(), "green");
  const std::string reason(rb.at("reason").as_string());
  EXPECT_TRUE(std::regex_match(reason, std::regex(R"(watchdog: error_rate \d\.\d{3} > 0\.05 \(n=\d+, window 3s\))"))) << reason;
  EXPECT_EQ(std::string(rb.at("text").as_string()), "rolled back app green: " + reason.substr(10));
  EXPECT_EQ(rb.at("after").at("green").to_number<double>(), 0.0);
  std::cout << "[ notify ] " << rb.at("text").as_string() << "\n";
  EXPECT_TRUE(p.wait_metric("bgproxy_notifications_total", {{"result", "sent"}}, [](double v) { return v == 2; }));
  EXPECT_EQ(metric_of(p, "failed"), 0);
}

TEST_F(EventsTest, SlackFormatIsTextOnly) {
  Receiver rx(200, Ms(0));
  start(webhook(rx.url(), "      format: slack\n"));
  ASSERT_EQ(bgctl({"switch", "green"}).exit_code, 0);
  const auto bodies = rx.wait_for(1, Ms(5000));
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(bodies[0], R"x({"text":"app: switch blue 100% / green 0% -> blue 0% / green 100% (manual)"})x");
}

TEST_F(EventsTest, AReloadChangesTheReceivers) {
  Receiver first(200, Ms(0));
  Receiver second(200, Ms(0));
  Proxy& p = start(webhook(first.url()));
  ASSERT_EQ(bgctl({"switch", "green"}).exit_code, 0);
  ASSERT_EQ(first.wait_for(1, Ms(5000)).size(), 1u);

  ProxyConfig cfg;
  cfg.blue = {blue_->address()};
  cfg.green = {green_->address()};
  cfg.top_extra = webhook(second.url());
  write_file(p.config_path(), render_config(cfg, dir_.path()));
  ASSERT_EQ(bgctl({"reload"}).exit_code, 0);
  ASSERT_EQ(bgctl({"switch", "blue"}).exit_code, 0);
  const auto bodies = second.wait_for(1, Ms(5000));
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_EQ(json::parse(bodies[0]).at("after").at("blue").to_number<double>(), 100.0);
  EXPECT_EQ(first.bodies().size(), 1u) << "the old receiver still hears";

  cfg.top_extra = "notify: { webhooks: [ { url: \"https://example.com/x\" } ] }\n";
  write_file(p.config_path(), render_config(cfg, dir_.path()));
  const auto refused = bgctl({"reload"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("notify.webhooks[0].url: expected http://HOST[:PORT]/PATH"), std::string::npos) << refused.err;
}

TEST_F(EventsTest, AServerFailingItsChecksIsAHealthEventAndANotification) {
  Receiver rx(200, Ms(0));
  Proxy& p = start("notify:\n  webhooks:\n    - url: " + rx.url() + "\n      events: [health]\n",
                   "health_check: { path: /health, interval: 200ms, timeout: 100ms, rise: 2, fall: 3 }\n", true);
  // Servers start down until their checks pass: both come up, each an event and a notification.
  ASSERT_EQ(rx.wait_for(2, Ms(5000)).size(), 2u) << "no notification of the servers coming up";
  FeedClient feed(socket_);
  ASSERT_TRUE(feed.line());
  green_->knobs("health_status=503");
  const auto down = feed.event("health", Ms(5000));
  ASSERT_TRUE(down) << "no health event";
  EXPECT_EQ(down->at("color").as_string(), "green");
  EXPECT_EQ(down->at("address").as_string(), green_->address());
  EXPECT_EQ(down->at("state").as_string(), "down");
  EXPECT_NE(down->at("reason").as_string().find("503"), std::string::npos) << json::serialize(*down);
  const auto bodies = rx.wait_for(3, Ms(5000));
  ASSERT_EQ(bodies.size(), 3u);
  const auto n = json::parse(bodies[2]).as_object();
  EXPECT_EQ(n.at("state").as_string(), "down");
  EXPECT_EQ(std::string(n.at("text").as_string()).rfind("app green server " + green_->address() + " down: ", 0), 0u)
      << n.at("text").as_string();
  green_->knobs("health_status=200");
  const auto up = feed.event("health", Ms(5000));
  ASSERT_TRUE(up);
  EXPECT_EQ(up->at("state").as_string(), "up");
  EXPECT_TRUE(p.wait_metric("bgproxy_notifications_total", {{"result", "sent"}}, [](double v) { return v == 4; }));
}

TEST_F(EventsTest, AFullWebhookQueueDropsAndCounts) {
  Proxy& p = start(webhook("http://127.0.0.1:" + std::to_string(refused_port()) + "/hook"));
  // One notification in its attempts, 64 waiting: of 70 switches, 5 cannot be queued.
  FeedClient ctl(socket_, R"({"command":"status"})");
  ASSERT_TRUE(ctl.line());
  for (int i = 0; i < 70; ++i) {
    ASSERT_TRUE(ctl.send(std::string(R"({"command":"switch","color":")") + (i % 2 ? "blue" : "green") + "\"}\n"));
    const auto answer = ctl.line();
    ASSERT_TRUE(answer && answer->find("\"ok\":true") != std::string::npos) << (answer ? *answer : "no answer");
  }
  const auto dropped = p.wait_metric("bgproxy_notifications_total", {{"result", "dropped"}},
                                     [](double v) { return v >= 5; }, Ms(3000));
  EXPECT_EQ(dropped, 5.0);
  EXPECT_TRUE(p.process().wait_for_line(std::regex("notify http://127\\.0\\.0\\.1:\\d+/hook: queue full \\(64 waiting\\): "
                                                   "switch event for app dropped"),
                                        Ms(1000)));
}

struct Failing {
  const char* name;  ///< the test's name suffix
  int status;
  Ms delay;
  bool down;
};
void PrintTo(const Failing& f, std::ostream* os) { *os << f.name; }

class EventsFailingReceiverTest : public EventsTest, public ::testing::WithParamInterface<Failing> {};

TEST_P(EventsFailingReceiverTest, SwitchIsAcknowledgedPromptlyAndTheNotificationRetriedThenCounted) {
  const Failing f = GetParam();
  Receiver rx(f.status, f.delay);
  const std::string url = f.down ? "http://127.0.0.1:" + std::to_string(refused_port()) + "/hook" : rx.url();
  Proxy& p = start(webhook(url));
  std::vector<double> acks;
  for (const char* color : {"green", "blue", "green"}) {
    double took = 0;
    ASSERT_EQ(bgctl({"switch", color}, &took).exit_code, 0);
    acks.push_back(took);
  }
  // Three notifications, four attempts each (0.5 s, 1 s, 2 s apart), one at a time.
  const auto failed = p.wait_metric("bgproxy_notifications_total", {{"result", "failed"}},
                                    [](double v) { return v >= 1; }, Ms(10000));
  std::sort(acks.begin(), acks.end());
  std::cout << "[ notify ] receiver " << f.name << ": bgctl switch took " << acks.front() * 1000 << " .. "
            << acks.back() * 1000 << " ms; first notification failed after " << metric_of(p, "retried")
            << " retries\n";
  EXPECT_LT(acks.back(), 0.5) << "a switch waited for the receiver";
  ASSERT_TRUE(failed && *failed >= 1) << "the first notification never failed";
  EXPECT_GE(metric_of(p, "retried"), 3);
  EXPECT_EQ(metric_of(p, "sent"), 0);
  if (!f.down) {
    EXPECT_GE(rx.wait_for(4, Ms(2000)).size(), 4u) << "four attempts of the first notification";
  }
  EXPECT_TRUE(p.process().wait_for_line(std::regex("notify http://127\\.0\\.0\\.1:\\d+/hook: switch event for app "
                                                   "not delivered after 4 attempts"),
                                        Ms(1000)));
}

INSTANTIATE_TEST_SUITE_P(Receivers, EventsFailingReceiverTest,
                         ::testing::Values(Failing{"Slow", 200, Ms(1500), false}, Failing{"Down", 200, Ms(0), true},
                                           Failing{"Answers500", 500, Ms(0), false}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace bgtest
