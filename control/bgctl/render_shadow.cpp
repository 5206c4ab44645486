// `bgctl shadow` as an operator reads it (README "Shadow traffic"): per service what was
// mirrored and what became of it, the fields that differ with their noise floor, a few sample
// differences and the paired latency.
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "control/bgctl/answer_text.hpp"
#include "control/bgctl/render.hpp"

namespace bgproxy::bgctl {
namespace {

namespace json = boost::json;

/// Fields listed in the text form; `--json` has them all.
constexpr std::size_t shown_fields = 12;

std::string counts_text(const json::object* by_result) {
  std::string out;
  for (std::string_view r : {"compared", "dropped", "failed", "skipped"}) {
    if (!out.empty()) out += "  ";
    out.append(r).append(" ").append(integer_text(by_result, r));
  }
  return out;
}

/// A signed latency difference: "+0.4ms", "-1.2ms", and "0ms" for what rounds to nothing.
std::string signed_ms(std::optional<double> seconds) {
  if (!seconds) return std::string(missing);
  const std::string size = ms_text(std::abs(*seconds));
  if (size == "0ms" || size == missing) return size;
  std::string out = *seconds > 0 ? "+" : "-";
  return out.append(size);
}

std::string service_text(const json::object& s) {
  const std::string name = text_or_dash(&s, "service");
  const auto color = string_field(&s, "color");
  std::string out = name + ": ";
  if (!color) return out + "no shadow traffic (shadow.percent is 0)\n";
  out += "mirroring " + percent_text(number_field(&s, "percent")) + " to " + *color + " since " +
         text_or_dash(&s, "since") + "\n";
  const json::object* requests = object_field(&s, "requests");
  out += "  to " + *color + ":  " + counts_text(object_field(requests, *color)) + "\n";
  const std::string own = *color == "green" ? "blue" : "green";
  out += "  to " + own + " (noise floor):  " + counts_text(object_field(requests, own)) + "\n";

  std::string reported;
  if (const json::array* r = array_field(&s, "reported_fields")) {
    for (const auto& f : *r) {
      if (!f.is_string()) continue;
      if (!reported.empty()) reported += ", ";
      reported += clean(f.get_string());
    }
  }
  out += "  mismatch rate " + rate_text(number_field(&s, "mismatch_rate")) + " over " + integer_text(&s, "pairs") +
         " pairs" + (reported.empty() ? " (no field differs above its noise)" : ": " + reported) + "\n";

  std::vector<std::vector<std::string>> rows{{"FIELD", "COMPARED", "DIFFERING", "RATE", "NOISE", "REPORTED"}};
  if (const json::array* fields = array_field(&s, "fields")) {
    for (const auto& v : *fields) {
      const json::object* f = v.if_object();
      if (f == nullptr || rows.size() > shown_fields) continue;
      const json::value* rep = field(f, "reported");
      rows.push_back({text_or_dash(f, "field"), integer_text(f, "compared"), integer_text(f, "differing"),
                      rate_text(number_field(f, "mismatch_rate")), rate_text(number_field(f, "noise_rate")),
                      rep != nullptr && rep->is_bool() && rep->get_bool() ? "yes" : "no"});
    }
    if (fields->size() + 1 > rows.size())
      rows.push_back({std::string("(").append(std::to_string(fields->size() + 1 - rows.size())).append(" more: --json)")});
  }
  if (rows.size() > 1) out += table(rows, "  ");

  if (const json::array* samples = array_field(&s, "samples"); samples != nullptr && !samples->empty()) {
    out += "  samples (primary | shadow):\n";
    std::vector<std::vector<std::string>> sample_rows;
    for (const auto& v : *samples) {
      const json::object* x = v.if_object();
      if (x == nullptr) continue;
      sample_rows.push_back({text_or_dash(x, "path"), text_or_dash(x, "field"),
                             text_or_dash(x, "primary") + " | " + text_or_dash(x, "shadow")});
    }
    out += table(sample_rows, "    ");
  }
  const json::object* latency = object_field(&s, "latency");
  out += "  latency: " + text_or_dash(latency, "verdict") + "; shadow - primary median " +
         signed_ms(number_field(latency, "median_seconds")) + ", p95 " +
         signed_ms(number_field(latency, "p95_seconds")) + "\n";
  return out;
}

}  // namespace

std::string shadow_summary_text(const json::object* summary) {
  const auto color = string_field(summary, "color");
  if (!color) return {};
  std::string reported;
  if (const json::array* r = array_field(summary, "reported_fields")) {
    for (const auto& f : *r) {
      if (!f.is_string()) continue;
      reported += (reported.empty() ? " (" : ", ") + clean(f.get_string());
    }
  }
  if (!reported.empty()) reported += ")";
  return "  shadow: " + percent_text(number_field(summary, "percent")) + " to " + *color + ", mismatch " +
         rate_text(number_field(summary, "mismatch_rate")) + " over " + integer_text(summary, "pairs") + " pairs" +
         reported + "; " + text_or_dash(summary, "latency") + "\n";
}

std::string render_shadow(const json::object& answer) {
  std::string out;
  if (const json::array* services = array_field(&answer, "services")) {
    for (const auto& v : *services)
      if (const json::object* s = v.if_object()) out += service_text(*s);
  }
  return out.empty() ? "no services\n" : out;
}

}  // namespace bgproxy::bgctl
