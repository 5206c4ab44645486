#include "control/core/json_line.hpp"

#include <cmath>
#include <cstdio>

#include <boost/json/serialize.hpp>

namespace bgproxy::control {
namespace {

void write_double(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null";  // JSON has no NaN or infinity
    return;
  }
  char buf[32];
  if (d == std::floor(d) && std::fabs(d) < 1e15) std::snprintf(buf, sizeof buf, "%.1f", d);
  else std::snprintf(buf, sizeof buf, "%.10g", d);
  out += buf;
}

void write(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, value] : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += boost::json::serialize(boost::json::string_view(key));
        out += ':';
        write(out, value);
      }
      out += '}';
      break;
    }
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& value : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write(out, value);
      }
      out += ']';
      break;
    }
    case boost::json::kind::double_:
      write_double(out, v.get_double());
      break;
    default:
      out += boost::json::serialize(v);
      break;
  }
}

}  // namespace

std::string to_line(const boost::json::value& v) {
  std::string out;
  write(out, v);
  return out;
}

}  // namespace bgproxy::control
