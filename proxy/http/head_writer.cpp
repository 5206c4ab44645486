#include "proxy/http/head_writer.hpp"

#include <charconv>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/status.hpp>

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

/// Fields the proxy rewrites itself, or that must not cross it.
template <class Fields>
bool skip_field(const typename Fields::value_type& f, std::string_view connection, bool upgrade) {
  const auto name = f.name();
  if (upgrade && name == http::field::upgrade) return false;
  if (is_hop_by_hop(name)) return true;
  return !connection.empty() && named_in_connection(connection, f.name_string());
}

}  // namespace

void write_request_head(std::string& out, const RequestHead& req, std::string_view target,
                        const ForwardedFor& fwd, bool chunked, bool upgrade, std::string_view strip) {
  out.append(req.method_string());
  out.push_back(' ');
  out.append(target);
  out.append(" HTTP/1.1\r\n");

  const std::string_view connection = req[http::field::connection];
  std::string_view xff, via;
  bool multiple_xff = false, multiple_via = false;
  for (const auto& f : req) {
    if (skip_field<http::fields>(f, connection, upgrade)) continue;
    const auto name = f.name_string();
    if (boost::beast::iequals(name, "X-Forwarded-For")) {
      multiple_xff = multiple_xff || !xff.empty();
      if (!multiple_xff) xff = f.value();
      continue;
    }
    switch (f.name()) {
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
  const auto reason = res.reason();
  out.append(reason.empty() ? http::obsolete_reason(res.result()) : reason);
  out.append("\r\n");

  const std::string_view connection = res[http::field::connection];
  for (const auto& f : res) {
    if (skip_field<http::fields>(f, connection, framing.upgrade)) continue;
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
