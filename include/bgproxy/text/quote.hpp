#pragma once
/// bgproxy::text — user text shown inside a one-line message (a config error, a control-socket
/// answer, a state-file problem, a bgctl usage error), written one way everywhere.
/// Thread: any (pure function).

#include <cstddef>
#include <string>
#include <string_view>

namespace bgproxy::text {

struct QuoteStyle {
  char mark = '"';              ///< the quote around the text ('\'' for bgctl's usage errors)
  std::size_t max_bytes = 40;   ///< how much of the text is shown before "..."
};

/// `s` between two `mark`s, escaped so that the message stays one unambiguous line: `mark` and
/// backslash escaped, \n \r \t named, other control characters and DEL as \xNN. A text longer
/// than `max_bytes` is cut on a UTF-8 code-point boundary and ends in "..." inside the quotes,
/// so that a runaway value cannot flood a log or an answer, and valid UTF-8 stays valid.
std::string quote(std::string_view s, QuoteStyle style = {});

}  // namespace bgproxy::text
