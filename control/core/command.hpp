#pragma once
/// bgproxy::control — the control-socket commands (README "bgctl walkthrough"), parsed from one
/// JSON line into a plain Command. Pure: no I/O, no clock.
/// Thread: any.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

#include "bgproxy/routing/routing_table.hpp"

namespace bgproxy::control {

enum class CommandKind : std::uint8_t {
  status, split, switch_color, rollback, canary, health, history, server, reload, upgrade, events,
  release, shadow
};

enum class CanaryAction : std::uint8_t { start, pause, resume, abort };
enum class ServerAction : std::uint8_t { enable, disable, drain };

/// One request on the control socket. Only the fields of its kind are set.
struct Command {
  CommandKind kind = CommandKind::status;
  std::string service;                   ///< empty: the only service (an error when there are several)
  std::uint32_t green_bp = 0;            ///< split: green weight in basis points (blue = 10000 - green)
  routing::Color color = routing::Color::blue;  ///< switch
  /// split, switch, canary start: even toward a color with no healthy server; canary start and
  /// release: even above watchdog.max_shadow_mismatch_rate
  bool force = false;
  /// A change made on this instance alone while its fleet's cluster store is out of reach
  /// (`bgctl --local`, README "Running a fleet"); meaningless without a fleet.
  bool local = false;
  /// rollback: also cut the exchanges in flight to the color it leaves at 0 % (`--drain`)
  bool drain = false;
  CanaryAction canary = CanaryAction::start;
  std::vector<std::uint32_t> steps_bp;   ///< canary start; empty = the service's configured steps
  std::optional<std::chrono::milliseconds> interval;  ///< canary start
  ServerAction server = ServerAction::enable;
  std::string address;                   ///< server: as written in the config, e.g. "127.0.0.1:5006"
  std::size_t limit = 20;                ///< history: newest entries to return
  /// release: the color to move traffic to; nullopt = the idle one (weight 0)
  std::optional<routing::Color> release_to;
  std::vector<std::string> smoke;        ///< release: paths the proxy GETs from the target first
};

/// A release's smoke paths: how many, and how long each may be.
inline constexpr std::size_t max_smoke_paths = 16;
inline constexpr std::size_t max_smoke_path_bytes = 1024;

/// A smoke path is sent as a request target as it is: origin-form ("/..."), printable, no
/// spaces, no fragment, at most max_smoke_path_bytes.
bool valid_smoke_path(std::string_view path) noexcept;

/// Why a line was refused; `message` is what goes into {"ok":false,"error":...}.
struct CommandError {
  std::string message;
};

[[noreturn]] void throw_exception_from_error(const CommandError& e, const boost::source_location& loc);

/// Longest accepted line; longer ones get "line too long" and the connection closes.
inline constexpr std::size_t max_line_bytes = 64 * 1024;

/// Parses one request line (without its newline), e.g.
/// {"command":"split","service":"app","green":50}            {"command":"split","blue":30}
/// {"command":"switch","color":"green","force":true}       {"command":"rollback","service":"app"}
/// {"command":"canary","action":"start","steps":[10,50,100],"interval":"60s"}
/// {"command":"server","action":"disable","address":"127.0.0.1:5006"}
/// {"command":"history","limit":50}                        {"command":"status"}
/// {"command":"release","to":"green","smoke":["/health"],"steps":[10,50,100],"interval":"60s"}
/// {"command":"events","service":"app"}  (the change feed: one JSON line per event until disconnect)
/// {"command":"shadow","service":"app"}  (the shadow comparison, README "Shadow traffic")
/// Weights are numbers (or numeric strings) in [0, 100] with at most two decimals.
/// Unknown commands, unknown fields, wrong types are errors with a one-line message.
boost::system::result<Command, CommandError> parse_command(std::string_view line);

/// The line a starting bgproxy sends to the running one to take over its sockets
/// (not a bgctl command): {"command":"takeover","pid":4242}.
/// @return the new process's pid, or nullopt when `line` is not that request
std::optional<std::int32_t> parse_takeover(std::string_view line);

/// The command table: one row per command, the source of `bgctl help` and usage lines.
struct CommandInfo {
  std::string_view name;     ///< "split"
  std::string_view usage;    ///< "split --green N | --blue N [-s SERVICE] [--force]"
  std::string_view summary;  ///< one line for help
};
std::span<const CommandInfo> command_table() noexcept;

}  // namespace bgproxy::control
