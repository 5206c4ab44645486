#include "proxy/admin/page.hpp"

#include <openssl/evp.h>

#include "proxy/admin/page_html.hpp"

namespace bgproxy::proxy {
namespace {

/// The text between the page's first `open` and the `close` after it, as the browser hashes it.
std::string_view inline_block(std::string_view html, std::string_view open, std::string_view close) {
  const auto begin = html.find(open);
  if (begin == std::string_view::npos) return {};
  const auto from = begin + open.size();
  return html.substr(from, html.find(close, from) - from);
}

/// 'sha256-<base64>' of `text`, a CSP hash source.
std::string hash_source(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  unsigned char base64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  const int written = EVP_EncodeBlock(base64, digest, static_cast<int>(length));
  std::string out = "'sha256-";
  out.append(reinterpret_cast<const char*>(base64), static_cast<std::size_t>(written));
  out += '\'';
  return out;
}

}  // namespace

std::string_view page_html() noexcept { return generated::page_html; }

const std::string& page_csp() {
  static const std::string csp = [] {
    std::string out = "default-src 'none'; style-src ";
    out += hash_source(inline_block(page_html(), "<style>", "</style>"));
    out += "; script-src ";
    out += hash_source(inline_block(page_html(), "<script>", "</script>"));
    // img-src data: for the page's empty icon, so the browser asks for no /favicon.ico.
    out += "; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    return out;
  }();
  return csp;
}

}  // namespace bgproxy::proxy
