#pragma once
/// Test harness: real etcd members (Debian's etcd-server) on 127.0.0.1 with ephemeral ports and a
/// temp data dir, started and stopped by the test, and etcdctl against them.
/// Everything is bounded: a member that never becomes ready throws std::runtime_error.
/// Thread: the test's thread.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bgproxy/config/config.hpp"

namespace bgtest::etcd {

using Ms = std::chrono::milliseconds;

/// A fresh directory under $TMPDIR, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// `n` distinct TCP ports on 127.0.0.1 that nothing listened on a moment ago (bound to 0 together,
/// then released).
std::vector<std::uint16_t> free_ports(std::size_t n);
inline std::uint16_t free_port() { return free_ports(1).front(); }

struct CommandResult {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr
};

/// Files of a test CA (ca.pem), a server certificate for 127.0.0.1 (server.pem/.key) and a client
/// certificate (client.pem/.key), made with the openssl command in `dir`.
void make_certificates(const std::filesystem::path& dir);

struct MemberOptions {
  bool tls = false;                  ///< https with dir/server.pem, client certificates required (dir/ca.pem)
  std::vector<std::string> extra;    ///< more etcd flags, e.g. {"--auth-token-ttl", "1"}
};

/// One etcd member: a single-node cluster, or one of `Cluster`'s.
class Member {
 public:
  /// Starts a single-node cluster.
  Member(const std::filesystem::path& dir, MemberOptions o = {});
  ~Member();  ///< stop()
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

  std::uint16_t client_port() const { return client_port_; }
  std::string url() const;
  bgproxy::config::EtcdEndpoint endpoint() const;

  /// (Re)starts it on the same ports and data dir; waits until it serves.
  void start();
  /// SIGTERM, then SIGKILL after 5 s; reaps it. Idempotent.
  void stop();
  bool running() const { return pid_ > 0; }
  std::string log() const;

  /// etcdctl --endpoints=url() ARGS (with the TLS files for a TLS member); `input` goes to its stdin.
  CommandResult etcdctl(const std::vector<std::string>& args, const std::string& input = {}) const;
  /// As etcdctl(), and fails the test unless it exits 0. @return its output
  std::string etcdctl_ok(const std::vector<std::string>& args, const std::string& input = {}) const;

 private:
  friend class Cluster;
  Member(const std::filesystem::path& dir, std::string name, MemberOptions o, const std::vector<std::uint16_t>& ports,
         std::string initial_cluster);
  void spawn();
  void wait_ready(Ms timeout);

  std::filesystem::path dir_;
  std::string name_;
  MemberOptions options_;
  std::uint16_t client_port_;
  std::uint16_t peer_port_;
  std::string initial_cluster_;
  pid_t pid_ = -1;
  int starts_ = 0;
};

/// Three members on loopback.
class Cluster {
 public:
  explicit Cluster(const std::filesystem::path& dir, std::size_t size = 3);
  Member& member(std::size_t i) { return *members_.at(i); }
  std::vector<bgproxy::config::EtcdEndpoint> endpoints() const;

 private:
  std::vector<std::unique_ptr<Member>> members_;
};

}  // namespace bgtest::etcd
