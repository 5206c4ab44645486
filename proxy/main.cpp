// bgproxy — the daemon. Flags, signals and exit codes: README "Running it".
#include <cstdlib>
#include <iostream>
#include <optional>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "bgproxy/config/parse.hpp"
#include "control/server/control_server.hpp"
#include "control/server/takeover.hpp"
#include "proxy/app/server.hpp"
#include "proxy/net/runtime.hpp"
#include "proxy/net/tls_context.hpp"

int main(int argc, char** argv) {
  CLI::App app{"bgproxy — blue/green HTTP reverse proxy"};
  std::string config_path = "/etc/bgproxy/bgproxy.yaml";
  bool check = false;
  bool version = false;
  app.add_option("-c,--config", config_path, "configuration file")->capture_default_str();
  app.add_flag("--check", check, "validate the configuration and exit (0 ok, 1 invalid)");
  app.add_flag("--version", version, "print the version and exit");
  app.footer(
      "Signals: SIGHUP reloads the configuration as one step (an invalid one is refused and the\n"
      "running one kept); SIGTERM and SIGINT stop accepting, let in-flight requests finish\n"
      "(timeouts.shutdown) and exit 0.\n"
      "Binary upgrade: started while another bgproxy answers on control.socket, bgproxy takes\n"
      "over its listening sockets (passed over that socket) and the old process drains and\n"
      "exits; `bgctl upgrade` does this from the running proxy.");
  CLI11_PARSE(app, argc, argv);

  if (version) {
    std::cout << "bgproxy " << BGPROXY_VERSION << "\n";
    return 0;
  }

  auto log = spdlog::stderr_logger_mt("bgproxy");
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z [%l] %v");
  spdlog::set_default_logger(log);

  auto cfg = bgproxy::config::load_file(config_path);
  if (!cfg) {
    std::cerr << cfg.error().message << "\n";
    return 1;
  }
  if (check) {
    // What start and reload would load too: a certificate that cannot be read fails here,
    // before it can fail a start (ExecStartPre) or a reload.
    try {
      for (const auto& l : cfg->listen) {
        if (!l.tls.empty()) (void)bgproxy::proxy::TlsContexts::load(l.tls, l.protocols);
      }
      (void)bgproxy::proxy::Settings::from(*cfg);  // upstream CA, client certificates and keys
    } catch (const bgproxy::proxy::TlsLoadError& e) {
      std::cerr << config_path << ": " << e.what() << "\n";
      return 1;
    }
    std::cout << config_path << ": configuration ok\n";
    return 0;
  }
  // A bgproxy already serving on our control socket hands its sockets over (binary upgrade).
  // Started by `bgctl upgrade`, we are told where it listens (the config may name another
  // socket by now) and must not start on our own.
  const char* takeover_from = std::getenv("BGPROXY_TAKEOVER_FROM");
  const bool started_by_upgrade = takeover_from != nullptr;
  const std::string takeover_path = started_by_upgrade ? takeover_from : cfg->control.socket;
  ::unsetenv("BGPROXY_TAKEOVER_FROM");
  std::optional<bgproxy::control::Inherited> inherited;
  try {
    inherited = bgproxy::control::request_takeover(takeover_path);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  if (!inherited && started_by_upgrade) {
    spdlog::error("upgrade: nothing answers on {}; not starting beside the old process", takeover_path);
    return 1;
  }
  if (inherited) {
    std::size_t count = 0;
    for (const auto& l : inherited->sockets.listeners) count += l.fds.size();
    spdlog::info("upgrade: took over {} listening sockets from pid {}", count + 2, inherited->from_pid);
  }
  bgproxy::proxy::Server server(std::move(*cfg));
  server.set_command_line({argv, argv + argc});
  const bool prepared = server.prepare(inherited ? &inherited->sockets : nullptr);
  // proxy/ and control/ meet only here, through api::DataPlane.
  std::optional<bgproxy::control::ControlServer> control;
  std::string problem;
  if (prepared) {
    control.emplace(server.control_context(), server);
    problem = control->start(inherited ? &*inherited : nullptr);
    if (!problem.empty()) spdlog::error("{}", problem);
  }
  if (inherited) bgproxy::control::close_unused(*inherited);
  // Closing the channel without "done" tells the old process to carry on.
  if (!prepared || !problem.empty()) return 1;
  if (inherited) {
    server.on_ready([&inherited] {
      if (bgproxy::control::finish_takeover(*inherited)) return true;
      spdlog::error("upgrade: pid {} did not acknowledge the takeover; stopping", inherited->from_pid);
      return false;
    });
  }
  return server.run();
}
