#pragma once
/// bgproxy::bgctl — reading the fields of the proxy's JSON answers and writing their values as
/// an operator reads them, shared by every rendering (render.cpp, release.cpp). A missing or
/// mistyped field gives nullopt or "-"; text from the proxy has its control characters replaced,
/// so an answer cannot drive the terminal.
/// Pure: no I/O. Thread: any.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

namespace bgproxy::bgctl {

inline constexpr std::string_view missing = "-";

/// Text from the proxy, made safe for a terminal: control characters become '?'.
std::string clean(std::string_view s);
/// The field `key` of `o` (null `o` allowed); null when absent.
const boost::json::value* field(const boost::json::object* o, std::string_view key);
const boost::json::object* object_field(const boost::json::object* o, std::string_view key);
const boost::json::array* array_field(const boost::json::object* o, std::string_view key);
/// A string field, cleaned; nullopt when absent or not a string.
std::optional<std::string> string_field(const boost::json::object* o, std::string_view key);
/// Any JSON number as a double; nullopt for anything else.
std::optional<double> number_of(const boost::json::value& v);
std::optional<double> number_field(const boost::json::object* o, std::string_view key);
/// A string field, or "-".
std::string text_or_dash(const boost::json::object* o, std::string_view key);
/// A whole number as given ("375", "-1"); anything else in its number form.
std::string integer_text(const boost::json::object* o, std::string_view key);
/// printf's %.*f.
std::string fixed(double v, int decimals);
/// A weight in percent (70.0, 33.33) as "70%" / "33.33%".
std::string percent_text(std::optional<double> pct);
/// {"blue":70,"green":30} as "blue 70% / green 30%".
std::string weights_text(const boost::json::object* w);
/// An error rate (0.213) as "21.30%".
std::string rate_text(std::optional<double> rate);
/// Seconds (0.004) as milliseconds: "4ms", "0.5ms", "812ms".
std::string ms_text(std::optional<double> seconds);
/// `v` with up to `decimals` decimals and no trailing zeros: "12.5", "0.03", "0".
std::string trimmed(double v, int decimals);
/// Requests per second with up to two decimals: "12.5", "0.03", "0".
std::string rps_text(std::optional<double> rps);

/// Display width of UTF-8 text: code points, which is right for what the proxy sends.
std::size_t width(std::string_view s);
/// Rows as left-aligned columns two spaces apart; the last column is not padded.
std::string table(const std::vector<std::vector<std::string>>& rows, std::string_view indent = "");

}  // namespace bgproxy::bgctl
