#include "bgproxy/stats/request_stats.hpp"

#include <algorithm>

namespace bgproxy::stats {

void ColorStats::record(unsigned status, double seconds) noexcept {
  ++responses[static_cast<std::size_t>(code_class(status))];
  auto it = std::lower_bound(duration_bounds.begin(), duration_bounds.end(), seconds);
  ++duration_buckets[static_cast<std::size_t>(it - duration_bounds.begin())];
  duration_sum += seconds;
  latency.record(seconds);
}

void ColorStats::record_streaming(unsigned status) noexcept {
  ++responses[static_cast<std::size_t>(code_class(status))];
  ++streaming_calls;
}

void ColorStats::merge(const ColorStats& o) noexcept {
  for (std::size_t i = 0; i < responses.size(); ++i) responses[i] += o.responses[i];
  for (std::size_t i = 0; i < duration_buckets.size(); ++i) duration_buckets[i] += o.duration_buckets[i];
  duration_sum += o.duration_sum;
  latency.merge(o.latency);
  upstream_failures += o.upstream_failures;
  for (std::size_t i = 0; i < grpc_statuses.size(); ++i) grpc_statuses[i] += o.grpc_statuses[i];
  streaming_calls += o.streaming_calls;
}

void ServerStats::merge(const ServerStats& o) noexcept {
  for (std::size_t i = 0; i < failures.size(); ++i) failures[i] += o.failures[i];
  stale_reuses += o.stale_reuses;
  if (o.learned_idle_us != 0 && (learned_idle_us == 0 || o.learned_idle_us < learned_idle_us)) {
    learned_idle_us = o.learned_idle_us;
  }
}

void ServiceStats::merge(const ServiceStats& o) {
  colors[0].merge(o.colors[0]);
  colors[1].merge(o.colors[1]);
  failovers_from[0] += o.failovers_from[0];
  failovers_from[1] += o.failovers_from[1];
  shadow.merge(o.shadow);
}

void RequestStats::merge(const RequestStats& o) {
  if (services.size() < o.services.size()) services.resize(o.services.size());
  if (servers.size() < o.servers.size()) servers.resize(o.servers.size());
  for (std::size_t i = 0; i < o.services.size(); ++i) services[i].merge(o.services[i]);
  for (std::size_t i = 0; i < o.servers.size(); ++i) servers[i].merge(o.servers[i]);
  unrouted += o.unrouted;
  client_connections += o.client_connections;
  tls_handshakes += o.tls_handshakes;
  for (std::size_t i = 0; i < tls_handshake_failures.size(); ++i) tls_handshake_failures[i] += o.tls_handshake_failures[i];
  for (std::size_t i = 0; i < http2_protocol_errors.size(); ++i) http2_protocol_errors[i] += o.http2_protocol_errors[i];
}

}  // namespace bgproxy::stats
