// bgctl: the control CLI of bgproxy (README "bgctl walkthrough"). Parses the command line, sends one request
// line to the control socket, prints the answer (or follows a release). The parts are in
// cli/request/client/render/release/watch.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <variant>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "control/bgctl/cli.hpp"
#include "control/bgctl/client.hpp"
#include "control/bgctl/release.hpp"
#include "control/bgctl/render.hpp"
#include "control/bgctl/watch.hpp"

namespace {

using namespace bgproxy::bgctl;
namespace json = boost::json;

/// One request and its answer, as bgctl shows them.
struct Reply {
  int exit_code = exit_ok;
  std::string out;  ///< for stdout
  std::string err;  ///< for stderr
};

/// @param raw if given, gets the answer line as received
Reply ask(const Invocation& inv, std::string* raw = nullptr) {
  auto answer_line = send_request(inv.socket, inv.request, answer_timeout(inv.command));
  if (!answer_line) {
    const auto& e = answer_line.error();
    return {exit_unreachable, "",
            "bgctl: " + std::string(e.kind == ClientError::Kind::connect ? "cannot connect to " : "no answer from ") +
                inv.socket + ": " + e.reason + "\n"};
  }

  boost::system::error_code ec;
  json::value answer = json::parse(*answer_line, ec);
  const json::object* obj = ec ? nullptr : answer.if_object();
  const json::value* ok = obj != nullptr ? obj->if_contains("ok") : nullptr;
  if (ok == nullptr || !ok->is_bool()) {
    return {exit_unreachable, "",
            "bgctl: bad answer from " + inv.socket + ": " +
                (obj == nullptr ? "not a JSON object" : "no \"ok\" field") + "\n"};
  }

  Reply r;
  if (raw != nullptr) *raw = *answer_line;
  if (inv.json) r.out = *answer_line + "\n";
  if (!ok->get_bool()) {
    const json::value* error = obj->if_contains("error");
    std::string message = error != nullptr && error->is_string() ? std::string(error->get_string()) : "refused";
    for (char& c : message)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    r.exit_code = exit_refused;
    r.err = "bgctl: " + message + "\n";
    // A release refused by its smoke test: what each path answered, up to the failure.
    if (!inv.json && inv.command == "release") r.out = render_smoke(*obj);
    return r;
  }
  if (!inv.json) r.out = render(inv.command, *obj);
  return r;
}

std::optional<json::object> parse_object(std::string_view line) {
  boost::system::error_code ec;
  json::value v = json::parse(line, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.get_object());
}

/// The service a change answer is about: the name in its "state" (one service's object, or a
/// list of them).
std::string answered_service(std::string_view answer_line) {
  const auto answer = parse_object(answer_line);
  const json::value* state = answer ? answer->if_contains("state") : nullptr;
  if (state != nullptr && state->is_array() && !state->get_array().empty()) state = &state->get_array().front();
  const json::object* service = state != nullptr ? state->if_object() : nullptr;
  const json::value* name = service != nullptr ? service->if_contains("name") : nullptr;
  return name != nullptr && name->is_string() ? std::string(name->get_string()) : std::string();
}

/// The proxy's event feed, subscribed: the connection after its "subscribed" answer, or the
/// exit code bgctl ends with (3 unreachable, 1 refused), said on stderr.
/// @param answer if given, gets the subscription's answer line
std::variant<ControlConnection, int> subscribe(const Invocation& inv, std::string* answer_line = nullptr) {
  const auto unreachable = [&](const ClientError& e) {
    std::cerr << "bgctl: event feed of " << inv.socket << ": " << e.reason << '\n';
    return static_cast<int>(exit_unreachable);
  };
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  auto feed = ControlConnection::open(inv.socket, deadline);
  if (!feed) return unreachable(feed.error());
  std::string line = R"({"command":"events")";
  if (!inv.service.empty()) line += ",\"service\":" + json::serialize(json::string(inv.service));
  line += "}";
  if (auto sent = feed->send_line(line, deadline); !sent) return unreachable(sent.error());
  auto answer = feed->read_line(deadline);
  if (!answer) return unreachable(answer.error());
  const auto obj = parse_object(*answer);
  const json::value* ok = obj ? obj->if_contains("ok") : nullptr;
  if (ok == nullptr || !ok->is_bool() || !ok->get_bool()) {
    const json::value* error = obj ? obj->if_contains("error") : nullptr;
    std::cerr << "bgctl: " << (error != nullptr && error->is_string() ? std::string(error->get_string()) : *answer)
              << '\n';
    return static_cast<int>(exit_refused);
  }
  if (answer_line != nullptr) *answer_line = std::move(*answer);
  return std::move(*feed);
}

/// `bgctl events`: the feed's lines as they come (the subscription's answer, then one JSON
/// object per event) until interrupted.
int print_events(const Invocation& inv) {
  std::string subscribed;
  auto feed = subscribe(inv, &subscribed);
  if (const int* code = std::get_if<int>(&feed)) return *code;
  std::cout << subscribed << std::endl;
  auto& conn = std::get<ControlConnection>(feed);
  for (;;) {
    auto line = conn.read_line(Clock::time_point::max());
    if (!line) {
      std::cerr << "bgctl: event feed of " << inv.socket << ": " << line.error().reason << '\n';
      return exit_unreachable;
    }
    std::cout << *line << std::endl;
  }
}

/// `bgctl release --wait`: subscribes to the proxy's event feed first, so that nothing the
/// rollout does after the release is missed, then asks for the release and follows it.
int release_and_wait(const Invocation& inv) {
  auto feed = subscribe(inv);
  if (const int* code = std::get_if<int>(&feed)) return *code;
  auto& conn = std::get<ControlConnection>(feed);

  std::string answer_line;
  const Reply r = ask(inv, &answer_line);
  std::cout << r.out << std::flush;
  std::cerr << r.err << std::flush;
  if (r.exit_code != exit_ok) return r.exit_code;
  const std::string service = !inv.service.empty() ? inv.service : answered_service(answer_line);

  const auto deadline = Clock::now() + inv.timeout;
  for (;;) {
    auto line = conn.read_line(deadline);
    if (!line) {
      if (line.error().timed_out) {
        std::cerr << "bgctl: --timeout passed before the release ended; the rollout goes on (bgctl status)\n";
        return exit_timeout;
      }
      std::cerr << "bgctl: event feed of " << inv.socket << ": " << line.error().reason << '\n';
      return exit_unreachable;
    }
    const auto event = parse_object(*line);
    if (!event) continue;
    if (inv.json) std::cout << *line << '\n';
    const FollowStep step = follow_event(*event, service);
    const bool feed_lost = step.exit_code == exit_unreachable;
    if (feed_lost) std::cerr << step.line;
    else if (!inv.json) std::cout << step.line;
    std::cout << std::flush;
    if (step.exit_code) return *step.exit_code;
  }
}

int run(const std::vector<std::string>& args) {
  const char* env = std::getenv("BGCTL_SOCKET");
  auto parsed = parse_command_line(args, env != nullptr ? std::optional<std::string>(env) : std::nullopt);
  if (auto* done = std::get_if<Finished>(&parsed)) {
    std::cout << done->out << std::flush;
    std::cerr << done->err << std::flush;
    return done->exit_code;
  }
  const auto& inv = std::get<Invocation>(parsed);
  if (inv.watch) {
    // An answer that is an error (the proxy restarting, a refusal) is shown like any other: the
    // watch goes on until it is interrupted.
    watch(
        [&inv] {
          Reply r = ask(inv);
          return r.out + r.err;
        },
        ::isatty(STDOUT_FILENO) == 1, std::cout);
  }
  if (inv.wait) return release_and_wait(inv);
  if (inv.command == "events") return print_events(inv);
  const Reply r = ask(inv);
  std::cout << r.out << std::flush;
  std::cerr << r.err << std::flush;
  return r.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::cerr << "bgctl: " << e.what() << '\n';
    return exit_unreachable;
  }
}
