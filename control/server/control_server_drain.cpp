// ControlServer: `bgctl rollback --drain` (README "HTTP/2 and gRPC"). A rollback moves new
// requests and streams; what runs on the rolled-back color finishes there (a gRPC stream may
// run for hours) unless the operator asks to cut it. The cut follows the acknowledgement, so
// whatever starts after it is on the stable color already, and whatever is cut was on the old.
#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include "control/core/json_line.hpp"
#include "control/core/replies.hpp"
#include "control/server/control_server.hpp"

namespace bgproxy::control {

ControlServer::Done ControlServer::cut_after_rollback(const std::string& service_name, Done done) {
  return [this, service_name, done = std::move(done), alive = alive_](std::string answer) mutable {
    if (!*alive) return;
    boost::system::error_code ec;
    auto doc = boost::json::parse(answer, ec);
    auto* o = ec ? nullptr : doc.if_object();
    const auto* ok = o != nullptr ? o->if_contains("ok") : nullptr;
    std::string unknown;
    const int si = controller_.resolve_service(service_name, unknown);
    if (ok == nullptr || !ok->is_bool() || !ok->get_bool() || si < 0) return done(std::move(answer));
    const auto& ss = controller_.state().services[static_cast<std::size_t>(si)];
    const auto color = unweighted_color(ss.weights);
    if (!color) {
      (*o)["cut"] = boost::json::object{{"color", nullptr}, {"exchanges", 0}};
      return done(to_line(*o));
    }
    data_plane_.cut_exchanges(si, *color, [this, done = std::move(done), doc = std::move(doc), color, si,
                                           alive = alive_](std::uint64_t n) mutable {
      if (!*alive) return;
      spdlog::info("{}: rollback --drain: cut {} exchanges in flight to {}",
                   controller_.state().services[static_cast<std::size_t>(si)].name, n, routing::color_name(*color));
      doc.as_object()["cut"] = boost::json::object{{"color", routing::color_name(*color)}, {"exchanges", n}};
      done(to_line(doc));
    });
  };
}

void ControlServer::cut_for_fleet_rollback(std::size_t service, const HistoryEntry& entry) {
  const auto* drain = entry.args.if_contains("drain");
  if (entry.command != "rollback" || drain == nullptr || !drain->is_bool() || !drain->get_bool()) return;
  const auto color = unweighted_color(entry.after);
  if (!color) return;
  data_plane_.cut_exchanges(static_cast<int>(service), *color,
                            [name = entry.service, by = entry.instance, color](std::uint64_t n) {
                              spdlog::info("{}: rollback --drain by instance {}: cut {} exchanges in flight to {}",
                                           name, by, n, routing::color_name(*color));
                            });
}

}  // namespace bgproxy::control
