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
#include "control/core/state_names.hpp"

namespace bgproxy::control {

namespace json = boost::json;

namespace {

constexpr std::array<std::string_view, 6> phase_names = {"idle",     "canary",      "baking",
                                                         "promoted", "rolled_back", "paused"};

using weights::full_bp;

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
    if (!string(o, path, "reason", h.reason) || !weights(o, path, "before", h.before) ||
        !weights(o, path, "after", h.after)) {
      return false;
    }
    // Fleet fields (issue 13): absent outside a fleet.
    if (o.contains("instance") && !string(o, path, "instance", h.instance)) return false;
    if (const auto* local = o.if_contains("local")) {
      if (!local->is_bool()) return fail(key_path(path, "local"), "must be true or false");
      h.local = local->get_bool();
    }
    return true;
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

std::optional<routing::Color> unweighted_color(const Weights& w) noexcept {
  if (w.green_bp == 0) return routing::Color::green;
  if (w.green_bp == weights::full_bp) return routing::Color::blue;
  return std::nullopt;
}

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

boost::system::result<json::value, std::string> parse_state_text(std::string_view text) {
  // A JSON value is constructible from a string too: errors are named as such.
  const auto fail = [](std::string why) {
    return boost::system::result<json::value, std::string>(boost::system::in_place_error, std::move(why));
  };
  try {
    json::parser parser;
    json::error_code ec;
    const std::size_t consumed = parser.write(text.data(), text.size(), ec);
    if (ec) {
      if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
        return fail("invalid JSON: empty document");
      }
      return fail("invalid JSON at byte " + std::to_string(consumed) + ": " + ec.message());
    }
    return parser.release();
  } catch (const std::bad_alloc&) {
    return fail("out of memory");
  } catch (const std::exception& e) {
    return fail(std::string("cannot read state: ") + e.what());
  }
}

boost::system::result<State, std::string> from_json(const json::value& root) {
  try {
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

boost::system::result<State, std::string> from_json(std::string_view text) {
  auto root = parse_state_text(text);
  if (!root) return root.error();
  return from_json(*root);
}

}  // namespace bgproxy::control
