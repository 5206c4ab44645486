// CIDR networks: parse_cidr() and Cidr::contains(). IPv4 is kept IPv4-mapped so that
// one prefix comparison serves both families (an IPv4 peer arrives as ::ffff:a.b.c.d
// on a dual-stack socket, or is mapped by the caller).
#include "detail.hpp"

namespace bgproxy::config {

bool Cidr::contains(const std::array<std::uint8_t, 16>& v6) const noexcept {
  const unsigned bits = prefix > 128 ? 128u : prefix;
  const unsigned full = bits / 8;
  for (unsigned i = 0; i < full; ++i)
    if (address[i] != v6[i]) return false;
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xffu << (8 - rest));
  return (address[full] & mask) == (v6[full] & mask);
}

std::optional<Cidr> parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  bool v4 = false;
  const auto addr = detail::parse_ip(text.substr(0, slash), &v4);
  if (!addr) return std::nullopt;
  unsigned prefix = v4 ? 32 : 128;
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) return std::nullopt;
    unsigned v = 0;
    for (char c : p) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > (v4 ? 32u : 128u)) return std::nullopt;
    prefix = v;
  }
  Cidr c;
  c.address = *addr;
  c.prefix = static_cast<std::uint8_t>(v4 ? prefix + 96 : prefix);
  c.text = std::string(text);
  return c;
}

}  // namespace bgproxy::config
