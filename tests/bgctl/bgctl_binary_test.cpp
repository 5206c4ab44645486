// The real bgctl binary against a fake control server: a Unix socket in a temp dir that
// records the request line and answers a canned one. Exit codes 0/1/2/3 of SPEC §7.

#include <gtest/gtest.h>

#include <mutex>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "bgctl-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// Answers each connection with `reply` (nothing when empty: it just closes) after reading one
/// line, and keeps the lines it read.
class FakeServer {
 public:
  FakeServer(const fs::path& socket, std::string reply) : path_(socket.string()), reply_(std::move(reply)) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd_, 8) != 0)
      throw std::runtime_error(std::string("fake server: ") + std::strerror(errno));
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int connections() const { return connections_.load(); }
  std::string last_line() {
    std::lock_guard lock(mutex_);
    return last_line_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++connections_;
      std::string line;
      char ch = 0;
      while (::read(c, &ch, 1) == 1 && ch != '\n') line += ch;
      {
        std::lock_guard lock(mutex_);
        last_line_ = line;
      }
      if (!reply_.empty()) {
        const std::string out = reply_ + "\n";
        [[maybe_unused]] const auto n = ::write(c, out.data(), out.size());
      }
      ::close(c);
    }
  }

  std::string path_;
  std::string reply_;
  int fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::mutex mutex_;
  std::string last_line_;
};

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs bgctl with `args`; `env_socket` sets BGCTL_SOCKET (unset when nullopt).
Outcome bgctl(const std::vector<std::string>& args, std::optional<std::string> env_socket = std::nullopt) {
  TempDir io;
  const fs::path out = io.path() / "out";
  const fs::path err = io.path() / "err";

  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "BGCTL_SOCKET=", 13) != 0) env.emplace_back(*e);
  if (env_socket) env.push_back("BGCTL_SOCKET=" + *env_socket);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  std::vector<std::string> argv_s{BGCTL_BIN};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  Outcome r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

constexpr std::string_view change_ok =
    R"({"ok":true,"state":{"name":"app","weights":{"blue":50.0,"green":50.0},"phase":"canary","target":"green"}})";

TEST(BgctlBinary, OkAnswerExitsZeroWithSummary) {
  TempDir dir;
  FakeServer server(dir.path() / "c.sock", std::string(change_ok));
  const Outcome r = bgctl({"-S", (dir.path() / "c.sock").string(), "split", "--green", "50", "-s", "app"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "app: blue 50% / green 50% (phase canary, target green)\n");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(server.last_line(), R"({"command":"split","service":"app","green":50})");
}

TEST(BgctlBinary, RefusalExitsOneWithTheError) {
  TempDir dir;
  FakeServer server(dir.path() / "c.sock", R"({"ok":false,"error":"unknown service \"nope\""})");
  const Outcome r = bgctl({"-S", (dir.path() / "c.sock").string(), "switch", "green", "-s", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "bgctl: unknown service \"nope\"\n");
  EXPECT_EQ(server.last_line(), R"({"command":"switch","service":"nope","color":"green"})");
}

TEST(BgctlBinary, UsageErrorsExitTwoWithoutConnecting) {
  TempDir dir;
  FakeServer server(dir.path() / "c.sock", std::string(change_ok));
  const std::string sock = (dir.path() / "c.sock").string();
  for (const auto& args : std::vector<std::vector<std::string>>{{"-S", sock, "frob"},
                                                               {"-S", sock, "split", "--green", "150"},
                                                               {"-S", sock, "split", "--green", "abc"},
                                                               {"-S", sock, "split", "--green", "10.555"},
                                                               {"-S", sock, "split", "--green", "-1"},
                                                               {"-S", sock, "split", "--green", "1", "--blue", "99"},
                                                               {"-S", sock, "switch", "red"},
                                                               {"-S", sock, "canary", "start", "--steps", "50,10"},
                                                               {"-S", sock, "status", "--nope"},
                                                               {"-S", sock}}) {
    const Outcome r = bgctl(args);
    EXPECT_EQ(r.exit_code, 2) << args.back();
    EXPECT_EQ(r.err.rfind("bgctl: ", 0), 0u) << r.err;
    EXPECT_EQ(r.out, "");
  }
  EXPECT_EQ(server.connections(), 0);
}

TEST(BgctlBinary, MissingSocketExitsThree) {
  TempDir dir;
  const std::string sock = (dir.path() / "absent.sock").string();
  const Outcome r = bgctl({"-S", sock, "status"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, "bgctl: cannot connect to " + sock + ": No such file or directory\n");
  EXPECT_EQ(r.out, "");
}

TEST(BgctlBinary, DroppedConnectionOrGarbageExitsThree) {
  TempDir dir;
  const std::string sock = (dir.path() / "c.sock").string();
  {
    FakeServer server(dir.path() / "c.sock", "");  // reads the line, closes without answering
    const Outcome r = bgctl({"-S", sock, "status"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.err, "bgctl: no answer from " + sock + ": connection closed before an answer\n");
  }
  fs::remove(sock);
  {
    FakeServer server(dir.path() / "c.sock", "<html>");
    const Outcome r = bgctl({"-S", sock, "status"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.err, "bgctl: bad answer from " + sock + ": not a JSON object\n");
  }
}

TEST(BgctlBinary, EnvironmentSocketAndFlagPrecedence) {
  TempDir dir;
  FakeServer server(dir.path() / "c.sock", std::string(change_ok));
  const std::string sock = (dir.path() / "c.sock").string();
  Outcome r = bgctl({"rollback"}, sock);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server.last_line(), R"({"command":"rollback"})");
  r = bgctl({"-S", (dir.path() / "other.sock").string(), "rollback"}, sock);  // -S wins
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(server.connections(), 1);
}

TEST(BgctlBinary, JsonPassesTheAnswerThrough) {
  TempDir dir;
  const std::string sock = (dir.path() / "c.sock").string();
  const std::string status =
      R"({"ok":true,"services":[{"name":"app","weights":{"blue":70.0,"green":30.0},"phase":"idle","extra":[1,2]}]})";
  {
    FakeServer server(dir.path() / "c.sock", status);
    const Outcome r = bgctl({"--json", "status"}, sock);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, status + "\n");
    EXPECT_EQ(r.err, "");
  }
  fs::remove(sock);
  {
    const std::string refusal = R"({"ok":false,"error":"no healthy server in green"})";
    FakeServer server(dir.path() / "c.sock", refusal);
    const Outcome r = bgctl({"switch", "green", "--json"}, sock);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(r.out, refusal + "\n");
    EXPECT_EQ(r.err, "bgctl: no healthy server in green\n");
  }
}

TEST(BgctlBinary, HelpExitsZero) {
  const Outcome r = bgctl({"help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("split --green N | --blue N [-s SERVICE] [--force]"), std::string::npos) << r.out;
}

}  // namespace
