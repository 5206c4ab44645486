#pragma once
/// The read-only admin listener (`admin` in conf/bgproxy.yaml): GET /metrics, /healthz,
/// /readyz, /status, and the web page: / and the JSON it polls, /ui/data. Runs on the control thread's io_context; not on the
/// request path, so it uses Beast's plain message-oriented API.
/// Thread: control.

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace bgproxy::proxy {

class AdminServer {
 public:
  /// Produces a body asynchronously (e.g. after collecting every worker's stats).
  using Renderer = std::function<void(std::function<void(std::string)> reply)>;

  struct Handlers {
    Renderer metrics;  ///< text/plain; version=0.0.4
    Renderer status;   ///< application/json
    Renderer page_data;  ///< application/json, for the web page
    std::function<bool()> ready;
  };

  AdminServer(boost::asio::io_context& ioc, boost::asio::ip::tcp::acceptor&& bound, Handlers handlers);
  ~AdminServer();
  void start();
  void stop();

 private:
  class Session;
  void do_accept();

  boost::asio::io_context& ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  Handlers handlers_;
};

}  // namespace bgproxy::proxy
