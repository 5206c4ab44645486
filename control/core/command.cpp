// Control-socket request parsing: one JSON line -> Command.
//
// HAProxy-style: a static table of commands (name, usage, summary) drives both
// `bgctl help` and the dispatch; every row has a parser of its own and the set
// of fields it accepts, so an unknown field is refused before any value is read.
// Nothing here throws past parse_command(): Boost.JSON runs on its error_code
// overload and every value is checked for its kind before it is read.
#include "control/core/command.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <system_error>

#include <boost/json.hpp>

#include "bgproxy/config/parse.hpp"
#include "bgproxy/text/quote.hpp"
#include "bgproxy/weights/basis_points.hpp"

namespace bgproxy::control {
namespace {

namespace json = boost::json;

// ---------------------------------------------------------------------------------
// Weights: percent with at most two decimals -> basis points, exactly (bgproxy/weights).

using weights::PercentProblem;

struct Weight {
  std::uint32_t bp = 0;
  PercentProblem problem = PercentProblem::none;
};

constexpr Weight weight_problem(PercentProblem p) noexcept { return Weight{0, p}; }

Weight weight_from_text(std::string_view text) noexcept {
  Weight w;
  if (const auto bp = weights::parse_percent(text, &w.problem)) w.bp = *bp;
  return w;
}

// A JSON double has lost its text; its shortest round-trip decimal form is the
// text the sender meant (0.29 prints as "0.29", never 0.28999...), so it goes
// through the same decimal check as a string.
Weight weight_from_double(double d) noexcept {
  if (!std::isfinite(d) || d < 0.0 || d > 100.0) return weight_problem(PercentProblem::out_of_range);
  if (d == 0.0) return Weight{0, PercentProblem::none};  // also -0.0
  std::array<char, 400> buf{};  // fixed form of the smallest denormal is ~330 chars
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), d, std::chars_format::fixed);
  if (r.ec != std::errc()) return weight_problem(PercentProblem::too_precise);
  return weight_from_text(std::string_view(buf.data(), static_cast<std::size_t>(r.ptr - buf.data())));
}

Weight weight_from_json(const json::value& v) noexcept {
  switch (v.kind()) {
    case json::kind::int64: {
      const std::int64_t n = v.get_int64();
      if (n < 0 || n > 100) return weight_problem(PercentProblem::out_of_range);
      return Weight{static_cast<std::uint32_t>(n) * 100, PercentProblem::none};
    }
    case json::kind::uint64: {
      const std::uint64_t n = v.get_uint64();
      if (n > 100) return weight_problem(PercentProblem::out_of_range);
      return Weight{static_cast<std::uint32_t>(n) * 100, PercentProblem::none};
    }
    case json::kind::double_: return weight_from_double(v.get_double());
    case json::kind::string: {
      const json::string& s = v.get_string();
      return weight_from_text(std::string_view(s.data(), s.size()));
    }
    default: return weight_problem(PercentProblem::not_number);
  }
}

std::string_view json_string(const json::value& v) noexcept {
  const json::string& s = v.get_string();
  return std::string_view(s.data(), s.size());
}

// ---------------------------------------------------------------------------------
// The command table.

using Error = std::optional<CommandError>;
using ParseFn = Error (*)(const json::object&, Command&);

constexpr std::array<CommandInfo, 13> infos{{
    {"status", "status [-s SERVICE] [--watch]",
     "weights, target, rollout phase, per-server health, per-color rps, error rate and p95"},
    {"split", "split --green N | --blue N [-s SERVICE] [--force]",
     "set the green weight in percent (0-100, up to two decimals); blue gets the rest"},
    {"switch", "switch blue|green [-s SERVICE] [--force]", "send all traffic of a service to one color"},
    {"rollback", "rollback [-s SERVICE] [--drain]",
     "go back to the last stable weights; --drain also cuts what is in flight to the color left at 0 %"},
    {"canary", "canary start [--steps 10,50,100] [--interval 60s] | pause | resume | abort [-s SERVICE]",
     "walk the canary steps under the watchdog; pause, resume or abort (= rollback) it"},
    {"health", "health [-s SERVICE] [--watch]", "per-server health-check state and last check"},
    {"history", "history [-s SERVICE] [--limit N]", "the last N changes (default 20), oldest first, with who made them"},
    {"server", "server enable|disable|drain ADDRESS [-s SERVICE]",
     "take a server in or out of rotation; drain lets its in-flight requests finish"},
    {"reload", "reload", "re-read the configuration file, keeping the current split"},
    {"upgrade", "upgrade",
     "start the bgproxy binary again; the new process takes over the sockets, the old one drains"},
    {"release",
     "release [-s SERVICE] [--to blue|green] [--smoke PATH]... [--steps 10,50,100] [--interval 60s] [--force] "
     "[--wait] [--timeout 30m]",
     "smoke-test the idle color through the proxy, then start its canary; --wait follows it to the end"},
    {"events", "events [-s SERVICE]",
     "stream changes (switch, canary step, verdict, rollback, promotion, health) as JSON lines"},
    {"shadow", "shadow [-s SERVICE]",
     "mirrored requests: compared, dropped, failed; mismatch rate by field with samples; paired latency"},
}};

