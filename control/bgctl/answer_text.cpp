#include "control/bgctl/answer_text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include <boost/json.hpp>

#include "bgproxy/weights/basis_points.hpp"

namespace bgproxy::bgctl {

namespace json = boost::json;

/// Text from the proxy, made safe for a terminal: control characters become '?'.
std::string clean(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    out += (c < 0x20 || c == 0x7f) ? '?' : ch;
  }
  return out;
}

const json::value* field(const json::object* o, std::string_view key) {
  if (o == nullptr) return nullptr;
  const auto it = o->find(key);
  return it == o->end() ? nullptr : &it->value();
}

const json::object* object_field(const json::object* o, std::string_view key) {
  const json::value* v = field(o, key);
  return v != nullptr ? v->if_object() : nullptr;
}

const json::array* array_field(const json::object* o, std::string_view key) {
  const json::value* v = field(o, key);
  return v != nullptr ? v->if_array() : nullptr;
}

std::optional<std::string> string_field(const json::object* o, std::string_view key) {
  const json::value* v = field(o, key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return clean(v->get_string());
}

std::optional<double> number_of(const json::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return std::nullopt;
}

std::optional<double> number_field(const json::object* o, std::string_view key) {
  const json::value* v = field(o, key);
  if (v == nullptr) return std::nullopt;
  return number_of(*v);
}

std::string text_or_dash(const json::object* o, std::string_view key) {
  return string_field(o, key).value_or(std::string(missing));
}

/// A whole number as given ("375", "-1"); anything else in its number form.
std::string integer_text(const json::object* o, std::string_view key) {
  const json::value* v = field(o, key);
  if (v == nullptr) return std::string(missing);
  if (v->is_int64()) return std::to_string(v->get_int64());
  if (v->is_uint64()) return std::to_string(v->get_uint64());
  if (v->is_double() && std::isfinite(v->get_double())) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v->get_double());
    return buf;
  }
  if (v->is_string()) return clean(v->get_string());
  return std::string(missing);
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

/// A weight in percent (70.0, 33.33) as "70%" / "33.33%".
std::string percent_text(std::optional<double> pct) {
  if (!pct || !std::isfinite(*pct)) return std::string(missing);
  const double bp = std::round(*pct * 100.0);
  if (bp < 0 || bp > 1e9) return fixed(*pct, 2) + "%";
  return weights::format_percent(static_cast<std::uint32_t>(bp)) + "%";
}

std::string weights_text(const json::object* w) {
  return "blue " + percent_text(number_field(w, "blue")) + " / green " + percent_text(number_field(w, "green"));
}

/// An error rate (0.213) as "21.30%".
std::string rate_text(std::optional<double> rate) {
  if (!rate || !std::isfinite(*rate)) return std::string(missing);
  return fixed(*rate * 100.0, 2) + "%";
}

/// Seconds (0.004) as milliseconds: "4ms", "0.5ms", "812ms".
std::string ms_text(std::optional<double> seconds) {
  if (!seconds || !std::isfinite(*seconds)) return std::string(missing);
  const double ms = *seconds * 1000.0;
  std::string s = fixed(ms, ms < 10.0 ? 1 : 0);
  if (s.size() > 2 && s.ends_with(".0")) s.resize(s.size() - 2);
  return s + "ms";
}

/// `v` with up to `decimals` decimals and no trailing zeros: "12.5", "0.03", "0".
std::string trimmed(double v, int decimals) {
  std::string s = fixed(v, decimals);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s == "-0" ? "0" : s;
}

/// Requests per second with up to two decimals: "12.5", "0.03", "0".
std::string rps_text(std::optional<double> rps) {
  if (!rps || !std::isfinite(*rps)) return std::string(missing);
  return trimmed(*rps, 2);
}

std::size_t width(std::string_view s) {
  std::size_t n = 0;
  for (const char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

std::string table(const std::vector<std::vector<std::string>>& rows, std::string_view indent) {
  std::vector<std::size_t> widths;
  for (const auto& r : rows) {
    if (widths.size() < r.size()) widths.resize(r.size(), 0);
    for (std::size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], width(r[i]));
  }
  std::string out;
  for (const auto& r : rows) {
    out += indent;
    for (std::size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out.append(widths[i] - width(r[i]) + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

}  // namespace bgproxy::bgctl
