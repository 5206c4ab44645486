#include "proxy/admin/metrics.hpp"

#include <limits>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "bgproxy/weights/basis_points.hpp"

namespace bgproxy::proxy {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

ClientMetric with_labels(std::vector<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label = std::move(labels);
  return m;
}

}  // namespace

std::string render_metrics(const MetricsInput& in) {
  auto requests = family("bgproxy_requests_total", "Requests answered, by service, color and status class.",
                         MetricType::Counter);
  auto durations = family("bgproxy_request_duration_seconds",
                          "Request duration from first byte in to last byte out.", MetricType::Histogram);
  auto failures = family("bgproxy_upstream_failures_total", "Failed upstream attempts, by server and reason.",
                         MetricType::Counter);
  auto stale = family("bgproxy_upstream_stale_reuse_total",
                      "Requests answered 502 because a reused keep-alive connection had been closed by the backend.",
                      MetricType::Counter);
  auto learned = family("bgproxy_upstream_learned_idle_seconds",
                        "Idle age at which pooled connections are retired because the backend was seen closing "
                        "them (80 % of the shortest seen); 0 = nothing learned.",
                        MetricType::Gauge);
  auto failovers = family("bgproxy_failovers_total",
                          "Requests sent to the other color because theirs had no usable server.",
                          MetricType::Counter);
  auto weights = family("bgproxy_weight", "Share of new requests routed to each color, in percent.",
                        MetricType::Gauge);
  auto connections = family("bgproxy_client_connections", "Open client connections.", MetricType::Gauge);
  auto tls_failures = family("bgproxy_tls_handshake_failures_total",
                             "Client TLS handshakes that failed, by reason.", MetricType::Counter);
  auto tls_handshakes = family("bgproxy_tls_handshakes_total", "Client TLS handshakes completed.",
                               MetricType::Counter);
  auto h2_errors = family("bgproxy_http2_protocol_errors_total",
                          "HTTP/2 client connections or streams cut for abuse or protocol errors, by reason.",
                          MetricType::Counter);
  auto grpc = family("bgproxy_grpc_responses_total",
                     "Answers of gRPC services (grpc: true), by grpc-status; \"missing\" when the stream ended "
                     "without one.",
                     MetricType::Counter);
  auto streaming = family("bgproxy_grpc_streaming_calls_total",
                          "Calls of gRPC services (grpc: true) that streamed (more than one message either way) "
                          "or outlasted timeouts.upstream_response; in bgproxy_requests_total, not in the "
                          "duration histogram nor the watchdog's p95.",
                          MetricType::Counter);

  for (std::size_t si = 0; si < in.config.services.size(); ++si) {
    const auto& name = in.config.services[si].name;
    const auto& svc = si < in.stats.services.size() ? in.stats.services[si] : stats::ServiceStats{};
    for (auto color : {routing::Color::blue, routing::Color::green}) {
      const auto ci = static_cast<std::size_t>(color);
      const std::string color_name(routing::color_name(color));
      const auto& cs = svc.colors[ci];
      for (std::size_t k = 0; k < cs.responses.size(); ++k) {
        auto m = with_labels({{"service", name}, {"color", color_name}, {"code", stats::code_class_names[k]}});
        m.counter.value = static_cast<double>(cs.responses[k]);
        requests.metric.push_back(std::move(m));
      }
      auto h = with_labels({{"service", name}, {"color", color_name}});
      std::uint64_t cumulative = 0;
      for (std::size_t b = 0; b < stats::duration_bounds.size(); ++b) {
        cumulative += cs.duration_buckets[b];
        h.histogram.bucket.push_back({cumulative, stats::duration_bounds[b]});
      }
      cumulative += cs.duration_buckets.back();
      h.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
      h.histogram.sample_count = cumulative;
      h.histogram.sample_sum = cs.duration_sum;
      durations.metric.push_back(std::move(h));

      if (in.config.services[si].grpc) {
        for (std::size_t k = 0; k < cs.grpc_statuses.size(); ++k) {
          if (cs.grpc_statuses[k] == 0) continue;  // 18 statuses per color: only those seen
          auto g = with_labels({{"service", name},
                                {"color", color_name},
                                {"grpc_status", k + 1 == cs.grpc_statuses.size() ? "missing" : std::to_string(k)}});
          g.counter.value = static_cast<double>(cs.grpc_statuses[k]);
          grpc.metric.push_back(std::move(g));
        }
        auto st = with_labels({{"service", name}, {"color", color_name}});
        st.counter.value = static_cast<double>(cs.streaming_calls);
        streaming.metric.push_back(std::move(st));
      }

      auto f = with_labels({{"service", name}, {"from", color_name}});
      f.counter.value = static_cast<double>(svc.failovers_from[ci]);
      failovers.metric.push_back(std::move(f));

      if (si < in.table.services.size()) {
        const double green = weights::to_percent(in.table.services[si].green_bp);
        auto w = with_labels({{"service", name}, {"color", color_name}});
        w.gauge.value = color == routing::Color::green ? green : 100.0 - green;
        weights.metric.push_back(std::move(w));
      }
    }
  }
  for (const auto& server : in.servers) {
    const auto& ss = server.id < in.stats.servers.size() ? in.stats.servers[server.id] : stats::ServerStats{};
    const std::vector<ClientMetric::Label> labels{{"service", in.config.services[server.service].name},
                                                  {"color", std::string(routing::color_name(server.color))},
                                                  {"server", server.endpoint.text}};
    for (std::size_t r = 0; r < ss.failures.size(); ++r) {
      auto m = with_labels(labels);
      m.label.push_back({"reason", stats::failure_reason_names[r]});
      m.counter.value = static_cast<double>(ss.failures[r]);
      failures.metric.push_back(std::move(m));
    }
    auto s = with_labels(labels);
    s.counter.value = static_cast<double>(ss.stale_reuses);
    stale.metric.push_back(std::move(s));
    auto l = with_labels(labels);
    l.gauge.value = static_cast<double>(ss.learned_idle_us) / 1e6;
    learned.metric.push_back(std::move(l));
  }
  auto c = ClientMetric{};
  c.gauge.value = static_cast<double>(in.stats.client_connections);
  connections.metric.push_back(std::move(c));
  for (std::size_t r = 0; r < in.stats.tls_handshake_failures.size(); ++r) {
    auto m = with_labels({{"reason", stats::tls_failure_reason_names[r]}});
    m.counter.value = static_cast<double>(in.stats.tls_handshake_failures[r]);
    tls_failures.metric.push_back(std::move(m));
  }
  for (std::size_t r = 0; r < in.stats.http2_protocol_errors.size(); ++r) {
    auto m = with_labels({{"reason", stats::http2_error_reason_names[r]}});
    m.counter.value = static_cast<double>(in.stats.http2_protocol_errors[r]);
    h2_errors.metric.push_back(std::move(m));
  }
  auto h = ClientMetric{};
  h.counter.value = static_cast<double>(in.stats.tls_handshakes);
  tls_handshakes.metric.push_back(std::move(h));

  return prometheus::TextSerializer().Serialize(
      {requests, durations, failures, stale, learned, failovers, weights, connections, tls_failures, tls_handshakes,
       h2_errors, grpc, streaming});
}

}  // namespace bgproxy::proxy
