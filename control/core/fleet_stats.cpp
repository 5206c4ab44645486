#include "control/core/fleet_stats.hpp"

#include <boost/json.hpp>

#include "bgproxy/routing/routing_table.hpp"

namespace bgproxy::control {

namespace json = boost::json;

namespace {

json::object color_json(const stats::WindowCounts& c) {
  json::array buckets;
  for (unsigned i = 0; i < stats::LatencyHistogram::bucket_count; ++i) {
    if (const auto n = c.latency.bucket(i); n != 0) buckets.push_back(json::array{i, n});
  }
  return {{"requests", c.requests},
          {"errors", c.errors},
          {"streaming_calls", c.streaming_calls},
          {"latency", std::move(buckets)}};
}

bool read_count(const json::value& v, std::uint64_t& out) {
  if (v.is_uint64()) out = v.get_uint64();
  else if (v.is_int64() && v.get_int64() >= 0) out = static_cast<std::uint64_t>(v.get_int64());
  else return false;
  return true;
}

boost::system::result<stats::WindowCounts, std::string> parse_color(const json::value& v, const std::string& path) {
  const auto* o = v.if_object();
  if (o == nullptr) return path + ": must be an object";
  stats::WindowCounts c;
  const auto* requests = o->if_contains("requests");
  const auto* errors = o->if_contains("errors");
  if (requests == nullptr || !read_count(*requests, c.requests)) return path + ".requests: must be a count";
  if (errors == nullptr || !read_count(*errors, c.errors)) return path + ".errors: must be a count";
  // Absent from a member that predates it: it has none to tell.
  if (const auto* streaming = o->if_contains("streaming_calls");
      streaming != nullptr && !read_count(*streaming, c.streaming_calls)) {
    return path + ".streaming_calls: must be a count";
  }
  const auto* latency = o->if_contains("latency");
  if (latency == nullptr || !latency->is_array()) return path + ".latency: must be an array";
  for (const auto& pair : latency->get_array()) {
    const auto* a = pair.if_array();
    std::uint64_t bucket = 0;
    std::uint64_t n = 0;
    if (a == nullptr || a->size() != 2 || !read_count((*a)[0], bucket) || !read_count((*a)[1], n) ||
        bucket >= stats::LatencyHistogram::bucket_count) {
      return path + ".latency: must hold [bucket, count] pairs";
    }
    c.latency.add(static_cast<unsigned>(bucket), n);
  }
  return c;
}

}  // namespace

std::string to_stats_document(const ServiceWindow& w) {
  return json::serialize(json::object{
      {"window_seconds", w.seconds},
      {"colors", {{"blue", color_json(w.colors[0])}, {"green", color_json(w.colors[1])}}}});
}

boost::system::result<ServiceWindow, std::string> parse_stats_document(std::string_view text) {
  json::error_code ec;
  const auto root = json::parse(text, ec);
  if (ec) return "invalid JSON: " + ec.message();
  const auto* o = root.if_object();
  if (o == nullptr) return std::string("must be a JSON object");
  ServiceWindow w;
  const auto* seconds = o->if_contains("window_seconds");
  if (seconds == nullptr || !seconds->is_number()) return std::string("window_seconds: must be a number");
  w.seconds = seconds->to_number<double>();
  const auto* colors = o->if_contains("colors");
  if (colors == nullptr || !colors->is_object()) return std::string("colors: must be an object");
  for (auto color : {routing::Color::blue, routing::Color::green}) {
    const auto name = routing::color_name(color);
    const auto* v = colors->get_object().if_contains(name);
    if (v == nullptr) return "colors." + std::string(name) + ": missing";
    auto c = parse_color(*v, "colors." + std::string(name));
    if (!c) return c.error();
    w.colors[static_cast<std::size_t>(color)] = std::move(*c);
  }
  return w;
}

void add_window(ServiceWindow& sum, const ServiceWindow& other) {
  for (std::size_t c = 0; c < sum.colors.size(); ++c) sum.colors[c].add(other.colors[c]);
}

}  // namespace bgproxy::control
