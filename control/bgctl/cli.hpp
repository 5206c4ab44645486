#pragma once
/// bgproxy::bgctl — bgctl's command line (README "bgctl walkthrough") parsed with CLI11 into
/// either a request to send or a finished outcome (help text, usage error). Pure: no I/O, the
/// environment is passed in. Thread: any.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace bgproxy::bgctl {

inline constexpr std::string_view default_socket = "/run/bgproxy/control.sock";

/// Exit codes (README "bgctl walkthrough").
enum ExitCode : int { exit_ok = 0, exit_refused = 1, exit_usage = 2, exit_unreachable = 3 };

/// A request to send.
struct Invocation {
  std::string socket;   ///< -S, else $BGCTL_SOCKET, else default_socket
  bool json = false;    ///< --json
  bool watch = false;   ///< --watch (status, health): ask every second until interrupted
  bool wait = false;    ///< release --wait: follow the rollout until it ends
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};  ///< release --timeout, with --wait
  std::string service;  ///< -s as given (release --wait follows this service's events)
  std::string command;  ///< "split": picks the human rendering of the answer
  std::string request;  ///< the JSON line, without its newline
};

/// How long bgctl waits for the answer to `command`: 5 s, except where the proxy itself takes
/// longer before it answers: `upgrade` (a successor has 60 s to ask for the sockets and 60 s more
/// to say it serves) and `release` (up to 16 smoke requests of 5 s each, one after another).
std::chrono::milliseconds answer_timeout(std::string_view command);

/// bgctl is done without talking to the proxy: help (exit 0) or a usage error (exit 2).
struct Finished {
  int exit_code = exit_ok;
  std::string out;  ///< for stdout
  std::string err;  ///< for stderr
};

/// @param args the arguments after argv[0]
/// @param env_socket the value of $BGCTL_SOCKET, if set
std::variant<Invocation, Finished> parse_command_line(const std::vector<std::string>& args,
                                                      std::optional<std::string> env_socket);

/// `bgctl help`: every command of control::command_table() with its usage and summary.
std::string help_text();

/// "usage: bgctl [-S SOCKET] [--json] split --green N | --blue N [-s SERVICE] [--force]\n"
/// for one command, or the general line when `command` is not in the table.
std::string usage_line(std::string_view command);

}  // namespace bgproxy::bgctl
