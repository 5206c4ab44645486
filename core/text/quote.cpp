#include "bgproxy/text/quote.hpp"

namespace bgproxy::text {

std::string quote(std::string_view s, QuoteStyle style) {
  bool cut = false;
  if (s.size() > style.max_bytes) {
    std::size_t n = style.max_bytes;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // not inside a sequence
    s = s.substr(0, n);
    cut = true;
  }
  // Built with append: GCC 12 reports a false -Wrestrict on "lit" + std::string&&.
  std::string out;
  out.reserve(s.size() + 8);
  out.push_back(style.mark);
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == style.mark || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else if (c == '\t') {
      out.append("\\t");
    } else if (u < 0x20 || u == 0x7F) {
      static constexpr char hex[] = "0123456789abcdef";
      out.append("\\x");
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 0xF]);
    } else {
      out.push_back(c);
    }
  }
  if (cut) out.append("...");
  out.push_back(style.mark);
  return out;
}

}  // namespace bgproxy::text
