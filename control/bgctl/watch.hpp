#pragma once
/// `bgctl status --watch` and `health --watch` (SPEC §15): the same question every second until
/// interrupted. On a terminal each answer redraws the screen; on a pipe or a file only the lines
/// that changed since the answer before are printed, each after the time, so a log or a `grep`
/// gets one line per change.
/// Thread: bgctl's only.

#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace bgproxy::bgctl {

/// One asking: the text to show (the rendered answer, or why there is none).
using Ask = std::function<std::string()>;

/// The lines of `now` that were not in `before` (each line of `before` matches one line of
/// `now` at most); every line of `now` when `before` is empty.
std::vector<std::string> changed_lines(const std::string& before, const std::string& now);

/// Asks and shows until the process is interrupted (SIGINT) or its output is closed (SIGPIPE).
[[noreturn]] void watch(const Ask& ask, bool terminal, std::ostream& out);

}  // namespace bgproxy::bgctl
