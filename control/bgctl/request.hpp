#pragma once
/// bgproxy::bgctl — bgctl's parsed command line turned into one control-socket request line
/// (one JSON object), with the usage checks bgctl makes before it connects (exit code 2).
/// Pure: no I/O. Thread: any.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

namespace bgproxy::bgctl {

/// What the command line said, as text: checking and converting is build_request()'s job, so
/// that every usage error has one wording. Only the fields of `command` are looked at.
struct Options {
  std::string command;                  ///< "status", "split", ... (a row of control::command_table())
  std::string service;                  ///< -s; empty = not given (the field is then left out)
  std::optional<std::string> green;     ///< split --green
  std::optional<std::string> blue;      ///< split --blue
  bool force = false;                   ///< split, switch, canary start: --force
  std::string color;                    ///< switch blue|green; release --to blue|green
  std::string action;                   ///< canary start|pause|resume|abort; server enable|disable|drain
  std::string address;                  ///< server ADDRESS
  std::optional<std::string> steps;     ///< canary start, release: --steps 10,50,100
  std::optional<std::string> interval;  ///< canary start, release: --interval 60s
  std::vector<std::string> smoke;       ///< release --smoke PATH, in order
  std::optional<std::string> limit;     ///< history --limit N
  bool local = false;                   ///< --local: a change on this instance alone (fleet)
  bool drain = false;                   ///< rollback --drain: cut what is in flight to the old color
};

/// A usage error found by bgctl itself: printed as "bgctl: <message>", exit code 2, nothing sent.
struct UsageError {
  std::string message;
};

[[noreturn]] void throw_exception_from_error(const UsageError& e, const boost::source_location& loc);

/// What the user typed, in a usage error: in single quotes, as a shell user would write it,
/// escaped and cut short (text::quote).
std::string shown(std::string_view s);

/// Builds the request line (without its newline), fields in a fixed order, e.g.
/// {"command":"split","service":"app","green":12.5,"force":true}.
/// @return the line, or the usage error (unknown command, bad weight, bad color, ...)
boost::system::result<std::string, UsageError> build_request(const Options& o);

}  // namespace bgproxy::bgctl
