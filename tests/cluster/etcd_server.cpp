#include "etcd_server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

namespace bgtest::etcd {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/bg-etcd-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

std::vector<std::uint16_t> free_ports(std::size_t n) {
  std::vector<int> fds;
  std::vector<std::uint16_t> ports;
  for (std::size_t i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error(std::string("free_ports: ") + std::strerror(errno));
    }
    fds.push_back(fd);
    ports.push_back(ntohs(a.sin_port));
  }
  for (const int fd : fds) ::close(fd);
  return ports;
}

namespace {

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// Runs `command` with sh, stdin from `input`, bounded by coreutils' timeout.
CommandResult run_shell(const std::string& command, const std::string& input, const fs::path& dir) {
  const fs::path in = dir / "stdin.txt";
  std::ofstream(in) << input;
  const std::string full = "timeout 20 " + command + " <" + shell_quote(in.string()) + " 2>&1";
  CommandResult r;
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) throw std::runtime_error("popen: " + std::string(std::strerror(errno)));
  std::array<char, 4096> buf{};
  for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) r.output.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

void make_certificates(const fs::path& dir) {
  const std::string d = shell_quote(dir.string());
  const std::string script =
      "set -e; cd " + d + "; "
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 "
      "-subj '/CN=bgproxy etcd test CA'; "
      "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > server.ext; "
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj '/CN=127.0.0.1'; "
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext; "
      "printf 'extendedKeyUsage=clientAuth\\n' > client.ext; "
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key -out client.csr -subj '/CN=bgproxy'; "
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext";
  const CommandResult r = run_shell("sh -c " + shell_quote(script), "", dir);
  if (r.exit_code != 0) throw std::runtime_error("make_certificates: " + r.output);
}

// ---------------------------------------------------------------------------------------------

Member::Member(const fs::path& dir, MemberOptions o) : Member(dir, "default", std::move(o), free_ports(2), {}) { start(); }

Member::Member(const fs::path& dir, std::string name, MemberOptions o, const std::vector<std::uint16_t>& ports,
               std::string initial_cluster)
    : dir_(dir / name),
      name_(std::move(name)),
      options_(std::move(o)),
      client_port_(ports.at(0)),
      peer_port_(ports.at(1)),
      initial_cluster_(std::move(initial_cluster)) {
  fs::create_directories(dir_);
  if (initial_cluster_.empty()) initial_cluster_ = name_ + "=http://127.0.0.1:" + std::to_string(peer_port_);
}

Member::~Member() { stop(); }

std::string Member::url() const {
  return std::string(options_.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(client_port_);
}

bgproxy::config::EtcdEndpoint Member::endpoint() const {
  return bgproxy::config::EtcdEndpoint{url(), options_.tls, "127.0.0.1", client_port_};
}

std::string Member::log() const { return read_all(dir_ / "etcd.log"); }

void Member::start() {
  spawn();
  wait_ready(Ms(15000));
}

void Member::spawn() {
  if (pid_ > 0) return;
  ++starts_;
  const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> argv = {"etcd",
                                   "--name", name_,
                                   "--data-dir", (dir_ / "data").string(),
                                   "--listen-client-urls", url(),
                                   "--advertise-client-urls", url(),
                                   "--listen-peer-urls", peer,
                                   "--initial-advertise-peer-urls", peer,
                                   "--initial-cluster", initial_cluster_,
                                   "--initial-cluster-state", "new",
                                   // Short raft timers: a single node elects itself sooner, a lost
                                   // leader is noticed sooner, and leases may be 1 s.
                                   "--heartbeat-interval", "50",
                                   "--election-timeout", "500"};
  if (options_.tls) {
    const fs::path d = dir_.parent_path();
    for (const auto& [flag, file] : {std::pair{"--cert-file", "server.pem"}, std::pair{"--key-file", "server.key"},
                                     std::pair{"--trusted-ca-file", "ca.pem"}}) {
      argv.push_back(flag);
      argv.push_back((d / file).string());
    }
    argv.push_back("--client-cert-auth");
  }
  argv.insert(argv.end(), options_.extra.begin(), options_.extra.end());

  // Each start appends to the same log: a restart's lines follow the first run's.
  const std::string log = (dir_ / "etcd.log").string();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp("etcd", args.data());
    ::_exit(127);
  }
}

void Member::wait_ready(Ms timeout) {
  // The n-th start is ready at its n-th "ready to serve client requests".
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    const std::string text = log();
    int ready = 0;
    for (std::size_t at = 0; (at = text.find("ready to serve client requests", at)) != std::string::npos; ++at) ++ready;
    if (ready >= starts_) return;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("etcd " + name_ + " exited while starting:\n" + text);
    }
    std::this_thread::sleep_for(Ms(20));
  }
  throw std::runtime_error("etcd " + name_ + " not ready within " + std::to_string(timeout.count()) + " ms:\n" + log());
}

void Member::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + Ms(5000);
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(Ms(10));
  }
  pid_ = -1;
}

CommandResult Member::etcdctl(const std::vector<std::string>& args, const std::string& input) const {
  std::string cmd = "env ETCDCTL_API=3 etcdctl --dial-timeout=3s --command-timeout=5s --endpoints=" + url();
  if (options_.tls) {
    const fs::path d = dir_.parent_path();
    cmd.append(" --cacert=").append(shell_quote((d / "ca.pem").string()));
    cmd.append(" --cert=").append(shell_quote((d / "client.pem").string()));
    cmd.append(" --key=").append(shell_quote((d / "client.key").string()));
  }
  for (const auto& a : args) cmd.append(" ").append(shell_quote(a));
  return run_shell(cmd, input, dir_);
}

std::string Member::etcdctl_ok(const std::vector<std::string>& args, const std::string& input) const {
  const CommandResult r = etcdctl(args, input);
  std::string joined;
  for (const auto& a : args) joined.append(" ").append(a);
  EXPECT_EQ(r.exit_code, 0) << "etcdctl" << joined << ":\n" << r.output;
  return r.output;
}

// ---------------------------------------------------------------------------------------------

Cluster::Cluster(const fs::path& dir, std::size_t size) {
  const std::vector<std::uint16_t> ports = free_ports(2 * size);  // client, peer; client, peer; …
  const auto name = [](std::size_t i) { return std::string("m").append(std::to_string(i)); };
  std::string initial;
  for (std::size_t i = 0; i < size; ++i) {
    if (i > 0) initial.append(",");
    initial.append(name(i)).append("=http://127.0.0.1:").append(std::to_string(ports[2 * i + 1]));
  }
  for (std::size_t i = 0; i < size; ++i) {
    members_.push_back(std::unique_ptr<Member>(
        new Member(dir, name(i), MemberOptions{}, {ports[2 * i], ports[2 * i + 1]}, initial)));
  }
  // All must run before any is ready: readiness needs a leader, and a leader a quorum.
  for (auto& m : members_) m->spawn();
  for (auto& m : members_) m->wait_ready(Ms(20000));
}

std::vector<bgproxy::config::EtcdEndpoint> Cluster::endpoints() const {
  std::vector<bgproxy::config::EtcdEndpoint> out;
  for (const auto& m : members_) out.push_back(m->endpoint());
  return out;
}

}  // namespace bgtest::etcd