struct Row {
  std::string_view name;
  CommandKind kind;
  std::span<const std::string_view> fields;  ///< accepted besides "command"
  ParseFn parse;
};

Error field_error(std::string message) { return CommandError{std::move(message)}; }

Error read_service(const json::object& o, Command& c) {
  const json::value* v = o.if_contains("service");
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) return field_error("\"service\" must be a string");
  c.service = std::string(json_string(*v));
  return std::nullopt;
}

Error read_force(const json::object& o, Command& c) {
  const json::value* v = o.if_contains("force");
  if (v == nullptr) return std::nullopt;
  if (!v->is_bool()) return field_error("\"force\" must be true or false");
  c.force = v->get_bool();
  return std::nullopt;
}

Error parse_service_only(const json::object& o, Command& c) { return read_service(o, c); }

Error parse_rollback(const json::object& o, Command& c) {
  if (auto e = read_service(o, c)) return e;
  const json::value* v = o.if_contains("drain");
  if (v == nullptr) return std::nullopt;
  if (!v->is_bool()) return field_error("\"drain\" must be true or false");
  c.drain = v->get_bool();
  return std::nullopt;
}

Error parse_nothing(const json::object&, Command&) { return std::nullopt; }

Error parse_split(const json::object& o, Command& c) {
  if (auto e = read_service(o, c)) return e;
  if (auto e = read_force(o, c)) return e;
  const json::value* green = o.if_contains("green");
  const json::value* blue = o.if_contains("blue");
  if ((green == nullptr) == (blue == nullptr)) return field_error("split needs exactly one of \"green\" or \"blue\"");
  const Weight w = weight_from_json(green != nullptr ? *green : *blue);
  switch (w.problem) {
    case PercentProblem::none: break;
    case PercentProblem::not_number:
      return field_error(green != nullptr ? "\"green\" must be a number" : "\"blue\" must be a number");
    case PercentProblem::out_of_range:
      return field_error(green != nullptr ? "green weight must be between 0 and 100"
                                          : "blue weight must be between 0 and 100");
    case PercentProblem::too_precise:
      return field_error(green != nullptr ? "green weight has more than two decimals"
                                          : "blue weight has more than two decimals");
  }
  c.green_bp = green != nullptr ? w.bp : weights::full_bp - w.bp;
  return std::nullopt;
}

Error parse_switch(const json::object& o, Command& c) {
  if (auto e = read_service(o, c)) return e;
  if (auto e = read_force(o, c)) return e;
  const json::value* v = o.if_contains("color");
  if (v == nullptr) return field_error("switch needs \"color\" (blue or green)");
  const std::string_view color = v->is_string() ? json_string(*v) : std::string_view{};
  if (color == "blue") c.color = routing::Color::blue;
  else if (color == "green") c.color = routing::Color::green;
  else return field_error("color must be \"blue\" or \"green\"");
  return std::nullopt;
}

Error read_steps(const json::value& v, Command& c) {
  const json::array* a = v.if_array();
  if (a == nullptr) return field_error("\"steps\" must be an array of numbers");
  constexpr std::string_view order = "canary steps must be increasing percentages ending at 100";
  std::vector<std::uint32_t> steps;
  steps.reserve(a->size());
  for (const json::value& item : *a) {
    const Weight w = weight_from_json(item);
    switch (w.problem) {
      case PercentProblem::none: break;
      case PercentProblem::not_number: return field_error("\"steps\" must be an array of numbers");
      case PercentProblem::out_of_range: return field_error(std::string(order));
      case PercentProblem::too_precise: return field_error("canary step has more than two decimals");
    }
    if (weights::next_step_problem(steps.empty() ? 0 : steps.back(), w.bp)) return field_error(std::string(order));
    steps.push_back(w.bp);
  }
  if (weights::check_steps(steps)) return field_error(std::string(order));  // empty, or not ending at 100
  c.steps_bp = std::move(steps);
  return std::nullopt;
}

Error read_interval(const json::value& v, Command& c) {
  if (!v.is_string()) return field_error("\"interval\" must be a string such as \"60s\"");
  const std::string_view given = json_string(v);
  const auto d = config::parse_duration(given);
  if (!d) return field_error("interval: invalid duration " + text::quote(given));
  if (d->count() <= 0) return field_error("interval must be greater than 0");
  c.interval = *d;
  return std::nullopt;
}

