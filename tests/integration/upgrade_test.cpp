// Issue 7 acceptance, zero-downtime binary upgrade (SPEC §2, §7, §8): a second `bgproxy -c FILE`
// started while the first runs takes over its listening sockets over the control socket; the old
// process stops accepting, finishes what is in flight and exits 0; the split continues from the
// state file and the control socket answers from the new process. `bgctl upgrade` does the same
// from inside the running proxy. Under load, not one request fails.
//
// Every wait is bounded and synchronised on an event (a log line, an exit, a bgctl answer);
// sleeps only pace polling loops.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bgtest {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

const char* bgctl_bin() { return BGCTL_BIN; }

const std::regex kReady(R"(bgproxy ready: listen=([0-9.:,]+) admin=[0-9.]+:(\d+))");
const std::regex kTookOver(R"(upgrade: took over (\d+) listening sockets from pid (\d+))");
const std::regex kHandedOver(R"(upgrade: handed over to pid (\d+); draining)");

/// The listen ports of a "bgproxy ready:" match.
std::vector<std::uint16_t> listen_ports(const std::string& listen) {
  std::vector<std::uint16_t> r;
  std::stringstream ss(listen);
  std::string addr;
  while (std::getline(ss, addr, ','))
    r.push_back(static_cast<std::uint16_t>(std::stoi(addr.substr(addr.rfind(':') + 1))));
  return r;
}

/// True once `pid` no longer exists (or is a zombie nobody reaps: it serves nothing any more).
bool gone(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return stat.empty() || (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z');
}

bool wait_gone(pid_t pid, Ms timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (gone(pid)) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(Ms(10));
  }
}

/// A bgproxy that is not the test's child (started by `bgctl upgrade`): SIGTERM by pid on
/// destruction, SIGKILL if it is still there after 10 s.
class ForeignProxy {
public:
  ForeignProxy() = default;
  ~ForeignProxy() { terminate(); }
  ForeignProxy(const ForeignProxy&) = delete;
  ForeignProxy& operator=(const ForeignProxy&) = delete;

  void set(pid_t pid) {
    if (pid > 1 && pid != ::getpid()) pid_ = pid;
  }
  pid_t pid() const { return pid_; }
  /// @return true when it exited within 10 s of SIGTERM.
  bool terminate() {
    if (pid_ <= 1) return true;
    pid_t pid = pid_;
    pid_ = -1;
    if (gone(pid)) return true;
    ::kill(pid, SIGTERM);
    if (wait_gone(pid, Ms(10000))) return true;
    ::kill(pid, SIGKILL);
    wait_gone(pid, Ms(5000));
    return false;
  }

private:
  pid_t pid_ = -1;
};

/// Prints a process's stderr when the test has failed (the fixture prints only its own proxies).
struct PrintOnFailure {
  Process& p;
  ~PrintOnFailure() {
    if (::testing::Test::HasFailure()) {
      std::string t = p.stderr_text();
      std::cerr << "----- " << p.tag() << " stderr (tail) -----\n" << t.substr(t.size() > 6000 ? t.size() - 6000 : 0)
                << "\n";
    }
  }
};

class UpgradeTest : public IntegrationTest {
protected:
  /// Demo backends named "blue" and "green" and a proxy in front of them (active checks off).
  Proxy& start_pair(ProxyConfig cfg = {}) {
    blue_ = &start_backend("blue");
    green_ = &start_backend("green");
    cfg.blue = {blue_->address()};
    cfg.green = {green_->address()};
    Proxy& p = start_proxy(cfg);
    socket_ = (dir_ / "control-0.sock").string();
    return p;
  }

  CommandResult bgctl(std::vector<std::string> args, bool json_out = false, Ms timeout = Ms(15000)) {
    std::vector<std::string> argv{bgctl_bin(), "-S", socket_};
    if (json_out) argv.push_back("--json");
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(std::move(argv), dir_.path(), timeout);
  }

