// The state file's writer (to_json), apart from its reader (state.cpp): written by hand, since
// the answers and the file show weights as 70.0 / 33.33 and Boost 1.81 would print "7E1".
#include "control/core/state.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include <boost/json.hpp>

#include "bgproxy/weights/basis_points.hpp"
#include "control/core/state_names.hpp"

namespace bgproxy::control {

namespace json = boost::json;

namespace {

using weights::full_bp;

// ---------------------------------------------------------------------------------------------
// Writing. Done by hand rather than through json::serialize: Boost 1.81 prints doubles as
// "7E1", while the answers show weights as 70.0 / 33.33, and basis points format exactly.

/// Length of the well-formed UTF-8 sequence at s[i], or 0 if it is not one (RFC 3629 table:
/// no overlongs, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return len;
}

/// Appends `s` as a JSON string. Bytes that are not well-formed UTF-8 become U+FFFD, so the
/// file we write always parses again (a strict parser would otherwise call it corrupt).
void put_string(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (const std::size_t n = utf8_sequence(s, i); n != 0) {
        out.append(s.substr(i, n));
        i += n;
      } else {
        out += "\\ufffd";
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          std::array<char, 8> buf{};
          std::snprintf(buf.data(), buf.size(), "\\u%04x", static_cast<unsigned>(c));
          out += buf.data();
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

/// Basis points as a percentage that reads as a JSON double: 7000 → "70.0", 1250 → "12.5".
void put_percent(std::string& out, std::uint32_t bp) {
  out += weights::format_percent(bp);
  if (bp % 100 == 0) out += ".0";
}

void put_weights(std::string& out, const Weights& w) {
  // green_bp above 10000 breaks the model's invariant; clamp so the file stays loadable.
  const std::uint32_t green = std::min(w.green_bp, full_bp);
  out += "{\"blue\":";
  put_percent(out, full_bp - green);
  out += ",\"green\":";
  put_percent(out, green);
  out += '}';
}

void put_service(std::string& out, const ServiceState& s) {
  out += "{\"name\":";
  put_string(out, s.name);
  out += ",\"weights\":";
  put_weights(out, s.weights);
  out += ",\"stable\":";
  put_weights(out, s.stable);
  out += ",\"target\":";
  if (s.target) {
    put_string(out, routing::color_name(*s.target));
  } else {
    out += "null";
  }
  out += ",\"phase\":";
  put_string(out, phase_name(s.phase));
  out += ",\"step\":";
  out += std::to_string(s.step);
  out += ",\"reason\":";
  put_string(out, s.reason);
  out += ",\"canary\":{\"steps\":[";
  for (std::size_t i = 0; i < s.canary_steps_bp.size(); ++i) {
    if (i) out += ',';
    put_percent(out, s.canary_steps_bp[i]);
  }
  out += "],\"interval_ms\":";
  out += std::to_string(s.canary_interval_ms);
  out += ",\"step_started_ms\":";
  out += std::to_string(s.step_started_ms);
  out += '}';
  out += ",\"servers\":{";
  bool first = true;
  for (const auto& [address, admin] : s.servers) {
    if (!first) out += ',';
    first = false;
    put_string(out, address);
    out += ':';
    put_string(out, admin_name(admin));
  }
  out += "}}";
}

void put_value(std::string& out, const json::value& v);

void put_object(std::string& out, const json::object& o) {
  out += '{';
  bool first = true;
  for (const auto& kv : o) {
    if (!first) out += ',';
    first = false;
    put_string(out, kv.key());
    out += ':';
    put_value(out, kv.value());
  }
  out += '}';
}

/// Appends a value of a history entry's args. A double is written in its shortest form that reads
/// back as the same double, and always as a double ("10.0", not "10", which reads as an integer),
/// so that an entry read back from the file equals the one written.
void put_value(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      out += "null";
      break;
    case json::kind::bool_:
      out += v.get_bool() ? "true" : "false";
      break;
    case json::kind::int64:
      out += std::to_string(v.get_int64());
      break;
    case json::kind::uint64:
      out += std::to_string(v.get_uint64());
      break;
    case json::kind::double_: {
      if (!std::isfinite(v.get_double())) {
        out += "null";  // JSON has no NaN or infinity
        break;
      }
      std::array<char, 32> buf{};
      const auto end = std::to_chars(buf.data(), buf.data() + buf.size(), v.get_double()).ptr;
      const std::string_view text(buf.data(), static_cast<std::size_t>(end - buf.data()));
      out += text;
      if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
      break;
    }
    case json::kind::string:
      put_string(out, v.get_string());
      break;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v.get_array()) {
        if (!first) out += ',';
        first = false;
        put_value(out, item);
      }
      out += ']';
      break;
    }
    case json::kind::object:
      put_object(out, v.get_object());
      break;
  }
}

void put_history(std::string& out, const HistoryEntry& h) {
  out += "{\"time\":";
  put_string(out, h.time);
  out += ",\"service\":";
  put_string(out, h.service);
  out += ",\"command\":";
  put_string(out, h.command);
  out += ",\"args\":";
  put_object(out, h.args);
  out += ",\"by\":{\"uid\":";
  out += std::to_string(h.uid);
  out += ",\"pid\":";
  out += std::to_string(h.pid);
  out += "},\"reason\":";
  put_string(out, h.reason);
  out += ",\"before\":";
  put_weights(out, h.before);
  out += ",\"after\":";
  put_weights(out, h.after);
  if (!h.instance.empty()) {
    out += ",\"instance\":";
    put_string(out, h.instance);
  }
  if (h.local) out += ",\"local\":true";
  out += '}';
}


}  // namespace

std::string to_json(const State& s) {
  std::string out;
  out.reserve(256 + s.services.size() * 256 + s.history.size() * 224);
  out += "{\"version\":";
  out += std::to_string(state_version);
  out += ",\"services\":[";
  for (std::size_t i = 0; i < s.services.size(); ++i) {
    if (i != 0) out += ',';
    put_service(out, s.services[i]);
  }
  out += "],\"history\":[";
  for (std::size_t i = 0; i < s.history.size(); ++i) {
    if (i != 0) out += ',';
    put_history(out, s.history[i]);
  }
  out += "]}";
  return out;
}

}  // namespace bgproxy::control
