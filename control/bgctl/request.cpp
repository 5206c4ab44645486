#include "control/bgctl/request.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "bgproxy/config/parse.hpp"
#include "bgproxy/text/quote.hpp"
#include "bgproxy/weights/basis_points.hpp"
#include "control/core/command.hpp"

namespace bgproxy::bgctl {

namespace json = boost::json;

std::string shown(std::string_view s) { return text::quote(s, {.mark = '\'', .max_bytes = 40}); }

void throw_exception_from_error(const UsageError& e, const boost::source_location& loc) {
  boost::throw_exception(std::invalid_argument(e.message), loc);
}

namespace {

std::string weight_problem(std::string_view flag, std::string_view text) {
  return std::string(flag) + " must be a number between 0 and 100 with at most two decimals, not " + shown(text);
}

/// The request line, written by hand so that field order and number formatting are fixed
/// (Boost 1.81 would print 12.5 as "1.25E1").
class Line {
 public:
  explicit Line(std::string_view command) { add_string("command", command); }
  void add_string(std::string_view key, std::string_view value) {
    add_key(key);
    out_ += json::serialize(json::string_view(value.data(), value.size()));
  }
  void add_raw(std::string_view key, std::string_view json_text) {
    add_key(key);
    out_ += json_text;
  }
  void add_service(const Options& o) {
    if (!o.service.empty()) add_string("service", o.service);
  }
  std::string finish() && { return std::move(out_) + "}"; }

