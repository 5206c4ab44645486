// bgctl in a fleet (README "Running a fleet", SPEC §12): `--local` on the request line of a
// change and refused elsewhere, its help, and the fleet part of the human status.

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "control/bgctl/cli.hpp"
#include "control/bgctl/render.hpp"
#include "control/core/command.hpp"

namespace bgproxy::bgctl {
namespace {

std::variant<Invocation, Finished> run(std::vector<std::string> args) {
  return parse_command_line(args, std::nullopt);
}

std::string request(std::vector<std::string> args) {
  auto r = run(std::move(args));
  if (const auto* f = std::get_if<Finished>(&r)) {
    ADD_FAILURE() << "exit " << f->exit_code << ": " << f->err;
    return {};
  }
  return std::get<Invocation>(r).request;
}

std::string usage_error(std::vector<std::string> args) {
  auto r = run(std::move(args));
  if (const auto* inv = std::get_if<Invocation>(&r)) {
    ADD_FAILURE() << "would send " << inv->request;
    return {};
  }
  const auto& f = std::get<Finished>(r);
  EXPECT_EQ(f.exit_code, exit_usage);
  EXPECT_TRUE(f.out.empty()) << f.out;
  return f.err;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// ----------------------------------------------------------------------- --local

TEST(BgctlLocal, AddsLocalTrueLastToAChange) {
  EXPECT_EQ(request({"--local", "split", "--green", "30"}), R"({"command":"split","green":30,"local":true})");
  EXPECT_EQ(request({"--local", "split", "--green", "30", "-s", "app", "--force"}),
            R"({"command":"split","service":"app","green":30,"force":true,"local":true})");
  EXPECT_EQ(request({"--local", "switch", "green"}), R"({"command":"switch","color":"green","local":true})");
  EXPECT_EQ(request({"--local", "rollback"}), R"({"command":"rollback","local":true})");
  EXPECT_EQ(request({"--local", "rollback", "-s", "app"}), R"({"command":"rollback","service":"app","local":true})");
  EXPECT_EQ(request({"--local", "canary", "start", "--steps", "10,100"}),
            R"({"command":"canary","action":"start","steps":[10,100],"local":true})");
  EXPECT_EQ(request({"--local", "canary", "abort"}), R"({"command":"canary","action":"abort","local":true})");
  EXPECT_EQ(request({"--local", "server", "drain", "127.0.0.1:5006"}),
            R"({"command":"server","action":"drain","address":"127.0.0.1:5006","local":true})");
}

TEST(BgctlLocal, MayFollowTheCommandLikeTheOtherGlobalFlags) {
  EXPECT_EQ(request({"rollback", "--local"}), R"({"command":"rollback","local":true})");
  EXPECT_EQ(request({"split", "--green", "30", "--local"}), R"({"command":"split","green":30,"local":true})");
  EXPECT_EQ(request({"-S", "/tmp/s.sock", "--json", "--local", "switch", "blue"}),
            R"({"command":"switch","color":"blue","local":true})");
  const auto r = run({"--json", "--local", "-S", "/tmp/s.sock", "rollback"});
  const auto& inv = std::get<Invocation>(r);
  EXPECT_TRUE(inv.json);
  EXPECT_EQ(inv.socket, "/tmp/s.sock");
  EXPECT_EQ(inv.command, "rollback");
}

TEST(BgctlLocal, WithoutItNoLocalField) {
  EXPECT_EQ(request({"split", "--green", "30"}), R"({"command":"split","green":30})");
  EXPECT_EQ(request({"rollback"}), R"({"command":"rollback"})");
}

TEST(BgctlLocal, TheProxyParsesWhatBgctlSends) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--local", "split", "--blue", "12.5"},
                                                                 {"--local", "switch", "green", "--force"},
                                                                 {"--local", "rollback", "-s", "app"},
                                                                 {"--local", "canary", "start", "--interval", "5s"},
                                                                 {"--local", "canary", "pause"},
                                                                 {"--local", "server", "enable", "127.0.0.1:5006"}}) {
    const std::string line = request(args);
    const auto parsed = control::parse_command(line);
    ASSERT_TRUE(parsed.has_value()) << line << ": " << (parsed ? "" : parsed.error().message);
    EXPECT_TRUE(parsed->local) << line;
    EXPECT_TRUE(boost::json::parse(line).as_object().at("local").as_bool()) << line;
  }
}

TEST(BgctlLocal, OnlyWithAChange) {
  const std::string message =
      "bgctl: --local only goes with a change: split, switch, rollback, canary or server";
  for (const auto& args : std::vector<std::vector<std::string>>{{"--local", "status"},
                                                                 {"status", "--local"},
                                                                 {"--local", "status", "-s", "app"},
                                                                 {"--local", "health"},
                                                                 {"--local", "history", "--limit", "3"},
                                                                 {"--local", "reload"},
                                                                 {"--local", "upgrade"}}) {
    const std::string err = usage_error(args);
    EXPECT_EQ(first_line(err), message) << args[1];
  }
  // The usage line of the command follows, as for any usage error.
  EXPECT_NE(usage_error({"--local", "status"}).find("\nusage: bgctl [-S SOCKET] [--json] [--local] status"),
            std::string::npos);
}