  double green_weight() {
    auto r = bgctl({"status"}, true);
    if (r.exit_code != 0)
      throw std::runtime_error("bgctl --json status: exit " + std::to_string(r.exit_code) + ": " + r.err);
    return json::value_to<double>(json::parse(r.out).at("services").at(0).at("weights").at("green"));
  }

  /// Waits until `n` more requests of `loop` started at or after `t` (bounded).
  static void wait_requests_since(RequestLoop& loop, Clock::time_point t, std::size_t n, Ms timeout) {
    for (auto deadline = Clock::now() + timeout; Clock::now() < deadline; std::this_thread::sleep_for(Ms(20)))
      if (loop.since(t).size() >= n) return;
  }

  /// The checks shared by both upgrades under load, once the old process has exited: no failed
  /// request, the split still ~40 % green on the new process, the control socket and the admin
  /// listener answering from it.
  void check_after_handover(Proxy& old, RequestLoop& loop, Clock::time_point old_gone) {
    wait_requests_since(loop, old_gone, 300, Ms(8000));
    loop.stop();
    auto all = loop.outcomes();
    std::string first;
    const std::size_t failed = count_failures(all, &first);
    auto after = loop.since(old_gone);
    std::size_t green = 0, mismatched = 0;
    for (const auto& o : after) {
      if (o.color == "green") ++green;
      if (o.status == 200 && o.color != o.backend) ++mismatched;
    }
    const double share = after.empty() ? 0.0 : 100.0 * static_cast<double>(green) / static_cast<double>(after.size());
    std::cout << "upgrade under load: " << all.size() << " requests, " << failed << " failed; " << after.size()
              << " after the old process exited, " << share << " % green\n";
    EXPECT_GT(all.size(), 0u);
    EXPECT_EQ(failed, 0u) << "first failures:\n" << first;
    ASSERT_GE(after.size(), 100u) << "too few requests after the handover";
    EXPECT_EQ(mismatched, 0u) << "X-Bg-Color and X-Backend disagree";
    EXPECT_GE(share, 28.0);
    EXPECT_LE(share, 52.0);

    auto r = bgctl({"status"});
    EXPECT_EQ(r.exit_code, 0) << "bgctl status after the upgrade: " << r.err;
    EXPECT_EQ(green_weight(), 40.0) << "the split did not continue on the new process";
    // The admin port is the old one, served by the new process now.
    std::string metrics = old.metrics();
    EXPECT_EQ(metric_value(metrics, "bgproxy_weight", {{"service", "app"}, {"color", "green"}}), 40.0);
    EXPECT_GT(metric_value(metrics, "bgproxy_requests_total", {{"service", "app"}}).value_or(0.0), 0.0)
        << "the new process's metrics show no request served";
  }

  Backend* blue_ = nullptr;
  Backend* green_ = nullptr;
  std::string socket_;
};

// ---------------------------------------------------------------------------------------------
// 1. `bgproxy -c SAME_FILE` started by hand takes over under load (five times in a row).

