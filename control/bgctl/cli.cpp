#include "control/bgctl/cli.hpp"

#include <algorithm>
#include <map>
#include <memory>

#include <CLI/CLI.hpp>

#include "bgproxy/config/parse.hpp"
#include "control/core/command.hpp"
#include "control/bgctl/request.hpp"

namespace bgproxy::bgctl {

namespace {

constexpr std::string_view global_usage = "bgctl [-S SOCKET] [--json] [--local]";
constexpr std::string_view help_usage = "help [COMMAND]";
constexpr std::string_view help_summary = "this text, or one command's usage";

const control::CommandInfo* find_command(std::string_view name) {
  for (const auto& c : control::command_table())
    if (c.name == name) return &c;
  return nullptr;
}

/// Where the command word is, found the way CLI11 will: past the global options.
struct Scan {
  std::optional<std::size_t> command;  ///< index into args
  bool help = false;                   ///< -h/--help anywhere before "--"
};

Scan scan(const std::vector<std::string>& args) {
  Scan s;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      if (!s.command && i + 1 < args.size()) s.command = i + 1;
      break;
    }
    if (a == "-h" || a == "--help") {
      s.help = true;
      continue;
    }
    if (s.command) continue;
    if (a == "-S" || a == "--socket") {
      ++i;  // its value
      continue;
    }
    if (!a.empty() && a.front() == '-') continue;  // --json, -SPATH, --socket=PATH, or CLI11's to refuse
    s.command = i;
  }
  return s;
}

Finished usage_error(std::string message, std::string_view command) {
  return Finished{exit_usage, "", "bgctl: " + message + "\n" + usage_line(command)};
}

}  // namespace

std::string usage_line(std::string_view command) {
  const control::CommandInfo* c = find_command(command);
  if (command == "help") return "usage: " + std::string(global_usage) + " " + std::string(help_usage) + "\n";
  if (c == nullptr) return "usage: " + std::string(global_usage) + " COMMAND ...\n";
  return "usage: " + std::string(global_usage) + " " + std::string(c->usage) + "\n";
}

std::string help_text() {
  std::vector<std::pair<std::string_view, std::string_view>> rows;
  for (const auto& c : control::command_table()) rows.emplace_back(c.usage, c.summary);
  rows.emplace_back(help_usage, help_summary);

  constexpr std::size_t max_column = 50;
  std::size_t column = 0;
  for (const auto& [usage, summary] : rows)
    if (usage.size() <= max_column) column = std::max(column, usage.size());

  std::string out = "usage: " + std::string(global_usage) + " COMMAND ...\n\n";
  out += "Drives a running bgproxy through its control socket.\n\ncommands:\n";
  for (const auto& [usage, summary] : rows) {
    out += "  ";
    out += usage;
    if (usage.size() > column) out += "\n  " + std::string(column, ' ');
    else out.append(column - usage.size(), ' ');
    out += "  ";
    out += summary;
    out += '\n';
  }
  out += "\noptions:\n";
  out += "  -S SOCKET   control socket (default: $BGCTL_SOCKET, else " + std::string(default_socket) + ")\n";
  out += "  --json      print the proxy's answer object as it was received\n";
  out += "  --local     in a fleet whose etcd is out of reach: make the change on this instance alone\n";
  out += "  -s SERVICE  may be left out when the proxy has one service\n";
  out += "\nexit codes: 0 done, 1 refused by the proxy, 2 usage error, 3 cannot reach the socket\n";
  return out;
}

