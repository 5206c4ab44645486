// Semantic checks of a parsed configuration (conf/bgproxy.yaml): the rules that a single field
// cannot check on its own. Errors name the line where the parser saw the field, or
// its nearest parent when the field took its default.
#include <algorithm>
#include <cctype>

#include "bgproxy/weights/basis_points.hpp"
#include "detail.hpp"

namespace bgproxy::config::detail {
namespace {

class Checker {
public:
  Checker(const LineMap& lines, std::string_view file) : lines_(lines), file_(file) {}

  /// Records the first problem only; later ones are ignored.
  void fail(const std::string& path, std::string_view problem) {
    if (!error_) error_ = ConfigError{make_message(file_, line(path), path, problem)};
  }
  bool failed() const noexcept { return error_.has_value(); }
  std::optional<ConfigError> result() && { return std::move(error_); }

private:
  // The path itself, else its parent ("a.b[2].c" -> "a.b[2]" -> "a.b" -> "a" -> "").
  int line(std::string path) const {
    while (true) {
      if (auto it = lines_.find(path); it != lines_.end()) return it->second;
      if (path.empty()) return 0;
      const auto cut = path.find_last_of(".[");
      path.resize(cut == std::string::npos ? 0 : cut);
    }
  }

  const LineMap& lines_;
  std::string_view file_;
  std::optional<ConfigError> error_;
};

using detail::quoted;
std::string at(const std::string& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool same_endpoint(const Endpoint& a, const Endpoint& b) { return a.port == b.port && lower(a.host) == lower(b.host); }

void positive(Checker& c, const std::string& path, Duration d) {
  if (d.count() <= 0) c.fail(path, "must be greater than 0");
}

void check_pool(Checker& c, const std::string& path, const Pool& pool) {
  for (std::size_t i = 0; i < pool.servers.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (same_endpoint(pool.servers[i], pool.servers[j]))
        c.fail(at(path + ".servers", i),
               "duplicate server " + quoted(pool.servers[i].text) + " (also " + at(path + ".servers", j) + ")");
}

void check_service(Checker& c, const std::string& p, const Service& s) {
  if (s.match.host != "*" && !is_hostname(s.match.host))
    c.fail(p + ".match.host", "invalid host " + quoted(s.match.host) + " (expected \"*\" or a hostname without port)");
  if (s.match.path_prefix.empty() || s.match.path_prefix.front() != '/')
    c.fail(p + ".match.path_prefix", "must start with \"/\", got " + quoted(s.match.path_prefix));

  if (s.blue.servers.empty()) c.fail(p + ".blue.servers", "at least one blue server is required");
  check_pool(c, p + ".blue", s.blue);
  check_pool(c, p + ".green", s.green);
  if (s.initial_green_bp > 0 && s.green.servers.empty())
    c.fail(p + ".initial.green", "is " + weights::format_percent(s.initial_green_bp) + " but green has no servers");

  const auto& hc = s.health_check;
  const std::string h = p + ".health_check";
  if (hc.enabled && hc.protocol == HealthProtocol::grpc) {
    // Checks speak each color's own protocol, and gRPC exists only over HTTP/2: a grpc check of an
    // HTTP/1.1 color could never pass and would take that color down.
    for (const auto& [pool, color] : {std::pair<const Pool&, const char*>{s.blue, "blue"}, {s.green, "green"}}) {
      if (pool.servers.empty() || pool.protocol != Protocol::http1) continue;
      c.fail(h + ".protocol", std::string("grpc needs HTTP/2 to the servers, but ") + color + " speaks http/1.1 (give " +
                                  color + " protocol: h2c or h2, or check with protocol: http)");
    }
  }
  if (hc.enabled) {
    if (hc.path.empty() || hc.path.front() != '/') c.fail(h + ".path", "must start with \"/\", got " + quoted(hc.path));
    positive(c, h + ".interval", hc.interval);
    positive(c, h + ".timeout", hc.timeout);
    if (hc.timeout >= hc.interval)
      c.fail(h + ".timeout", "must be less than interval (" + format_duration(hc.timeout) +
                                 " >= " + format_duration(hc.interval) + ")");
    if (hc.rise < 1) c.fail(h + ".rise", "must be at least 1");
    if (hc.fall < 1) c.fail(h + ".fall", "must be at least 1");
  }

  const auto& w = s.watchdog;
  const std::string wp = p + ".watchdog";
  positive(c, wp + ".window", w.window);
  positive(c, wp + ".max_p95", w.max_p95);
  if (!(w.max_error_rate >= 0.0 && w.max_error_rate <= 1.0))
    c.fail(wp + ".max_error_rate", "must be between 0 and 1, got " + format_number(w.max_error_rate));
  if (!(w.max_error_rate_delta >= 0.0 && w.max_error_rate_delta <= 1.0))
    c.fail(wp + ".max_error_rate_delta", "must be between 0 and 1, got " + format_number(w.max_error_rate_delta));
  if (!(w.max_p95_ratio >= 1.0))
    c.fail(wp + ".max_p95_ratio", "must be at least 1, got " + format_number(w.max_p95_ratio));
  if (!(w.alpha > 0.0 && w.alpha <= 0.5))
    c.fail(wp + ".alpha", "must be greater than 0 and at most 0.5, got " + format_number(w.alpha));
  if (w.max_shadow_mismatch_rate && !(*w.max_shadow_mismatch_rate >= 0.0 && *w.max_shadow_mismatch_rate <= 1.0))
    c.fail(wp + ".max_shadow_mismatch_rate",
           "must be between 0 and 1, got " + format_number(*w.max_shadow_mismatch_rate));

  const std::string sp = p + ".shadow";
  if (s.shadow.methods.empty()) c.fail(sp + ".methods", "at least one method is required");
  if (s.shadow.max_in_flight < 1) c.fail(sp + ".max_in_flight", "must be at least 1");

  const std::string cp = p + ".canary";
  const auto& steps = s.canary.steps_bp;
  if (const auto e = weights::check_steps(steps)) {
    const std::size_t i = e->index;
    switch (e->problem) {
      case weights::StepProblem::empty: c.fail(cp + ".steps", "at least one step is required"); break;
      case weights::StepProblem::zero: c.fail(at(cp + ".steps", i), "must be greater than 0"); break;
      case weights::StepProblem::not_rising:
        c.fail(at(cp + ".steps", i), "steps must be strictly increasing (" + weights::format_percent(steps[i]) +
                                         " after " + weights::format_percent(steps[i - 1]) + ")");
        break;
      case weights::StepProblem::not_ending_at_full:
        c.fail(cp + ".steps", "must end at 100, last is " + weights::format_percent(steps[i]));
        break;
    }
  }
  positive(c, cp + ".interval", s.canary.interval);
}

}  // namespace

std::optional<ConfigError> validate(const Config& cfg, const LineMap& lines, std::string_view file) {
  Checker c(lines, file);

  if (cfg.threads > 256) c.fail("threads", "must be at most 256, got " + std::to_string(cfg.threads));
  if (cfg.limits.max_connections < 1) c.fail("limits.max_connections", "must be at least 1");
  if (cfg.limits.max_header_bytes < 1024)
    c.fail("limits.max_header_bytes", "must be at least 1024, got " + std::to_string(cfg.limits.max_header_bytes));
  positive(c, "timeouts.client_header", cfg.timeouts.client_header);
  positive(c, "timeouts.client_idle", cfg.timeouts.client_idle);
  positive(c, "timeouts.upstream_connect", cfg.timeouts.upstream_connect);
  positive(c, "timeouts.upstream_response", cfg.timeouts.upstream_response);
  positive(c, "timeouts.upstream_idle", cfg.timeouts.upstream_idle);
  positive(c, "timeouts.shutdown", cfg.timeouts.shutdown);
  if (cfg.cluster.enabled) {
    positive(c, "cluster.etcd.timeout", cfg.cluster.timeout);
    // The lease must outlive a keepalive that waits a whole request timeout, or a healthy
    // instance drops out of the fleet whenever etcd is slow.
    if (cfg.cluster.lease_ttl < std::chrono::seconds(2)) {
      c.fail("cluster.etcd.lease_ttl", "must be at least 2s, got " + format_duration(cfg.cluster.lease_ttl));
    } else if (cfg.cluster.lease_ttl < 2 * cfg.cluster.timeout) {
      c.fail("cluster.etcd.lease_ttl", "must be at least twice cluster.etcd.timeout (" +
                                           format_duration(cfg.cluster.timeout) + "), got " +
                                           format_duration(cfg.cluster.lease_ttl));
    }
  }

  if (cfg.listen.empty()) c.fail("listen", "at least one listener is required");
  // Port 0 asks the kernel for a fresh port each time, so two of them never clash.
  for (std::size_t i = 0; i < cfg.listen.size(); ++i) {
    const auto& a = cfg.listen[i].address;
    if (a.port == 0) continue;
    for (std::size_t j = 0; j < i; ++j)
      if (same_endpoint(a, cfg.listen[j].address))
        c.fail(at("listen", i) + ".address", "duplicate listen address " + quoted(a.text) + " (also " + at("listen", j) + ")");
    if (same_endpoint(a, cfg.admin.address))
      c.fail(at("listen", i) + ".address", quoted(a.text) + " is also the admin address");
  }

  for (std::size_t i = 0; i < cfg.services.size(); ++i) {
    const auto& s = cfg.services[i];
    const std::string p = at("services", i);
    for (std::size_t j = 0; j < i; ++j) {
      if (cfg.services[j].name == s.name)
        c.fail(p + ".name", "duplicate service name " + quoted(s.name) + " (also " + at("services", j) + ")");
      if (lower(cfg.services[j].match.host) == lower(s.match.host) &&
          cfg.services[j].match.path_prefix == s.match.path_prefix)
        c.fail(p + ".match", "same host and path_prefix as " + at("services", j) + ", so it would never match");
    }
    check_service(c, p, s);
    if (c.failed()) break;
  }
  return std::move(c).result();
}

}  // namespace bgproxy::config::detail
