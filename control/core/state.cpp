#include "control/core/state.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <limits>
#include <new>
#include <set>
#include <utility>

#include <boost/json.hpp>

#include "bgproxy/text/quote.hpp"
#include "bgproxy/weights/basis_points.hpp"

namespace bgproxy::control {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 6> phase_names = {"idle",     "canary",      "baking",
                                                         "promoted", "rolled_back", "paused"};
constexpr std::array<std::string_view, 3> admin_names = {"enabled", "disabled", "draining"};

using weights::full_bp;
constexpr std::int64_t state_version = 1;

std::string_view admin_name(AdminState a) noexcept {
  const auto i = static_cast<std::size_t>(a);
  return i < admin_names.size() ? admin_names[i] : "enabled";
}

std::optional<AdminState> parse_admin(std::string_view name) noexcept {
  for (std::size_t i = 0; i < admin_names.size(); ++i) {
    if (admin_names[i] == name) return static_cast<AdminState>(i);
  }
  return std::nullopt;
}

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
  out += '}';
}

// ---------------------------------------------------------------------------------------------
// Reading. Every check names the field by its path, e.g. "services[0].weights.green".
// Unknown keys are ignored (a newer writer may add some); breaking changes bump "version".

std::string index_path(std::string_view base, std::size_t i) {
  return std::string(base) + "[" + std::to_string(i) + "]";
}

std::string key_path(std::string_view base, std::string_view key) {
  return base.empty() ? std::string(key) : std::string(base) + "." + std::string(key);
}

class Reader {
 public:
  std::string error;

  bool fail(const std::string& path, std::string_view what) {
    error = path + ": " + std::string(what);
    return false;
  }

  /// The member `key` of `o`, or nullptr after recording "missing".
  const json::value* need(const json::object& o, std::string_view base, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (v == nullptr) fail(key_path(base, key), "missing");
    return v;
  }

  const json::object* need_object(const json::object& o, std::string_view base,
                                  std::string_view key) {
    const auto* v = need(o, base, key);
    if (v == nullptr) return nullptr;
    if (!v->is_object()) {
      fail(key_path(base, key), "must be an object");
      return nullptr;
    }
    return &v->get_object();
  }

  const json::array* need_array(const json::object& o, std::string_view base,
                                std::string_view key) {
    const auto* v = need(o, base, key);
    if (v == nullptr) return nullptr;
    if (!v->is_array()) {
      fail(key_path(base, key), "must be an array");
      return nullptr;
    }
    return &v->get_array();
  }

  bool string(const json::object& o, std::string_view base, std::string_view key,
              std::string& out) {
    const auto* v = need(o, base, key);
    if (v == nullptr) return false;
    if (!v->is_string()) return fail(key_path(base, key), "must be a string");
    out.assign(v->get_string().data(), v->get_string().size());
    return true;
  }

