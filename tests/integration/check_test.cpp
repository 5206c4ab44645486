// SPEC §2: `bgproxy -c FILE --check` (0, or 1 with "FILE:LINE: field: problem") and --version.

#include "harness.hpp"

namespace bgtest {
namespace {

class Check : public IntegrationTest {
protected:
  CommandResult check(const std::string& name, const std::string& yaml) {
    auto path = dir_ / name;
    write_file(path, yaml);
    return run_command({proxy_bin(), "-c", path.string(), "--check"}, dir_.path(), Ms(10000));
  }

  /// Expects exit 1 and a stderr line "PATH:LINE: FIELD: problem" naming `line` and `field`.
  void expect_refused(const std::string& name, const std::string& yaml, int line,
                      const std::string& field, const std::string& problem_word) {
    SCOPED_TRACE(name);
    auto r = check(name, yaml);
    EXPECT_EQ(r.exit_code, 1) << "stderr: " << r.err;
    std::string path = (dir_ / name).string();
    std::regex re("(^|\\n)(?:[^\\n]*\\s)?" + escape(path) + R"(:(\d+): ([^:\n]+): ([^\n]+))");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.err, m, re)) << "no \"FILE:LINE: field: problem\" line in stderr:\n" << r.err;
    EXPECT_EQ(std::stoi(m[2].str()), line) << m[0];
    EXPECT_EQ(m[3].str(), field) << m[0];
    EXPECT_NE(m[4].str().find(problem_word), std::string::npos) << m[0];
  }

  static std::string escape(const std::string& s) {
    static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
    return std::regex_replace(s, special, R"(\$&)");
  }
};

const std::string kValid =
    "listen:\n"
    "  - address: 127.0.0.1:0\n"
    "admin:\n"
    "  address: 127.0.0.1:0\n"
    "services:\n"
    "  - name: app\n"
    "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
    "    green: { servers: [\"127.0.0.1:5006\"] }\n";

TEST_F(Check, ValidConfigExitsZero) {
  auto r = check("valid.yaml", kValid);
  EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err;
}

TEST_F(Check, UnreadableCertificateRefused) {
  const auto missing = (dir_ / "missing.pem").string();
  auto r = check("tls.yaml", "listen:\n"
                             "  - address: 127.0.0.1:0\n"
                             "    tls: [{ certificate: " + missing + ", private_key: " + missing + " }]\n"
                             "admin:\n"
                             "  address: 127.0.0.1:0\n"
                             "services:\n"
                             "  - name: app\n"
                             "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                             "    green: { servers: [\"127.0.0.1:5006\"] }\n");
  EXPECT_EQ(r.exit_code, 1) << "stdout: " << r.out;
  EXPECT_NE(r.err.find((dir_ / "tls.yaml").string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("configuration ok"), std::string::npos) << r.out;
}

TEST_F(Check, UnreadableUpstreamCaRefused) {
  const auto missing = (dir_ / "no-ca.pem").string();
  auto r = check("upstream.yaml", "listen:\n"
                                  "  - address: 127.0.0.1:0\n"
                                  "admin:\n"
                                  "  address: 127.0.0.1:0\n"
                                  "services:\n"
                                  "  - name: app\n"
                                  "    blue: { servers: [\"127.0.0.1:5005\"], tls: { enabled: true, ca: " + missing + " } }\n"
                                  "    green: { servers: [\"127.0.0.1:5006\"] }\n");
  EXPECT_EQ(r.exit_code, 1) << "stdout: " << r.out;
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
}

TEST_F(Check, HarnessConfigIsValid) {
  ProxyConfig cfg;
  cfg.blue = {"127.0.0.1:5005"};
  cfg.green = {"127.0.0.1:5006"};
  cfg.max_connections = 10;
  cfg.max_header_bytes = 4096;
  cfg.max_body_bytes = 1024;
  cfg.client_header = "1s";
  cfg.client_idle = "1s";
  cfg.upstream_connect = "1s";
  cfg.upstream_response = "500ms";
  auto r = check("rendered.yaml", render_config(cfg, dir_.path()));
  EXPECT_EQ(r.exit_code, 0) << "stderr: " << r.err;
}

TEST_F(Check, UnknownKeyRefusedWithFileLineField) {
  expect_refused("unknown.yaml",
                 "listen:\n"
                 "  - address: 127.0.0.1:0\n"
                 "timeouts:\n"
                 "  upstream_respons: 5s\n"
                 "services:\n"
                 "  - name: app\n"
                 "    blue: { servers: [\"127.0.0.1:5005\"] }\n",
                 4, "timeouts.upstream_respons", "unknown");
}

TEST_F(Check, DurationWithoutUnitRefusedWithFileLineField) {
  expect_refused("duration.yaml",
                 "listen:\n"
                 "  - address: 127.0.0.1:0\n"
                 "timeouts:\n"
                 "  client_idle: 60\n"
                 "services:\n"
                 "  - name: app\n"
                 "    blue: { servers: [\"127.0.0.1:5005\"] }\n",
                 4, "timeouts.client_idle", "unit");
}

TEST_F(Check, WeightOutOfRangeRefusedWithFileLineField) {
  expect_refused("weight.yaml",
                 "services:\n"
                 "  - name: app\n"
                 "    blue: { servers: [\"127.0.0.1:5005\"] }\n"
                 "    green: { servers: [\"127.0.0.1:5006\"] }\n"
                 "    initial:\n"
                 "      green: 150\n",
                 6, "services[0].initial.green", "150");
}

TEST_F(Check, BadServerAddressRefusedWithFileLineField) {
  expect_refused("address.yaml",
                 "services:\n"
                 "  - name: app\n"
                 "    blue:\n"
                 "      servers:\n"
                 "        - 127.0.0.1:5005\n"
                 "        - 127.0.0.1:70000\n",
                 6, "services[0].blue.servers[1]", "70000");
}

TEST_F(Check, MissingFileRefused) {
  auto r = run_command({proxy_bin(), "-c", (dir_ / "nope.yaml").string(), "--check"}, dir_.path());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nope.yaml"), std::string::npos) << r.err;
}

TEST_F(Check, InvalidConfigRefusedAtStartToo) {
  auto path = dir_ / "bad.yaml";
  write_file(path, "threads: many\nservices:\n  - name: app\n    blue: { servers: [\"127.0.0.1:5005\"] }\n");
  auto r = run_command({proxy_bin(), "-c", path.string()}, dir_.path(), Ms(10000));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, -1) << "bgproxy kept running with an invalid config";
  EXPECT_NE(r.err.find(path.string() + ":1: threads:"), std::string::npos) << r.err;
}

TEST_F(Check, VersionPrintsNameAndSemver) {
  auto r = run_command({proxy_bin(), "--version"}, dir_.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(^bgproxy \d+\.\d+\.\d+\s*$)"))) << "stdout: " << r.out;
}

}  // namespace
}  // namespace bgtest