Error parse_canary(const json::object& o, Command& c) {
  if (auto e = read_service(o, c)) return e;
  const json::value* v = o.if_contains("action");
  if (v == nullptr) return field_error("canary needs \"action\" (start, pause, resume, abort)");
  if (!v->is_string()) return field_error("\"action\" must be a string");
  const std::string_view action = json_string(*v);
  if (action == "start") c.canary = CanaryAction::start;
  else if (action == "pause") c.canary = CanaryAction::pause;
  else if (action == "resume") c.canary = CanaryAction::resume;
  else if (action == "abort") c.canary = CanaryAction::abort;
  else return field_error("unknown canary action " + text::quote(action));

  if (c.canary != CanaryAction::start) {
    for (std::string_view only_start : {"steps", "interval", "force"})
      if (o.contains(only_start))
        return field_error("unknown field \"" + std::string(only_start) + "\" for canary " + std::string(action));
    return std::nullopt;
  }
  if (auto e = read_force(o, c)) return e;
  if (const json::value* s = o.if_contains("steps"))
    if (auto e = read_steps(*s, c)) return e;
  if (const json::value* i = o.if_contains("interval"))
    if (auto e = read_interval(*i, c)) return e;
  return std::nullopt;
}

Error parse_history(const json::object& o, Command& c) {
  if (auto e = read_service(o, c)) return e;
  const json::value* v = o.if_contains("limit");
  if (v == nullptr) return std::nullopt;
  if (v->is_int64() && v->get_int64() > 0) c.limit = static_cast<std::size_t>(v->get_int64());
  else if (v->is_uint64()) c.limit = static_cast<std::size_t>(v->get_uint64());
  else return field_error("limit must be a positive integer");
  return std::nullopt;
}

Error parse_server(const json::object& o, Command& c) {
  if (auto e = read_service(o, c)) return e;
  const json::value* action = o.if_contains("action");
  const json::value* address = o.if_contains("address");
  constexpr std::string_view needs = "server needs \"action\" (enable, disable, drain) and \"address\"";
  if (action == nullptr || address == nullptr) return field_error(std::string(needs));
  if (!action->is_string()) return field_error("\"action\" must be a string");
  const std::string_view a = json_string(*action);
  if (a == "enable") c.server = ServerAction::enable;
  else if (a == "disable") c.server = ServerAction::disable;
  else if (a == "drain") c.server = ServerAction::drain;
  else return field_error("unknown server action " + text::quote(a));
  if (!address->is_string()) return field_error("\"address\" must be a string");
  if (address->get_string().empty()) return field_error(std::string(needs));
  c.address = std::string(json_string(*address));
  return std::nullopt;
}

Error read_smoke(const json::value& v, Command& c) {
  constexpr std::string_view shape = "\"smoke\" must be an array of paths such as \"/health\"";
  const json::array* a = v.if_array();
  if (a == nullptr) return field_error(std::string(shape));
  if (a->size() > max_smoke_paths) return field_error("at most " + std::to_string(max_smoke_paths) + " smoke paths");
  for (const json::value& item : *a) {
    if (!item.is_string()) return field_error(std::string(shape));
    const std::string_view path = json_string(item);
    if (!valid_smoke_path(path))
      return field_error("invalid smoke path " + text::quote(path) + " (a path such as /health)");
    c.smoke.emplace_back(path);
  }
  return std::nullopt;
}

}  // namespace

bool valid_smoke_path(std::string_view path) noexcept {
  if (path.empty() || path.front() != '/' || path.size() > max_smoke_path_bytes) return false;
  return std::all_of(path.begin(), path.end(), [](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return u > 0x20 && u != 0x7f && ch != '#';
  });
}

