#include "proxy/http/head_writer.hpp"

#include <charconv>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/range/iterator_range.hpp>

#include "proxy/http/hop_by_hop.hpp"

namespace bgproxy::proxy {

namespace http = boost::beast::http;

namespace {

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

void append_number(std::string& out, unsigned long long v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

/// Fields the proxy rewrites itself, or that must not cross it: hop-by-hop ones
/// and those named by any Connection field (several fields form one list).
template <class Message>
bool skip_field(const Message& msg, const http::fields::value_type& f, bool has_connection,
                bool upgrade) {
  const auto name = f.name();
  if (upgrade && name == http::field::upgrade) return false;
  if (is_hop_by_hop(name)) return true;
  if (!has_connection) return false;
  for (const auto& c : boost::make_iterator_range(msg.equal_range(http::field::connection))) {
    if (named_in_connection(c.value(), f.name_string())) return true;
  }
  return false;
}

}  // namespace

void write_request_head(std::string& out, const RequestHead& req, std::string_view target,
                        const ForwardedFor& fwd, bool chunked, bool upgrade, std::string_view strip) {
  out.append(req.method_string());
  out.push_back(' ');
  out.append(target);
  out.append(" HTTP/1.1\r\n");

  const bool has_connection = req.count(http::field::connection) != 0;
  std::string_view xff, via;
  bool multiple_xff = false, multiple_via = false;
  for (const auto& f : req) {
    if (skip_field(req, f, has_connection, upgrade)) continue;
    const auto name = f.name_string();
    if (boost::beast::iequals(name, "X-Forwarded-For")) {
      multiple_xff = multiple_xff || !xff.empty();
      if (!multiple_xff) xff = f.value();
      continue;
    }
    switch (f.name()) {
      case http::field::host:
        if (!fwd.authority.empty()) continue;  // replaced by the absolute-form target's authority
        break;
      case http::field::via:
        multiple_via = multiple_via || !via.empty();
        if (!multiple_via) via = f.value();
        continue;
      case http::field::expect:
        continue;
      default:
        break;
    }
    if (boost::beast::iequals(name, "X-Forwarded-Proto") || boost::beast::iequals(name, "X-Forwarded-Host")) continue;
    if (!strip.empty() && boost::beast::iequals(name, strip)) continue;
    append_field(out, name, f.value());
  }

  if (!fwd.authority.empty()) append_field(out, "Host", fwd.authority);
  // Several X-Forwarded-For (or Via) fields are one comma-separated list (RFC 9110 §5.3).
  out.append("X-Forwarded-For: ");
  if (multiple_xff) {
    for (const auto& f : req) {
      if (!boost::beast::iequals(f.name_string(), "X-Forwarded-For")) continue;
      out.append(f.value());
      out.append(", ");
    }
  } else if (!xff.empty()) {
    out.append(xff);
    out.append(", ");
  }
  out.append(fwd.client_ip);
  out.append("\r\n");
  append_field(out, "X-Forwarded-Proto", fwd.proto);
  if (!fwd.host.empty()) append_field(out, "X-Forwarded-Host", fwd.host);

  out.append("Via: ");
  if (multiple_via) {
    for (const auto& f : req) {
      if (f.name() != http::field::via) continue;
      out.append(f.value());
      out.append(", ");
    }
  } else if (!via.empty()) {
    out.append(via);
    out.append(", ");
  }
  out.append(req.version() == 10 ? "1.0 bgproxy\r\n" : "1.1 bgproxy\r\n");

  if (chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (upgrade) out.append("Connection: upgrade\r\n");
  out.append("\r\n");
}

void write_response_head(std::string& out, const ResponseHead& res, const ResponseFraming& framing,
                         std::string_view extra) {
  out.append("HTTP/1.1 ");
  append_number(out, res.result_int());
  out.push_back(' ');
  // Beast reports a missing reason as its own placeholder for unknown codes;
  // an empty reason-phrase is valid (RFC 9112 §4), a made-up one is not.
  const auto reason = res.reason();
  if (reason != "<unknown-status>") out.append(reason);
  out.append("\r\n");

  const bool has_connection = res.count(http::field::connection) != 0;
  for (const auto& f : res) {
    if (skip_field(res, f, has_connection, framing.upgrade)) continue;
    append_field(out, f.name_string(), f.value());
  }
  if (framing.chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (framing.upgrade) {
    out.append("Connection: upgrade\r\n");
  } else if (!framing.keep_alive) {
    out.append("Connection: close\r\n");
  } else if (framing.client_http10) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append(extra);
  out.append("\r\n");
}

void write_local_response(std::string& out, unsigned status, bool keep_alive, std::string_view extra) {
  const auto reason = http::obsolete_reason(static_cast<http::status>(status));
  out.append("HTTP/1.1 ");
  append_number(out, status);
  out.push_back(' ');
  out.append(reason);
  out.append("\r\nContent-Type: text/plain\r\nContent-Length: ");
  append_number(out, reason.size() + 1);
  out.append(keep_alive ? "\r\n" : "\r\nConnection: close\r\n");
  out.append(extra);
  out.append("\r\n");
  out.append(reason);
  out.push_back('\n');
}

}  // namespace bgproxy::proxy
