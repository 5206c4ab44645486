// bgproxy — the daemon. See SPEC §2 for flags, signals and exit codes.
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "bgproxy/config/parse.hpp"
#include "control/server/control_server.hpp"
#include "proxy/app/server.hpp"

int main(int argc, char** argv) {
  CLI::App app{"bgproxy — blue/green HTTP reverse proxy"};
  std::string config_path = "/etc/bgproxy/bgproxy.yaml";
  bool check = false;
  bool version = false;
  app.add_option("-c,--config", config_path, "configuration file")->capture_default_str();
  app.add_flag("--check", check, "validate the configuration and exit (0 ok, 1 invalid)");
  app.add_flag("--version", version, "print the version and exit");
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
    std::cout << config_path << ": configuration ok\n";
    return 0;
  }
  bgproxy::proxy::Server server(std::move(*cfg));
  if (!server.prepare()) return 1;
  // proxy/ and control/ meet only here, through api::DataPlane.
  bgproxy::control::ControlServer control(server.control_context(), server);
  if (auto problem = control.start(); !problem.empty()) {
    spdlog::error("{}", problem);
    return 1;
  }
  return server.run();
}
