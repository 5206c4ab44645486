// bgctl: the control CLI of bgproxy (README "bgctl walkthrough"). Parses the command line, sends one request
// line to the control socket, prints the answer. The parts are in cli/request/client/render.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "control/bgctl/cli.hpp"
#include "control/bgctl/client.hpp"
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

Reply ask(const Invocation& inv) {
  auto answer_line = send_request(inv.socket, inv.request);
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
  if (inv.json) r.out = *answer_line + "\n";
  if (!ok->get_bool()) {
    const json::value* error = obj->if_contains("error");
    std::string message = error != nullptr && error->is_string() ? std::string(error->get_string()) : "refused";
    for (char& c : message)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    r.exit_code = exit_refused;
    r.err = "bgctl: " + message + "\n";
    return r;
  }
  if (!inv.json) r.out = render(inv.command, *obj);
  return r;
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