namespace {

Error parse_release(const json::object& o, Command& c) {
  if (auto e = read_service(o, c)) return e;
  if (const json::value* to = o.if_contains("to")) {
    const std::string_view color = to->is_string() ? json_string(*to) : std::string_view{};
    if (color == "blue") c.release_to = routing::Color::blue;
    else if (color == "green") c.release_to = routing::Color::green;
    else return field_error("\"to\" must be \"blue\" or \"green\"");
  }
  if (const json::value* s = o.if_contains("smoke"))
    if (auto e = read_smoke(*s, c)) return e;
  if (const json::value* s = o.if_contains("steps"))
    if (auto e = read_steps(*s, c)) return e;
  if (const json::value* i = o.if_contains("interval"))
    if (auto e = read_interval(*i, c)) return e;
  return read_force(o, c);
}

constexpr std::array<std::string_view, 1> service_fields{"service"};
constexpr std::array<std::string_view, 0> no_fields{};
constexpr std::array<std::string_view, 5> split_fields{"service", "green", "blue", "force", "local"};
constexpr std::array<std::string_view, 4> switch_fields{"service", "color", "force", "local"};
constexpr std::array<std::string_view, 3> rollback_fields{"service", "drain", "local"};
constexpr std::array<std::string_view, 6> canary_fields{"service", "action", "steps", "interval", "force", "local"};
constexpr std::array<std::string_view, 2> history_fields{"service", "limit"};
constexpr std::array<std::string_view, 6> release_fields{"service", "to", "smoke", "steps", "interval", "force"};
constexpr std::array<std::string_view, 4> server_fields{"service", "action", "address", "local"};

constexpr std::array<Row, 13> rows{{
    {"status", CommandKind::status, service_fields, parse_service_only},
    {"split", CommandKind::split, split_fields, parse_split},
    {"switch", CommandKind::switch_color, switch_fields, parse_switch},
    {"rollback", CommandKind::rollback, rollback_fields, parse_rollback},
    {"canary", CommandKind::canary, canary_fields, parse_canary},
    {"health", CommandKind::health, service_fields, parse_service_only},
    {"history", CommandKind::history, history_fields, parse_history},
    {"server", CommandKind::server, server_fields, parse_server},
    {"reload", CommandKind::reload, no_fields, parse_nothing},
    {"upgrade", CommandKind::upgrade, no_fields, parse_nothing},
    {"release", CommandKind::release, release_fields, parse_release},
    {"events", CommandKind::events, service_fields, parse_service_only},
    {"shadow", CommandKind::shadow, service_fields, parse_service_only},
}};

// The help table and the dispatch table are one list in two shapes: same names, same order.
constexpr bool tables_agree() {
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (rows[i].name != infos[i].name || infos[i].usage.substr(0, infos[i].name.size()) != infos[i].name) return false;
  return true;
}
static_assert(tables_agree(), "command_table() and the dispatch rows must list the same commands in the same order");

std::string command_names() {
  std::string out;
  for (const Row& r : rows) {
    if (!out.empty()) out += ", ";
    out += r.name;
  }
  return out;
}

bool is_blank(std::string_view line) noexcept {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

}  // namespace

void throw_exception_from_error(const CommandError& e, const boost::source_location&) {
  throw std::runtime_error(e.message);
}

boost::system::result<Command, CommandError> parse_command(std::string_view line) {
  if (is_blank(line)) return CommandError{"empty request"};

  boost::system::error_code ec;
  const json::value doc = json::parse(line, ec);
  if (ec) return CommandError{"malformed JSON: " + ec.message()};
  const json::object* o = doc.if_object();
  if (o == nullptr) return CommandError{"request must be a JSON object"};

  const json::value* name_value = o->if_contains("command");
  if (name_value == nullptr) return CommandError{"missing \"command\""};
  if (!name_value->is_string()) return CommandError{"\"command\" must be a string"};
  const std::string_view name = json_string(*name_value);

  const auto row = std::find_if(rows.begin(), rows.end(), [&](const Row& r) { return r.name == name; });
  if (row == rows.end()) return CommandError{"unknown command " + text::quote(name) + " (try: " + command_names() + ")"};

  for (const auto& field : *o) {
    const std::string_view key = field.key();
    if (key == "command") continue;
    if (std::find(row->fields.begin(), row->fields.end(), key) == row->fields.end())
      return CommandError{"unknown field " + text::quote(key) + " for " + std::string(row->name)};
  }

  Command c;
  c.kind = row->kind;
  if (Error e = row->parse(*o, c)) return std::move(*e);
  if (const json::value* local = o->if_contains("local")) {
    if (!local->is_bool()) return CommandError{"\"local\" must be true or false"};
    c.local = local->get_bool();
  }
  return c;
}

std::optional<std::int32_t> parse_takeover(std::string_view line) {
  boost::system::error_code ec;
  const json::value doc = json::parse(line, ec);
  const json::object* o = ec ? nullptr : doc.if_object();
  if (o == nullptr || o->size() != 2) return std::nullopt;
  const json::value* name = o->if_contains("command");
  const json::value* pid = o->if_contains("pid");
  if (name == nullptr || !name->is_string() || json_string(*name) != "takeover") return std::nullopt;
  if (pid == nullptr || !pid->is_int64() || pid->as_int64() <= 0 || pid->as_int64() > std::numeric_limits<std::int32_t>::max()) return std::nullopt;
  return static_cast<std::int32_t>(pid->as_int64());
}

std::span<const CommandInfo> command_table() noexcept { return infos; }

}  // namespace bgproxy::control