std::variant<Invocation, Finished> parse_command_line(const std::vector<std::string>& args,
                                                      std::optional<std::string> env_socket) {
  const Scan sc = scan(args);
  const std::string command = sc.command ? args[*sc.command] : std::string();

  if (sc.command && command != "help" && find_command(command) == nullptr)
    return usage_error("unknown command " + shown(command) + " (see bgctl help)", "");
  if (sc.help) {
    if (const control::CommandInfo* c = find_command(command))
      return Finished{exit_ok, usage_line(command) + std::string(c->summary) + "\n", ""};
    return Finished{exit_ok, help_text(), ""};
  }
  if (!sc.command) return usage_error("no command given (see bgctl help)", "");

  CLI::App app{"bgctl", "bgctl"};
  app.set_help_flag();  // -h/--help are handled above, from the command table
  app.fallthrough();    // -S and --json may also follow the command
  std::string socket;
  bool json = false;
  app.add_option("-S,--socket", socket);
  app.add_flag("--json", json);

  Options o;
  app.add_flag("--local", o.local);
  std::string help_topic;
  bool watch = false;
  bool wait = false;
  CLI::Option* timeout = nullptr;
  std::string timeout_text;
  CLI::Option* green = nullptr;
  CLI::Option* blue = nullptr;
  CLI::Option* steps = nullptr;  // canary's; the release's own are release_*
  CLI::Option* interval = nullptr;
  CLI::Option* release_steps = nullptr;
  CLI::Option* release_interval = nullptr;
  CLI::Option* limit = nullptr;
  std::string green_text;
  std::string blue_text;
  std::string steps_text;
  std::string interval_text;
  std::string limit_text;

  for (const auto& c : control::command_table()) {
    CLI::App* sub = app.add_subcommand(std::string(c.name), std::string(c.summary));
    const std::string name(c.name);
    if (name != "reload" && name != "upgrade") sub->add_option("-s,--service", o.service);
    if (name == "split") {
      green = sub->add_option("--green", green_text);
      blue = sub->add_option("--blue", blue_text);
      sub->add_flag("--force", o.force);
    } else if (name == "switch") {
      sub->add_option("color", o.color);
      sub->add_flag("--force", o.force);
    } else if (name == "canary") {
      sub->add_option("action", o.action);
      steps = sub->add_option("--steps", steps_text);
      interval = sub->add_option("--interval", interval_text);
      sub->add_flag("--force", o.force);  // start only; left out of the usage line
    } else if (name == "release") {
      sub->add_option("--to", o.color);
      sub->add_option("--smoke", o.smoke);
      release_steps = sub->add_option("--steps", steps_text);
      release_interval = sub->add_option("--interval", interval_text);
      sub->add_flag("--force", o.force);
      sub->add_flag("--wait", wait);
      timeout = sub->add_option("--timeout", timeout_text);
    } else if (name == "rollback") {
      sub->add_flag("--drain", o.drain);
    } else if (name == "status" || name == "health") {
      sub->add_flag("--watch", watch);
    } else if (name == "history") {
      limit = sub->add_option("--limit", limit_text);
    } else if (name == "server") {
      sub->add_option("action", o.action);
      sub->add_option("address", o.address);
    }
  }
  CLI::App* help = app.add_subcommand("help", std::string(help_summary));
  help->add_option("command", help_topic);
  app.require_subcommand(1);

  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 consumes from the back
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what(), command);
  }

  if (command == "help") {
    if (help_topic.empty()) return Finished{exit_ok, help_text(), ""};
    const control::CommandInfo* c = find_command(help_topic);
    if (c == nullptr) return usage_error("unknown command " + shown(help_topic) + " (see bgctl help)", "");
    return Finished{exit_ok, usage_line(help_topic) + std::string(c->summary) + "\n", ""};
  }

  o.command = command;
  if (green != nullptr && green->count() > 0) o.green = green_text;
  if (blue != nullptr && blue->count() > 0) o.blue = blue_text;
  const auto given = [](const CLI::Option* a, const CLI::Option* b) {
    return (a != nullptr && a->count() > 0) || (b != nullptr && b->count() > 0);
  };
  if (given(steps, release_steps)) o.steps = steps_text;
  if (given(interval, release_interval)) o.interval = interval_text;
  if (limit != nullptr && limit->count() > 0) o.limit = limit_text;
  std::chrono::milliseconds wait_timeout{std::chrono::minutes(30)};
  if (timeout != nullptr && timeout->count() > 0) {
    if (!wait) return usage_error("--timeout only goes with --wait", command);
    const auto d = config::parse_duration(timeout_text);
    if (!d || d->count() <= 0)
      return usage_error("--timeout must be a duration above 0 such as 90s or 30m, not " + shown(timeout_text),
                         command);
    wait_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  const bool socket_given = app.get_option("--socket")->count() > 0;
  if (socket_given && socket.empty()) return usage_error("-S needs a socket path", command);

  auto request = build_request(o);
  if (!request) return usage_error(request.error().message, command);

  Invocation inv;
  if (socket_given) inv.socket = socket;
  else if (env_socket && !env_socket->empty()) inv.socket = *env_socket;
  else inv.socket = default_socket;
  inv.json = json;
  inv.watch = watch;
  inv.wait = wait;
  inv.timeout = wait_timeout;
  inv.service = o.service;
  inv.command = command;
  inv.request = std::move(*request);
  return inv;
}

std::chrono::milliseconds answer_timeout(std::string_view command) {
  if (command == "upgrade") return std::chrono::seconds(125);
  if (command == "release") return std::chrono::seconds(85);
  return std::chrono::seconds(5);
}

}  // namespace bgproxy::bgctl