  /// An integer in [lo, hi]; "1.0" is not an integer here, as our writer never produces it.
  bool integer(const json::object& o, std::string_view base, std::string_view key,
               std::int64_t lo, std::int64_t hi, std::int64_t& out) {
    const auto* v = need(o, base, key);
    if (v == nullptr) return false;
    const std::string what =
        "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    if (v->is_int64()) {
      out = v->get_int64();
    } else if (v->is_uint64()) {
      if (v->get_uint64() > static_cast<std::uint64_t>(hi)) return fail(key_path(base, key), what);
      out = static_cast<std::int64_t>(v->get_uint64());
    } else {
      return fail(key_path(base, key), what);
    }
    if (out < lo || out > hi) return fail(key_path(base, key), what);
    return true;
  }

  /// A percentage in [0, 100] → basis points, rounded to nearest (33.33 → 3333 exactly).
  bool percent(const json::object& o, std::string_view base, std::string_view key,
               std::uint32_t& bp) {
    const auto* v = need(o, base, key);
    if (v == nullptr) return false;
    double x = 0;
    if (v->is_int64()) {
      x = static_cast<double>(v->get_int64());
    } else if (v->is_uint64()) {
      x = static_cast<double>(v->get_uint64());
    } else if (v->is_double()) {
      x = v->get_double();
    } else {
      return fail(key_path(base, key), "must be a number in [0, 100]");
    }
    if (!std::isfinite(x) || x < 0.0 || x > 100.0) {
      return fail(key_path(base, key), "must be a number in [0, 100]");
    }
    bp = static_cast<std::uint32_t>(std::llround(x * 100.0));
    return true;
  }

  bool weights(const json::object& o, std::string_view base, std::string_view key, Weights& out) {
    const auto* w = need_object(o, base, key);
    if (w == nullptr) return false;
    const std::string path = key_path(base, key);
    std::uint32_t blue = 0;
    std::uint32_t green = 0;
    if (!percent(*w, path, "blue", blue) || !percent(*w, path, "green", green)) return false;
    if (blue + green != full_bp) return fail(path, "blue and green must add up to 100");
    out.green_bp = green;
    return true;
  }

  bool service(const json::value& v, const std::string& path, ServiceState& s) {
    if (!v.is_object()) return fail(path, "must be an object");
    const auto& o = v.get_object();
    if (!string(o, path, "name", s.name)) return false;
    if (s.name.empty()) return fail(key_path(path, "name"), "must not be empty");
    if (!weights(o, path, "weights", s.weights) || !weights(o, path, "stable", s.stable)) {
      return false;
    }

    const auto* target = need(o, path, "target");
    if (target == nullptr) return false;
    if (target->is_null()) {
      s.target.reset();
    } else if (target->is_string() && target->get_string() == "blue") {
      s.target = routing::Color::blue;
    } else if (target->is_string() && target->get_string() == "green") {
      s.target = routing::Color::green;
    } else {
      return fail(key_path(path, "target"), "must be \"blue\", \"green\" or null");
    }

    std::string phase;
    if (!string(o, path, "phase", phase)) return false;
    const auto p = parse_phase(phase);
    if (!p) return fail(key_path(path, "phase"), "unknown phase " + text::quote(phase));
    s.phase = *p;

    std::int64_t step = 0;
    if (!integer(o, path, "step", 0, std::numeric_limits<std::uint32_t>::max(), step)) {
      return false;
    }
    s.step = static_cast<std::uint32_t>(step);

    if (!string(o, path, "reason", s.reason)) return false;

    // "canary" came with the watchdog (issue 5); older files have none.
    if (o.contains("canary")) {
      const auto* canary = need_object(o, path, "canary");
      if (canary == nullptr) return false;
      const std::string cpath = key_path(path, "canary");
      const auto* steps = need(*canary, cpath, "steps");
      if (steps == nullptr) return false;
      if (!steps->is_array()) return fail(key_path(cpath, "steps"), "must be an array of percentages");
      json::object holder;
      for (const auto& step : steps->get_array()) {
        holder["step"] = step;
        std::uint32_t bp = 0;
        if (!percent(holder, key_path(cpath, "steps"), "step", bp)) return false;
        s.canary_steps_bp.push_back(bp);
      }
      constexpr std::int64_t max_ms = std::numeric_limits<std::int64_t>::max();
      if (!integer(*canary, cpath, "interval_ms", 0, max_ms, s.canary_interval_ms) ||
          !integer(*canary, cpath, "step_started_ms", 0, max_ms, s.step_started_ms)) {
        return false;
      }
    }

    const auto* servers = need_object(o, path, "servers");
    if (servers == nullptr) return false;
    for (const auto& kv : *servers) {
      const std::string address(kv.key());
      const std::string spath = key_path(path, "servers") + "[" + text::quote(address) + "]";
      if (address.empty()) return fail(spath, "address must not be empty");
      if (!kv.value().is_string()) {
        return fail(spath, "must be \"enabled\", \"disabled\" or \"draining\"");
      }
      const auto admin = parse_admin(kv.value().get_string());
      if (!admin) {
        return fail(spath, "unknown admin state " + text::quote(kv.value().get_string()) +
                               " (expected \"enabled\", \"disabled\" or \"draining\")");
      }
      s.servers[address] = *admin;
    }
    return true;
  }

  bool history(const json::value& v, const std::string& path, HistoryEntry& h) {
    if (!v.is_object()) return fail(path, "must be an object");
    const auto& o = v.get_object();
    if (!string(o, path, "time", h.time) || !string(o, path, "service", h.service) ||
        !string(o, path, "command", h.command)) {
      return false;
    }
    // "args" came with issue 11; before it, the command text held the arguments.
    if (o.contains("args")) {
      const auto* args = need_object(o, path, "args");
      if (args == nullptr) return false;
      h.args = *args;
    } else {
      auto legacy = parse_legacy_command(h.command);
      h.command = std::move(legacy.command);
      h.args = std::move(legacy.args);
    }
    const auto* by = need_object(o, path, "by");
    if (by == nullptr) return false;
    const std::string bpath = key_path(path, "by");
    std::int64_t uid = 0;
    std::int64_t pid = 0;
    if (!integer(*by, bpath, "uid", 0, std::numeric_limits<std::uint32_t>::max(), uid) ||
        !integer(*by, bpath, "pid", std::numeric_limits<std::int32_t>::min(),
                 std::numeric_limits<std::int32_t>::max(), pid)) {
      return false;
    }
    h.uid = static_cast<std::uint32_t>(uid);
    h.pid = static_cast<std::int32_t>(pid);
    return string(o, path, "reason", h.reason) && weights(o, path, "before", h.before) &&
           weights(o, path, "after", h.after);
  }

  bool state(const json::value& root, State& s) {
    if (!root.is_object()) return fail("state", "must be a JSON object");
    const auto& o = root.get_object();

    const auto* version = need(o, "", "version");
    if (version == nullptr) return false;
    if (!version->is_int64() && !version->is_uint64()) {
      return fail("version", "must be an integer");
    }
    if (!version->is_int64() || version->get_int64() != state_version) {
      return fail("version", "unsupported version " + json::serialize(*version) + " (expected " +
                                 std::to_string(state_version) + ")");
    }

    const auto* services = need_array(o, "", "services");
    if (services == nullptr) return false;
    std::set<std::string, std::less<>> names;
    for (std::size_t i = 0; i < services->size(); ++i) {
      const std::string path = index_path("services", i);
      ServiceState svc;
      if (!service((*services)[i], path, svc)) return false;
      if (!names.insert(svc.name).second) {
        return fail(key_path(path, "name"), "duplicate service " + text::quote(svc.name));
      }
      s.services.push_back(std::move(svc));
    }

    const auto* history_array = need_array(o, "", "history");
    if (history_array == nullptr) return false;
    for (std::size_t i = 0; i < history_array->size(); ++i) {
      HistoryEntry h;
      if (!history((*history_array)[i], index_path("history", i), h)) return false;
      s.record(std::move(h));  // keeps the newest max_history, like the live model
    }
    return true;
  }
};

}  // namespace