TEST_F(UpgradeTest, SecondProcessTakesOverUnderLoadWithZeroFailures) {
  Proxy& p = start_pair();
  auto r = bgctl({"split", "--green", "40"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  RequestLoop loop(p.port(), 4);
  wait_requests_since(loop, Clock::time_point{}, 100, Ms(5000));

  // Five takeovers in a row (old -> next-1 -> ... -> next-5), each under the same load: every
  // one must hand over the same ports and exit 0 without failing a request.
  constexpr int kRounds = 5;
  std::vector<std::unique_ptr<Process>> nexts;
  struct PrintAll {
    std::vector<std::unique_ptr<Process>>& v;
    ~PrintAll() {
      for (auto& n : v) PrintOnFailure{*n};
    }
  } print_all{nexts};
  Process* current = &p.process();
  Clock::time_point old_gone;
  for (int round = 1; round <= kRounds; ++round) {
    SCOPED_TRACE("takeover " + std::to_string(round));
    wait_requests_since(loop, Clock::now(), 50, Ms(3000));
    auto t0 = Clock::now();
    nexts.push_back(std::make_unique<Process>(std::vector<std::string>{proxy_bin(), "-c", p.config_path().string()},
                                              dir_.path(), "bgproxy-next-" + std::to_string(round)));
    Process& next = *nexts.back();
    auto took = next.wait_for_line(kTookOver, Ms(10000));
    ASSERT_TRUE(took) << "the new process did not take over (running=" << next.running() << ")";
    EXPECT_GE(std::stoi((*took)[1]), 1);
    EXPECT_EQ(std::stoi((*took)[2]), current->pid());
    auto ready = next.wait_for_line(kReady, Ms(10000));
    ASSERT_TRUE(ready) << "the new process never logged its ready line";
    EXPECT_EQ(listen_ports((*ready)[1]), p.ports()) << (*ready)[0];
    EXPECT_EQ(std::stoi((*ready)[2]), p.admin_port()) << (*ready)[0];
    const auto t_ready = Clock::now();

    auto handed = current->wait_for_line(kHandedOver, Ms(5000));
    ASSERT_TRUE(handed) << "the old process did not log the handover";
    EXPECT_EQ(std::stoi((*handed)[1]), next.pid());
    auto code = current->wait_exit(Ms(10000));
    ASSERT_TRUE(code) << "the old process still runs 10 s after the handover";
    EXPECT_EQ(*code, 0);
    old_gone = Clock::now();
    std::cout << "takeover " << round << ": ready after " << std::chrono::duration_cast<Ms>(t_ready - t0).count()
              << " ms, old process gone after " << std::chrono::duration_cast<Ms>(old_gone - t0).count() << " ms\n";
    current = &next;
  }

  check_after_handover(p, loop, old_gone);
  EXPECT_TRUE(current->running());
  current->stop(Ms(5000));
  EXPECT_EQ(current->wait_exit(Ms(1)), 0) << "the new process did not exit 0 on SIGTERM";
}

// ---------------------------------------------------------------------------------------------
// 2. `bgctl upgrade` makes the running proxy start its own binary, which takes over under load.

TEST_F(UpgradeTest, BgctlUpgradeUnderLoad) {
  Proxy& p = start_pair();
  auto r = bgctl({"split", "--green", "40"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  RequestLoop loop(p.port(), 4);
  wait_requests_since(loop, Clock::time_point{}, 100, Ms(5000));

  ForeignProxy next;
  auto t0 = Clock::now();
  r = bgctl({"upgrade"}, false, Ms(30000));
  const auto took_ms = std::chrono::duration_cast<Ms>(Clock::now() - t0).count();
  std::smatch m;
  if (std::regex_search(r.out, m, std::regex(R"(upgraded to pid (\d+))"))) next.set(std::stoi(m[1]));
  if (next.pid() <= 1) {  // still make sure a half-done upgrade leaves nothing running
    auto h = p.process().wait_for_line(kHandedOver, Ms(1));
    if (h) next.set(std::stoi((*h)[1]));
  }
  ASSERT_EQ(r.exit_code, 0) << "bgctl upgrade\nstdout: " << r.out << "\nstderr: " << r.err;
  ASSERT_GT(next.pid(), 1) << "no \"upgraded to pid N\" in: " << r.out;
  EXPECT_NE(next.pid(), p.pid());
  EXPECT_FALSE(gone(next.pid())) << "the new process is not running";
  std::cout << "bgctl upgrade answered after " << took_ms << " ms: " << r.out;

  // Ready when acknowledged: the port answers and so does the control socket.
  std::string why;
  auto resp = round_trip(p.port(), get_request("/right-after-upgrade"), Ms(3000), &why);
  ASSERT_TRUE(resp) << why;
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(bgctl({"status"}).exit_code, 0);

  auto handed = p.process().wait_for_line(kHandedOver, Ms(5000));
  EXPECT_TRUE(handed) << "the old process did not log the handover";
  if (handed) {
    EXPECT_EQ(std::stoi((*handed)[1]), next.pid());
  }
  auto code = p.process().wait_exit(Ms(10000));
  ASSERT_TRUE(code) << "the old process still runs 10 s after bgctl upgrade";
  EXPECT_EQ(*code, 0);
  const auto old_gone = Clock::now();

  check_after_handover(p, loop, old_gone);
  EXPECT_FALSE(gone(next.pid())) << "the new process died";
  EXPECT_TRUE(next.terminate()) << "the new process did not exit within 10 s of SIGTERM";
}

// ---------------------------------------------------------------------------------------------
// 3. A slow request in flight during the takeover completes on the old process; an idle
//    keep-alive connection does not hold the old process for the whole shutdown grace.

TEST_F(UpgradeTest, InFlightRequestFinishesOnOldProcess) {
  ProxyConfig cfg;
  cfg.shutdown = "20s";
  Proxy& p = start_pair(cfg);

  Client slow(p.port());
  slow.send(get_request("/?delay_ms=2000&body_bytes=5000"));
  // The proxy connects upstream only after parsing the request head; /_stats counts itself.
  bool busy = false;
  for (auto deadline = Clock::now() + Ms(2000); !busy && Clock::now() < deadline; std::this_thread::sleep_for(Ms(10)))
    busy = blue_->stats().open_connections >= 2;
  ASSERT_TRUE(busy) << "the slow request never reached the backend";

  Client idle(p.port());
  idle.send(get_request("/idle/1"));
  auto first = idle.read_response(Ms(3000));
  ASSERT_TRUE(first) << idle.last_error();
  ASSERT_EQ(first->status, 200);

  Process next({proxy_bin(), "-c", p.config_path().string()}, dir_.path(), "bgproxy-next");
  PrintOnFailure print_next{next};
  ASSERT_TRUE(next.wait_for_line(kTookOver, Ms(10000))) << "the new process did not take over";
  ASSERT_TRUE(next.wait_for_line(kReady, Ms(10000))) << "the new process never logged its ready line";
  {
    pollfd pf{slow.fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&pf, 1, 0), 0) << "the slow request finished before the takeover: this test proves nothing";
  }
  EXPECT_TRUE(p.process().running()) << "the old process exited with a request in flight";

  // The idle connection, used again during the drain: answered (with Connection: close), or closed
  // before any byte of an answer; never an error or a connection kept open.
  if (idle.try_send(get_request("/idle/2"), Ms(1000))) {
    auto again = idle.read_response(Ms(3000));
    std::cout << "idle keep-alive connection during the drain: "
              << (again ? "answered " + std::to_string(again->status) + " Connection: " +
                              again->header("Connection").value_or("(none)")
                        : "closed: " + idle.last_error())
              << "\n";
    if (again) {
      EXPECT_EQ(again->status, 200);
      EXPECT_EQ(again->header("Connection").value_or(""), "close")
          << "the draining process keeps an idle keep-alive connection open";
    } else {
      EXPECT_TRUE(idle.last_error().find("before any response byte") != std::string::npos ||
                  idle.last_error().find("after 0 bytes") != std::string::npos)
          << idle.last_error();
    }
  }

  // A new connection is served (by the new process).
  std::string why;
  auto fresh = round_trip(p.port(), get_request("/new-connection"), Ms(3000), &why);
  ASSERT_TRUE(fresh) << why;
  EXPECT_EQ(fresh->status, 200);

  auto r = slow.read_response(Ms(5000));
  const auto answered = Clock::now();
  ASSERT_TRUE(r) << "the in-flight request was cut by the takeover: " << slow.last_error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, pattern_bytes(0, 5000));

  auto code = p.process().wait_exit(Ms(8000));
  ASSERT_TRUE(code) << "the old process still runs 8 s after its last request (shutdown grace is 20 s)";
  EXPECT_EQ(*code, 0);
  std::cout << "old process exited " << std::chrono::duration_cast<Ms>(Clock::now() - answered).count()
            << " ms after the in-flight answer\n";
  EXPECT_LT(std::chrono::duration_cast<Ms>(Clock::now() - answered).count(), 4000)
      << "an idle keep-alive connection held the draining process";
  EXPECT_TRUE(next.running());
}

// ---------------------------------------------------------------------------------------------
// 4. A new process that takes the sockets but cannot start leaves the old one serving and
//    changeable, as if nothing had happened.

TEST_F(UpgradeTest, FailedNewProcessLeavesTheOldOneServing) {
  Proxy& p = start_pair();
  ASSERT_EQ(bgctl({"split", "--green", "40"}).exit_code, 0);

  // A port the new process cannot bind (a plain listener of ours, without SO_REUSEPORT).
  const int blocker = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(blocker, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(blocker, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(blocker, 1), 0);
  socklen_t len = sizeof addr;
  ::getsockname(blocker, reinterpret_cast<sockaddr*>(&addr), &len);
  reserved_fds_.push_back(blocker);
  const auto next_config = dir_ / "next.yaml";
  std::string yaml = read_file(p.config_path());
  const std::string listen = "listen:\n";
  ASSERT_EQ(yaml.rfind(listen, 0), 0u) << yaml;
  yaml.insert(listen.size(), "  - address: 127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "\n");
  write_file(next_config, yaml);

  RequestLoop loop(p.port(), 4);
  wait_requests_since(loop, Clock::time_point{}, 100, Ms(5000));
  Process next({proxy_bin(), "-c", next_config.string()}, dir_.path(), "bgproxy-next");
  PrintOnFailure print{next};
  ASSERT_TRUE(next.wait_for_line(kTookOver, Ms(10000))) << "the new process never asked for the sockets";
  auto code = next.wait_exit(Ms(10000));
  ASSERT_TRUE(code) << "the new process runs although it cannot listen";
  EXPECT_EQ(*code, 1);
  ASSERT_TRUE(p.process().wait_for_line(std::regex("went away before it served; this process carries on"), Ms(5000)))
      << "the old process did not notice the failed takeover";

  // Still serving, on the same sockets, with nothing lost; and changes are accepted again.
  const auto after = Clock::now();
  wait_requests_since(loop, after, 200, Ms(5000));
  loop.stop();
  std::string first;
  EXPECT_EQ(count_failures(loop.outcomes(), &first), 0u) << first;
  EXPECT_GE(loop.since(after).size(), 200u);
  EXPECT_TRUE(p.process().running());
  auto r = bgctl({"split", "--green", "60"});
  EXPECT_EQ(r.exit_code, 0) << "the old process still refuses changes: " << r.err;
  EXPECT_EQ(green_weight(), 60.0);
  EXPECT_EQ(metric_value(p.metrics(), "bgproxy_weight", {{"service", "app"}, {"color", "green"}}), 60.0);
}

// ---------------------------------------------------------------------------------------------
// 5. `bgctl upgrade` whose new process cannot start (the config file is broken by now) fails at
//    once, and the control socket stays responsive meanwhile.

TEST_F(UpgradeTest, BgctlUpgradeWithABrokenConfigFailsAtOnceAndChangesNothing) {
  Proxy& p = start_pair();
  ASSERT_EQ(bgctl({"split", "--green", "30"}).exit_code, 0);
  const std::string good = read_file(p.config_path());
  write_file(p.config_path(), good + "bogus_key: 1\n");
  const auto t0 = Clock::now();
  auto r = bgctl({"upgrade"});
  const auto took = std::chrono::duration_cast<Ms>(Clock::now() - t0).count();
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.err.find("exited before taking over"), std::string::npos) << r.err;
  EXPECT_LT(took, 5000) << "bgctl upgrade waited for a process that had already exited";
  EXPECT_TRUE(p.process().running());
  EXPECT_EQ(green_weight(), 30.0);
  write_file(p.config_path(), good);
  EXPECT_EQ(bgctl({"split", "--green", "50"}).exit_code, 0) << "changes are refused after a failed upgrade";
  std::string why;
  auto resp = round_trip(p.port(), get_request("/"), Ms(3000), &why);
  ASSERT_TRUE(resp) << why;
  EXPECT_EQ(resp->status, 200);
}

}  // namespace
}  // namespace bgtest
