// The admin web page (issue 16, SPEC §15, README "The web page") in a real browser: Debian's
// chromium, headless, loads GET / from a running bgproxy, runs the page's script against
// /ui/data and prints the DOM it drew. Asserted: the headers that keep it read-only and
// self-contained, no console message at all (a Content-Security-Policy violation or a script
// error is one), the weights bgctl set, and a chart that moves once traffic flows.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bgtest {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

/// BGTEST_CHROMIUM, else chromium on PATH; empty when there is none.
std::string find_chromium() {
  if (const char* given = std::getenv("BGTEST_CHROMIUM")) return given;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin";
  for (std::size_t from = 0; from <= dirs.size();) {
    auto to = dirs.find(':', from);
    if (to == std::string::npos) to = dirs.size();
    const fs::path candidate = fs::path(dirs.substr(from, to - from)) / "chromium";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    from = to + 1;
  }
  return {};
}

/// The page as the browser left it: its DOM, and the console lines chromium logged.
struct Rendered {
  std::string dom;
  std::vector<std::string> console;
};

class AdminPage : public IntegrationTest {
 protected:
  void SetUp() override {
    chromium_ = find_chromium();
    if (chromium_.empty()) {
      GTEST_SKIP() << "chromium not found on PATH (Debian package chromium; scripts/install-deps installs it): "
                      "the admin page's browser test cannot run";
    }
    auto& blue = start_backend("blue");
    auto& green = start_backend("green");
    ProxyConfig cfg;
    cfg.blue = {blue.address()};
    cfg.green = {green.address()};
    proxy_ = &start_proxy(cfg);
  }

  /// Loads the page in a fresh headless chromium; virtual time lets its first polls run.
  Rendered render() {
    const auto profile = dir_.path() / ("chromium-" + std::to_string(renders_++));
    // --no-sandbox: tests may run as root; --disable-dev-shm-usage: containers' /dev/shm is small.
    auto r = run_command({chromium_, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                          "--user-data-dir=" + profile.string(), "--enable-logging=stderr", "--v=0",
                          "--virtual-time-budget=3000", "--dump-dom", page_url()},
                         dir_.path(), Ms(30000));
    if (r.exit_code != 0) throw std::runtime_error("chromium exited " + std::to_string(r.exit_code) + ": " + r.err);
    Rendered out{std::move(r.out), {}};
    static const std::regex console_line(R"([^\n]*:CONSOLE[^\n]*)");
    for (auto it = std::sregex_iterator(r.err.begin(), r.err.end(), console_line); it != std::sregex_iterator(); ++it) {
      out.console.push_back(it->str());
    }
    return out;
  }

  std::string page_url() const { return "http://127.0.0.1:" + std::to_string(proxy_->admin_port()) + "/"; }

