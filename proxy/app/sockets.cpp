#include "proxy/app/sockets.hpp"

#include <algorithm>

#include "proxy/net/socket_options.hpp"

namespace bgproxy::proxy {
namespace {
constexpr int listen_backlog = 4096;
}

std::string endpoint_text(const tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

std::vector<std::string> listener_keys(const config::Config& cfg) {
  std::vector<std::string> keys;
  for (const auto& l : cfg.listen) {
    const auto seen = std::count_if(cfg.listen.data(), &l, [&l](const config::Listener& o) {
      return o.address.text == l.address.text;
    });
    keys.push_back(seen == 0 ? l.address.text : l.address.text + "#" + std::to_string(seen + 1));
  }
  return keys;
}

tcp::endpoint resolve(net::io_context& ioc, const config::Endpoint& e) {
  tcp::resolver resolver(ioc);
  return *resolver.resolve(e.host, std::to_string(e.port), tcp::resolver::numeric_service).begin();
}

tcp::acceptor bind_listener(net::io_context& ioc, const tcp::endpoint& ep, bool reuse_port) {
  tcp::acceptor a(ioc);
  a.open(ep.protocol());
  a.set_option(tcp::acceptor::reuse_address(true));
  if (reuse_port) a.set_option(ReusePort(true));
  a.bind(ep);
  a.listen(listen_backlog);
  return a;
}

}  // namespace bgproxy::proxy
