// bgctl: the control CLI of bgproxy (README "bgctl walkthrough"). Parses the command line, sends one request
// line to the control socket, prints the answer. The parts are in cli/request/client/render.

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "control/bgctl/cli.hpp"
#include "control/bgctl/client.hpp"
#include "control/bgctl/render.hpp"

namespace {

using namespace bgproxy::bgctl;
namespace json = boost::json;

int run(const std::vector<std::string>& args) {
  const char* env = std::getenv("BGCTL_SOCKET");
  auto parsed = parse_command_line(args, env != nullptr ? std::optional<std::string>(env) : std::nullopt);
  if (auto* done = std::get_if<Finished>(&parsed)) {
    std::cout << done->out << std::flush;
    std::cerr << done->err << std::flush;
    return done->exit_code;
  }
  const auto& inv = std::get<Invocation>(parsed);

  auto answer_line = send_request(inv.socket, inv.request);
  if (!answer_line) {
    const auto& e = answer_line.error();
    std::cerr << "bgctl: " << (e.kind == ClientError::Kind::connect ? "cannot connect to " : "no answer from ")
              << inv.socket << ": " << e.reason << '\n';
    return exit_unreachable;
  }

  boost::system::error_code ec;
  json::value answer = json::parse(*answer_line, ec);
  const json::object* obj = ec ? nullptr : answer.if_object();
  const json::value* ok = obj != nullptr ? obj->if_contains("ok") : nullptr;
  if (ok == nullptr || !ok->is_bool()) {
    std::cerr << "bgctl: bad answer from " << inv.socket << ": "
              << (obj == nullptr ? "not a JSON object" : "no \"ok\" field") << '\n';
    return exit_unreachable;
  }

  if (inv.json) std::cout << *answer_line << '\n' << std::flush;
  if (!ok->get_bool()) {
    const json::value* error = obj->if_contains("error");
    std::string message = error != nullptr && error->is_string() ? std::string(error->get_string()) : "refused";
    for (char& c : message)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    std::cerr << "bgctl: " << message << '\n';
    return exit_refused;
  }
  if (!inv.json) std::cout << render(inv.command, *obj) << std::flush;
  return exit_ok;
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