std::string_view phase_name(Phase p) noexcept {
  const auto i = static_cast<std::size_t>(p);
  return i < phase_names.size() ? phase_names[i] : "idle";
}

std::optional<Phase> parse_phase(std::string_view name) noexcept {
  for (std::size_t i = 0; i < phase_names.size(); ++i) {
    if (phase_names[i] == name) return static_cast<Phase>(i);
  }
  return std::nullopt;
}

json::value percent_arg(std::uint32_t bp) {
  if (bp % 100 == 0) return json::value(static_cast<std::int64_t>(bp / 100));
  return json::value(weights::to_percent(bp));
}

HistoryCommand parse_legacy_command(std::string_view text) {
  std::vector<std::string_view> words;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t space = std::min(text.find(' ', start), text.size());
    words.push_back(text.substr(start, space - start));
    start = space + 1;
  }
  const auto is = [&](std::initializer_list<std::string_view> want) {
    return words.size() == want.size() && std::equal(want.begin(), want.end(), words.begin(), [](auto w, auto x) {
             return w.empty() || w == x;  // an empty word in `want` matches any word
           });
  };
  const auto one_of = [](std::string_view w, std::initializer_list<std::string_view> names) {
    return std::find(names.begin(), names.end(), w) != names.end();
  };
  const auto color = [&](std::string_view w) { return one_of(w, {"blue", "green"}); };

  if (is({"split", "green", ""})) {
    if (const auto bp = weights::parse_percent(words[2])) return {"split", {{"green", percent_arg(*bp)}}};
  } else if (is({"switch", ""}) && color(words[1])) {
    return {"switch", {{"color", words[1]}}};
  } else if (is({"canary", "start", "", ""}) && color(words[2])) {
    json::array steps;
    for (std::size_t start = 0; start <= words[3].size();) {
      const std::size_t comma = std::min(words[3].find(',', start), words[3].size());
      const auto bp = weights::parse_percent(words[3].substr(start, comma - start));
      if (!bp) return {std::string(text), {}};
      steps.push_back(percent_arg(*bp));
      start = comma + 1;
    }
    return {"canary", {{"action", "start"}, {"target", words[2]}, {"steps", std::move(steps)}}};
  } else if (is({"canary", ""}) && one_of(words[1], {"pause", "resume", "abort", "advance"})) {
    return {"canary", {{"action", words[1]}}};
  } else if (is({"promote"})) {
    return {"canary", {{"action", "promote"}}};
  } else if (is({"server", "", ""}) && one_of(words[1], {"enable", "disable", "drain"}) && !words[2].empty()) {
    return {"server", {{"action", words[1]}, {"address", words[2]}}};
  }
  return {std::string(text), {}};
}

void State::record(HistoryEntry e) {
  history.push_back(std::move(e));
  while (history.size() > max_history) history.pop_front();
}

ServiceState* State::find(std::string_view service) noexcept {
  for (auto& s : services) {
    if (s.name == service) return &s;
  }
  return nullptr;
}

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

boost::system::result<State, std::string> from_json(std::string_view text) {
  try {
    json::parser parser;
    json::error_code ec;
    const std::size_t consumed = parser.write(text.data(), text.size(), ec);
    if (ec) {
      if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
        return std::string("invalid JSON: empty document");
      }
      return "invalid JSON at byte " + std::to_string(consumed) + ": " + ec.message();
    }
    const json::value root = parser.release();
    State s;
    Reader reader;
    if (!reader.state(root, s)) return std::move(reader.error);
    return s;
  } catch (const std::bad_alloc&) {
    return std::string("out of memory");
  } catch (const std::exception& e) {
    return std::string("cannot read state: ") + e.what();
  }
}

}  // namespace bgproxy::control