 private:
  void add_key(std::string_view key) {
    out_ += out_.empty() ? "{" : ",";
    out_ += '"';
    out_ += key;
    out_ += "\":";
  }
  std::string out_;
};

using Result = boost::system::result<std::string, UsageError>;

Result usage(std::string message) { return UsageError{std::move(message)}; }

// UsageError is constructible from a string, so the value needs an explicit tag.
Result done(Line&& l) { return Result(boost::system::in_place_value, std::move(l).finish()); }

Result build_split(const Options& o) {
  if (o.green && o.blue) return usage("split takes either --green or --blue, not both");
  if (!o.green && !o.blue) return usage("split needs --green N or --blue N");
  const bool green = o.green.has_value();
  const std::string& text = green ? *o.green : *o.blue;
  const auto bp = weights::parse_percent(text);
  if (!bp) return usage(weight_problem(green ? "--green" : "--blue", text));
  Line l("split");
  l.add_service(o);
  l.add_raw(green ? "green" : "blue", weights::format_percent(*bp));
  if (o.force) l.add_raw("force", "true");
  return done(std::move(l));
}

Result build_switch(const Options& o) {
  if (o.color.empty()) return usage("switch needs a color: blue or green");
  if (o.color != "blue" && o.color != "green") return usage("color must be blue or green, not " + shown(o.color));
  Line l("switch");
  l.add_service(o);
  l.add_string("color", o.color);
  if (o.force) l.add_raw("force", "true");
  return done(std::move(l));
}

/// "10,50,100" → "[10,50,100]": each a weight above 0, strictly increasing, the last 100.
Result steps_json(std::string_view text) {
  const auto bad = [&](std::string why) {
    return UsageError{"--steps " + shown(text) + ": " + std::move(why) + " (e.g. 10,50,100)"};
  };
  if (text.empty()) return bad("empty");
  std::string out = "[";
  std::uint32_t previous = 0;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    const std::string_view item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    const auto bp = weights::parse_percent(item);
    if (!bp) return bad(shown(item) + " is not a percentage between 0 and 100 with at most two decimals");
    if (weights::next_step_problem(previous, *bp)) return bad("steps must be increasing percentages ending at 100");
    previous = *bp;
    if (out.size() > 1) out += ',';
    out += weights::format_percent(*bp);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (previous != weights::full_bp) return bad("steps must be increasing percentages ending at 100");
  return Result(boost::system::in_place_value, out + "]");
}

/// --steps and --interval of canary start and release, added to `l`.
std::optional<UsageError> add_rollout_options(Line& l, const Options& o) {
  if (o.steps) {
    auto steps = steps_json(*o.steps);
    if (!steps) return steps.error();
    l.add_raw("steps", *steps);
  }
  if (o.interval) {
    const auto d = config::parse_duration(*o.interval);
    if (!d || d->count() <= 0)
      return UsageError{"--interval must be a duration above 0 such as 500ms, 60s, 5m or 1h, not " +
                        shown(*o.interval)};
    l.add_string("interval", *o.interval);
  }
  return std::nullopt;
}

Result build_canary(const Options& o) {
  static constexpr std::string_view actions[] = {"start", "pause", "resume", "abort"};
  if (o.action.empty()) return usage("canary needs an action: start, pause, resume or abort");
  if (std::find(std::begin(actions), std::end(actions), o.action) == std::end(actions))
    return usage("canary action must be start, pause, resume or abort, not " + shown(o.action));
  if (o.action != "start" && o.steps) return usage("--steps only goes with canary start");
  if (o.action != "start" && o.interval) return usage("--interval only goes with canary start");
  if (o.action != "start" && o.force) return usage("--force only goes with canary start");
  Line l("canary");
  l.add_service(o);
  l.add_string("action", o.action);
  if (auto problem = add_rollout_options(l, o)) return *problem;
  if (o.force) l.add_raw("force", "true");
  return done(std::move(l));
}

Result build_release(const Options& o) {
  if (!o.color.empty() && o.color != "blue" && o.color != "green")
    return usage("--to must be blue or green, not " + shown(o.color));
  if (o.smoke.size() > control::max_smoke_paths)
    return usage("at most " + std::to_string(control::max_smoke_paths) + " --smoke paths");
  Line l("release");
  l.add_service(o);
  if (!o.color.empty()) l.add_string("to", o.color);
  if (!o.smoke.empty()) {
    json::array paths;
    for (const auto& p : o.smoke) {
      if (!control::valid_smoke_path(p)) return usage("--smoke must be a path such as /health, not " + shown(p));
      paths.emplace_back(p);
    }
    l.add_raw("smoke", json::serialize(paths));
  }
  if (auto problem = add_rollout_options(l, o)) return *problem;
  if (o.force) l.add_raw("force", "true");
  return done(std::move(l));
}

Result build_history(const Options& o) {
  Line l("history");
  l.add_service(o);
  if (o.limit) {
    const std::string& t = *o.limit;
    std::uint32_t n = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    if (t.empty() || ec != std::errc{} || end != t.data() + t.size() || n == 0 || t.front() == '+')
      return usage("--limit must be a whole number above 0, not " + shown(t));
    l.add_raw("limit", std::to_string(n));
  }
  return done(std::move(l));
}

Result build_server(const Options& o) {
  static constexpr std::string_view actions[] = {"enable", "disable", "drain"};
  if (o.action.empty()) return usage("server needs an action and an address: enable|disable|drain ADDRESS");
  if (std::find(std::begin(actions), std::end(actions), o.action) == std::end(actions))
    return usage("server action must be enable, disable or drain, not " + shown(o.action));
  if (o.address.empty()) return usage("server " + o.action + " needs the server's ADDRESS, e.g. 127.0.0.1:5006");
  if (!config::parse_endpoint(o.address))
    return usage("invalid server address " + shown(o.address) + " (expected host:port as in the config)");
  Line l("server");
  l.add_service(o);
  l.add_string("action", o.action);
  l.add_string("address", o.address);
  return done(std::move(l));
}

Result build_rollback(const Options& o) {
  Line l("rollback");
  l.add_service(o);
  if (o.drain) l.add_raw("drain", "true");
  return done(std::move(l));
}

Result build_plain(const Options& o, bool with_service) {
  Line l(o.command);
  if (with_service) l.add_service(o);
  return done(std::move(l));
}

}  // namespace

boost::system::result<std::string, UsageError> build_request(const Options& o) {
  const auto& c = o.command;
  if (o.local) {
    if (c != "split" && c != "switch" && c != "rollback" && c != "canary" && c != "server")
      return usage("--local only goes with a change: split, switch, rollback, canary or server");
    Options change = o;
    change.local = false;
    auto line = build_request(change);
    if (!line) return line;
    // Every builder ends its object with '}': the flag goes last, after the command's own fields.
    line->insert(line->size() - 1, ",\"local\":true");
    return line;
  }
  if (c == "status" || c == "health" || c == "events" || c == "shadow") return build_plain(o, true);
  if (c == "rollback") return build_rollback(o);
  if (c == "reload" || c == "upgrade") return build_plain(o, false);
  if (c == "split") return build_split(o);
  if (c == "switch") return build_switch(o);
  if (c == "canary") return build_canary(o);
  if (c == "release") return build_release(o);
  if (c == "history") return build_history(o);
  if (c == "server") return build_server(o);
  return usage("unknown command " + shown(c) + " (see bgctl help)");
}

}  // namespace bgproxy::bgctl