TEST(BgctlLocal, ItsOwnUsageErrorsComeFirst) {
  // A change with a usage error of its own is refused for that error, --local or not.
  const std::string plain = first_line(usage_error({"split", "--green", "abc"}));
  EXPECT_EQ(first_line(usage_error({"--local", "split", "--green", "abc"})), plain);
}

TEST(BgctlLocal, HelpMentionsIt) {
  const std::string help = help_text();
  EXPECT_NE(help.find("usage: bgctl [-S SOCKET] [--json] [--local] COMMAND ...\n"), std::string::npos) << help;
  EXPECT_NE(help.find("\n  --local "), std::string::npos) << help;
  const auto r = run({"help"});
  const auto& f = std::get<Finished>(r);
  EXPECT_EQ(f.exit_code, exit_ok);
  EXPECT_NE(f.out.find("--local"), std::string::npos) << f.out;
  EXPECT_EQ(usage_line("rollback"), "usage: bgctl [-S SOCKET] [--json] [--local] rollback [-s SERVICE]\n");
}

// ----------------------------------------------------------------------- status with a fleet

boost::json::object answer(std::string_view text) { return boost::json::parse(text).as_object(); }

constexpr std::string_view one_service = R"j({"name":"app","weights":{"blue":100.0,"green":0.0},"phase":"idle",
  "step":0,"target":null,"revision":42,
  "colors":{"blue":{"servers":[{"address":"127.0.0.1:5005","state":"up"}]},
            "green":{"servers":[{"address":"127.0.0.1:5006","state":"up"}]}}})j";

constexpr std::string_view service_text =
    "app: blue 100% / green 0% (phase idle)\n"
    "  COLOR  RPS  REQUESTS  ERRORS  P95  SERVERS\n"
    "  blue   -    -         -       -    127.0.0.1:5005 up\n"
    "  green  -    -         -       -    127.0.0.1:5006 up\n";

TEST(BgctlRenderFleet, StatusShowsTheFleetAndOneRowPerMember) {
  const std::string text = render_status(answer(
      std::string(R"j({"ok":true,"services":[)j") + std::string(one_service) +
      R"j(],"fleet":{"connected":true,"instance":"a","revision":42,"members":[
        {"instance":"a","address":"127.0.0.1:9901","revision":42,"connected":true},
        {"instance":"b","address":"127.0.0.1:9902","revision":42,"connected":true},
        {"instance":"charlie","address":"10.0.0.3:19903","revision":7,"connected":false}]}})j"));
  EXPECT_EQ(text, std::string(service_text) +
                      "\n"
                      "fleet: connected to etcd, routing by revision 42, 3 members\n"
                      "  a        127.0.0.1:9901  revision 42  connected\n"
                      "  b        127.0.0.1:9902  revision 42  connected\n"
                      "  charlie  10.0.0.3:19903  revision 7   not connected\n");
}

TEST(BgctlRenderFleet, TheContractsLine) {
  const std::string text = render("status", answer(
      std::string(R"j({"ok":true,"services":[)j") + std::string(one_service) +
      R"j(],"fleet":{"connected":true,"instance":"a","revision":42,"members":[
        {"instance":"a","address":"127.0.0.1:9001","revision":42,"connected":true}]}})j"));
  EXPECT_NE(text.find("\nfleet: connected to etcd, routing by revision 42, 1 member\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  a  127.0.0.1:9001  revision 42  connected\n"), std::string::npos) << text;
}

TEST(BgctlRenderFleet, DisconnectedAndWithoutMembers) {
  const std::string text = render_status(answer(std::string(R"j({"ok":true,"services":[)j") +
                                                std::string(one_service) +
                                                R"j(],"fleet":{"connected":false,"instance":"a","revision":0,"members":[]}})j"));
  EXPECT_EQ(text, std::string(service_text) + "\nfleet: NOT connected to etcd, routing by revision 0, 0 members\n");
}

TEST(BgctlRenderFleet, FieldsMissingPrintAsDashes) {
  const std::string text = render_status(answer(std::string(R"j({"ok":true,"services":[)j") +
                                                std::string(one_service) + R"j(],"fleet":{"members":[{}]}})j"));
  EXPECT_NE(text.find("\nfleet: NOT connected to etcd, routing by revision -, 1 member\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n  -  -  revision -  not connected\n"), std::string::npos) << text;
}

TEST(BgctlRenderFleet, WithoutAFleetNothingOfIt) {
  const std::string text =
      render_status(answer(std::string(R"j({"ok":true,"services":[)j") + std::string(one_service) + "]}"));
  EXPECT_EQ(text, service_text);
  EXPECT_EQ(text.find("fleet"), std::string::npos);
  EXPECT_EQ(text.find("revision"), std::string::npos);
}

TEST(BgctlRenderFleet, ControlCharactersInMemberNamesAreNeutralised) {
  const std::string text = render_status(answer(
      std::string(R"j({"ok":true,"services":[)j") + std::string(one_service) +
      R"j(],"fleet":{"connected":true,"revision":1,"members":[
        {"instance":"a\u001b[2J","address":"x\ny","revision":1,"connected":true}]}})j"));
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_NE(text.find("a?[2J"), std::string::npos) << text;
  EXPECT_NE(text.find("x?y"), std::string::npos) << text;
}

}  // namespace
}  // namespace bgproxy::bgctl
