#pragma once
/// Resolving and binding the proxy's own listening sockets.
/// Thread: control.

#include <string>
#include <vector>

#include "bgproxy/config/config.hpp"
#include "proxy/net/types.hpp"

namespace bgproxy::proxy {

/// "127.0.0.1:8080", "[::1]:8080"
std::string endpoint_text(const tcp::endpoint& ep);

/// What names each of `cfg.listen` across reloads and upgrades: its address as written,
/// "ADDRESS#2" for the second listener written the same way (port 0 twice), and so on.
std::vector<std::string> listener_keys(const config::Config& cfg);

/// @throws boost::system::system_error when `e` does not resolve
tcp::endpoint resolve(net::io_context& ioc, const config::Endpoint& e);

/// A listening socket on `ep` (SO_REUSEADDR, and SO_REUSEPORT when asked).
/// @throws boost::system::system_error
tcp::acceptor bind_listener(net::io_context& ioc, const tcp::endpoint& ep, bool reuse_port);

}  // namespace bgproxy::proxy
