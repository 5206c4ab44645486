#include "proxy/http/request_target.hpp"

#include <boost/beast/core/string.hpp>

namespace bgproxy::proxy {

std::string_view strip_port(std::string_view host) noexcept {
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  return host.substr(0, host.find(':'));
}

RequestTarget split_target(std::string_view target, std::string_view host_header) noexcept {
  RequestTarget t;
  std::string_view host = host_header;
  if (target == "*") {
    t.origin_form = target;
    t.path = "/";
  } else if (!target.empty() && target.front() == '/') {
    t.origin_form = target;
  } else {
    // absolute-form: its authority replaces Host (RFC 9112 §3.2.2)
    std::size_t scheme_end = 0;
    if (boost::beast::iequals(target.substr(0, 7), "http://")) scheme_end = 7;
    else if (boost::beast::iequals(target.substr(0, 8), "https://")) scheme_end = 8;
    else return t;
    const auto rest = target.substr(scheme_end);
    const auto slash = rest.find_first_of("/?");
    host = rest.substr(0, slash);
    if (host.empty()) return t;
    t.authority = host;
    t.origin_form = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
    if (t.origin_form.front() == '?') return t;  // "http://h?q" has no path to forward
  }
  if (t.path.empty()) t.path = t.origin_form.substr(0, t.origin_form.find('?'));
  t.host_without_port = strip_port(host);
  t.valid = true;
  return t;
}

}  // namespace bgproxy::proxy
