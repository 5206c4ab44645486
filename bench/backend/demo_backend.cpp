// bgproxy-demo-backend: the HTTP/1.1 + websocket test backend of integration tests, `make demo` and
// the benchmark. See session.cpp for what it answers; this file is the CLI and the workers.
//
//   bgproxy-demo-backend --port P [--name NAME] [--address 127.0.0.1] [--threads 1]
//
// One io_context per thread, each with its own acceptor (SO_REUSEPORT when --threads > 1), so a
// connection lives on one thread and nothing on the request path is shared but relaxed atomics.

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <sys/socket.h>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "session.hpp"
#include "util.hpp"

namespace bgproxy::demo {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Acceptor = net::basic_socket_acceptor<tcp, Executor>;

// Asio has no public SO_REUSEPORT option; this is the SettableSocketOption it needs.
class ReusePort {
public:
  explicit ReusePort(bool on) : value_(on ? 1 : 0) {}
  template <class Protocol> int level(const Protocol&) const { return SOL_SOCKET; }
  template <class Protocol> int name(const Protocol&) const { return SO_REUSEPORT; }
  template <class Protocol> const void* data(const Protocol&) const { return &value_; }
  template <class Protocol> std::size_t size(const Protocol&) const { return sizeof(value_); }

private:
  int value_;
};

struct Options {
  unsigned short port = 0;
  bool port_set = false;
  std::string name = "backend";
  std::string address = "127.0.0.1";
  int threads = 1;
};

constexpr std::string_view kUsage =
    "usage: bgproxy-demo-backend --port P [--name NAME] [--address 127.0.0.1] [--threads 1]\n"
    "  --port P       TCP port to listen on (0 = ephemeral)\n"
    "  --name NAME    value of the X-Backend header and of \"name\" in echoes (default: backend)\n"
    "  --address A    address to bind (default: 127.0.0.1)\n"
    "  --threads N    worker threads, one io_context each (default: 1)\n"
    "Prints 'listening on ADDRESS:PORT' once bound; exits 0 on SIGTERM or SIGINT.\n";

[[noreturn]] void usage_error(std::string_view why) {
  std::cerr << "bgproxy-demo-backend: " << why << "\n" << kUsage;
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    std::string_view value;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      usage_error("missing value for " + std::string(arg));
    }
    if (arg == "--port") {
      auto p = parse_int(value, 0, 65535);
      if (!p) usage_error("bad --port: " + std::string(value));
      o.port = static_cast<unsigned short>(*p);
      o.port_set = true;
    } else if (arg == "--name") {
      if (value.empty() || value.find_first_of("\r\n") != std::string_view::npos) {
        usage_error("bad --name");
      }
      o.name = value;
    } else if (arg == "--address") {
      o.address = value;
    } else if (arg == "--threads") {
      auto t = parse_int(value, 1, 256);
      if (!t) usage_error("bad --threads: " + std::string(value));
      o.threads = static_cast<int>(*t);
    } else {
      usage_error("unknown argument: " + std::string(arg));
    }
  }
  if (!o.port_set) usage_error("--port is required");
  return o;
}

class Worker {
public:
  explicit Worker(Shared& shared) : shared_(shared), acceptor_(ioc_), retry_(ioc_) {}

  /// Opens and binds the acceptor; throws on failure (startup only).
  void listen(const tcp::endpoint& ep, bool reuse_port) {
    acceptor_.open(ep.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    if (reuse_port) acceptor_.set_option(ReusePort(true));
    acceptor_.bind(ep);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  net::io_context& ioc() { return ioc_; }

  void run() {
    do_accept();
    ioc_.run();
  }

private:
  void do_accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, Socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (ec) {
        // E.g. EMFILE: back off briefly instead of spinning on the ready listener.
        retry_.expires_after(std::chrono::milliseconds(10));
        retry_.async_wait([this](boost::system::error_code wec) {
          if (!wec) do_accept();
        });
        return;
      }
      start_session(std::move(socket), shared_);
      do_accept();
    });
  }

  net::io_context ioc_{1};  // first: destroyed last, after everything bound to it
  Shared& shared_;
  Acceptor acceptor_;
  net::basic_waitable_timer<std::chrono::steady_clock,
                            net::wait_traits<std::chrono::steady_clock>, Executor>
      retry_;
};

int run(const Options& opts) {
  boost::system::error_code ec;
  auto addr = net::ip::make_address(opts.address, ec);
  if (ec) usage_error("bad --address: " + opts.address);

  Shared shared;
  shared.name = opts.name;

  std::vector<std::unique_ptr<Worker>> workers;
  bool reuse_port = opts.threads > 1;
  tcp::endpoint ep(addr, opts.port);
  try {
    for (int i = 0; i < opts.threads; ++i) {
      auto w = std::make_unique<Worker>(shared);
      w->listen(ep, reuse_port);
      if (i == 0) ep = w->local_endpoint();  // later workers join the port actually bound
      workers.push_back(std::move(w));
    }
  } catch (const boost::system::system_error& e) {
    std::cerr << "bgproxy-demo-backend: cannot listen on " << opts.address << ":" << opts.port
              << ": " << e.code().message() << "\n";
    return 1;
  }

  net::signal_set signals(workers[0]->ioc(), SIGINT, SIGTERM);
  signals.async_wait([&workers](boost::system::error_code sec, int) {
    if (sec) return;
    for (auto& w : workers) w->ioc().stop();
  });

  std::printf("listening on %s:%u\n", ep.address().to_string().c_str(),
              static_cast<unsigned>(ep.port()));
  std::fflush(stdout);

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers.size(); ++i) {
    threads.emplace_back([w = workers[i].get()] { w->run(); });
  }
  workers[0]->run();
  for (auto& t : threads) t.join();
  return 0;
}

}  // namespace
}  // namespace bgproxy::demo

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  auto opts = bgproxy::demo::parse_args(argc, argv);
  return bgproxy::demo::run(opts);
}
