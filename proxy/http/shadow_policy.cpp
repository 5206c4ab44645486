#include "proxy/http/shadow_policy.hpp"

#include <algorithm>

#include "bgproxy/routing/decide.hpp"

namespace bgproxy::proxy {

bool shadow_method(const config::Shadow& s, std::string_view method) noexcept {
  return std::any_of(s.methods.begin(), s.methods.end(), [method](const std::string& m) { return m == method; });
}

bool shadow_sampled(const config::Shadow& s, std::string_view method, std::string_view target) noexcept {
  if (s.percent_bp == 0) return false;
  // method + ' ' + target hashed without building the string.
  const std::uint64_t h = routing::stable_hash(target) * 0x100000001b3ULL ^ routing::stable_hash(method);
  return routing::bucket_of(h) < s.percent_bp;
}

std::string shadow_request(std::string_view forwarded_head, std::string_view body) {
  std::string out;
  out.reserve(forwarded_head.size() + shadow_marker.size() + body.size());
  // The head ends with the empty line: the marker goes before it.
  const auto end = forwarded_head.size() >= 2 ? forwarded_head.size() - 2 : forwarded_head.size();
  out.append(forwarded_head.substr(0, end)).append(shadow_marker).append(forwarded_head.substr(end)).append(body);
  return out;
}

}  // namespace bgproxy::proxy