  CommandResult bgctl(std::vector<std::string> args) {
    std::vector<std::string> argv{BGCTL_BIN, "-S", (dir_.path() / "control-0.sock").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(std::move(argv), dir_.path());
  }

  json::object page_data() {
    auto r = round_trip(proxy_->admin_port(), get_request("/ui/data"));
    if (!r || r->status != 200) throw std::runtime_error("GET /ui/data failed");
    return json::parse(r->body).as_object();
  }

  std::string chromium_;
  Proxy* proxy_ = nullptr;
  int renders_ = 0;
};

/// The `points` of the chart `id`'s polyline of `color`, as the page drew them.
std::string polyline_points(const std::string& dom, const std::string& id, const std::string& color) {
  const auto chart = dom.find("id=\"" + id + "\"");
  if (chart == std::string::npos) return "<no chart " + id + ">";
  const std::regex line("<polyline class=\"" + color + "\" points=\"([^\"]*)\"");
  std::smatch m;
  const std::string rest = dom.substr(chart, dom.find("</svg>", chart) - chart);
  return std::regex_search(rest, m, line) ? m[1].str() : "<no " + color + " line>";
}

/// Whether any point of a polyline is above the chart's floor (y 100 is zero).
bool rises(const std::string& points) {
  static const std::regex y(R"(,([0-9.]+))");
  for (auto it = std::sregex_iterator(points.begin(), points.end(), y); it != std::sregex_iterator(); ++it) {
    if (std::stod((*it)[1].str()) < 99.9) return true;
  }
  return false;
}

double sum_of(const json::array& a) {
  double sum = 0;
  for (const auto& v : a) sum += v.to_number<double>();
  return sum;
}

TEST_F(AdminPage, ServedSelfContainedReadOnlyAndNeverCached) {
  auto r = round_trip(proxy_->admin_port(), get_request("/"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Type").value_or(""), "text/html; charset=utf-8");
  EXPECT_EQ(r->header("Cache-Control").value_or(""), "no-store");
  const auto csp = r->header("Content-Security-Policy").value_or("");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("script-src 'sha256-"), std::string::npos) << csp;
  EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
  EXPECT_FALSE(r->header("Set-Cookie"));
  // Nothing to fetch from elsewhere: no external script, style, image or font.
  for (const char* external : {"src=\"http", "href=\"http", "@import", "url("}) {
    EXPECT_EQ(r->body.find(external), std::string::npos) << external;
  }
  auto data = round_trip(proxy_->admin_port(), get_request("/ui/data"));
  ASSERT_TRUE(data);
  EXPECT_EQ(data->header("Cache-Control").value_or(""), "no-store");
  EXPECT_FALSE(data->header("Set-Cookie"));
  // Read-only: nothing but GET and HEAD.
  auto post = round_trip(proxy_->admin_port(), request_with_body("POST", "/ui/data", "x"));
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
}

TEST_F(AdminPage, ShowsTheWeightsAndAChartThatMovesWithTraffic) {
  const auto split = bgctl({"split", "--green", "30"});
  ASSERT_EQ(split.exit_code, 0) << split.err << split.out;
  // A few quiet seconds first, so the chart has a flat line to rise from.
  const auto deadline = Clock::now() + Ms(10000);
  while (page_data().at("series").at("services").at(0).at("blue").at("rps").as_array().size() < 3) {
    ASSERT_LT(Clock::now(), deadline) << "the control loop put no seconds in /ui/data";
    std::this_thread::sleep_for(Ms(100));
  }

  const auto before = render();
  EXPECT_TRUE(before.console.empty()) << before.console.front();
  EXPECT_NE(before.dom.find("id=\"bar-app\" data-blue=\"70\" data-green=\"30\""), std::string::npos) << before.dom;
  EXPECT_NE(before.dom.find(">blue 70%<"), std::string::npos);
  EXPECT_NE(before.dom.find(">green 30%<"), std::string::npos);
  EXPECT_NE(before.dom.find("<td>split</td>"), std::string::npos) << "the history table shows the split";
  EXPECT_NE(before.dom.find("window 30 s"), std::string::npos) << "the watchdog's thresholds are shown";
  for (const auto& backend : backends_) {
    EXPECT_NE(before.dom.find("<td>" + backend->address() + "</td><td class=\"state-up\">up</td>"), std::string::npos)
        << "server health: " << backend->address();
  }
  const auto idle = polyline_points(before.dom, "chart-app-rps", "blue");
  EXPECT_TRUE(std::regex_search(idle, std::regex("^[0-9]+,100.0 [0-9]+,100.0 "))) << "quiet seconds: " << idle;
  EXPECT_FALSE(rises(idle)) << "no traffic yet: " << idle;

  for (int i = 0; i < 100; ++i) ASSERT_TRUE(round_trip(proxy_->port(), get_request("/hello")));
  // Until the control loop has put a second with these requests in the ring.
  while (sum_of(page_data().at("series").at("services").at(0).at("blue").at("rps").as_array()) == 0) {
    ASSERT_LT(Clock::now(), deadline) << "no second with traffic in /ui/data";
    std::this_thread::sleep_for(Ms(100));
  }

  const auto after = render();
  EXPECT_TRUE(after.console.empty()) << after.console.front();
  const auto busy = polyline_points(after.dom, "chart-app-rps", "blue");
  EXPECT_NE(busy, idle);
  EXPECT_TRUE(rises(busy)) << busy;
  std::cout << "rps chart, blue line (x: second, y: 100 = 0 rps): before traffic \"" << idle
            << "\", after 100 requests \"" << busy << "\"\n";
}

}  // namespace
}  // namespace bgtest
