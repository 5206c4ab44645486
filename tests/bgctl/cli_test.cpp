// bgctl's command line → the request line it sends, and every usage error it finds itself;
// `--local` in a fleet (README "Running a fleet", SPEC §12): on a change, refused elsewhere, its help.

#include "control/bgctl/cli.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "control/core/command.hpp"

namespace bgproxy::bgctl {
namespace {

std::variant<Invocation, Finished> run(std::vector<std::string> args, std::optional<std::string> env = std::nullopt) {
  return parse_command_line(args, std::move(env));
}

/// The request line for `args`, failing the test on a usage error.
std::string request(std::vector<std::string> args) {
  auto r = run(std::move(args));
  if (const auto* f = std::get_if<Finished>(&r)) {
    ADD_FAILURE() << "exit " << f->exit_code << ": " << f->err;
    return {};
  }
  return std::get<Invocation>(r).request;
}

/// The stderr text of a usage error, failing the test when bgctl would send something.
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

/// The first line of a usage error.
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

TEST(BgctlRequest, Status) {
  EXPECT_EQ(request({"status"}), R"({"command":"status"})");
  EXPECT_EQ(request({"status", "-s", "app"}), R"({"command":"status","service":"app"})");
  EXPECT_EQ(request({"status", "--service", "app"}), R"({"command":"status","service":"app"})");
  EXPECT_EQ(request({"status", "--service=api"}), R"({"command":"status","service":"api"})");
}

TEST(BgctlRequest, Split) {
  EXPECT_EQ(request({"split", "--green", "50"}), R"({"command":"split","green":50})");
  EXPECT_EQ(request({"split", "--green", "50", "-s", "app"}), R"({"command":"split","service":"app","green":50})");
  EXPECT_EQ(request({"split", "-s", "app", "--blue", "30"}), R"({"command":"split","service":"app","blue":30})");
  EXPECT_EQ(request({"split", "--green=12.5"}), R"({"command":"split","green":12.5})");
  EXPECT_EQ(request({"split", "--green", "33.33", "--force"}), R"({"command":"split","green":33.33,"force":true})");
  EXPECT_EQ(request({"split", "--blue", "0.05"}), R"({"command":"split","blue":0.05})");
  EXPECT_EQ(request({"split", "--green", "0"}), R"({"command":"split","green":0})");
  EXPECT_EQ(request({"split", "--green", "100"}), R"({"command":"split","green":100})");
  EXPECT_EQ(request({"split", "--green", "10.50"}), R"({"command":"split","green":10.5})");
  EXPECT_EQ(request({"split", "--force", "--blue", "100", "-s", "web"}),
            R"({"command":"split","service":"web","blue":100,"force":true})");
}

TEST(BgctlRequest, WeightsFollowTheOneRule) {
  // The percentage rule of bgproxy/weights, as in the config and the protocol: by value.
  EXPECT_EQ(request({"split", "--green", "10.250"}), R"({"command":"split","green":10.25})");
  EXPECT_EQ(request({"split", "--green", "-0"}), R"({"command":"split","green":0})");
  EXPECT_EQ(request({"canary", "start", "--steps", "010,50.00,100"}),
            R"({"command":"canary","action":"start","steps":[10,50,100]})");
}

TEST(BgctlRequest, Switch) {
  EXPECT_EQ(request({"switch", "green"}), R"({"command":"switch","color":"green"})");
  EXPECT_EQ(request({"switch", "blue", "-s", "app"}), R"({"command":"switch","service":"app","color":"blue"})");
  EXPECT_EQ(request({"switch", "green", "--force"}), R"({"command":"switch","color":"green","force":true})");
  EXPECT_EQ(request({"switch", "--force", "-s", "app", "green"}),
            R"({"command":"switch","service":"app","color":"green","force":true})");
}

TEST(BgctlRequest, RollbackHealthReload) {
  EXPECT_EQ(request({"rollback"}), R"({"command":"rollback"})");
  EXPECT_EQ(request({"rollback", "-s", "app"}), R"({"command":"rollback","service":"app"})");
  EXPECT_EQ(request({"rollback", "--drain"}), R"({"command":"rollback","drain":true})");
  EXPECT_EQ(request({"rollback", "--drain", "-s", "app"}), R"({"command":"rollback","service":"app","drain":true})");
  EXPECT_EQ(request({"health"}), R"({"command":"health"})");
  EXPECT_EQ(request({"health", "-s", "app"}), R"({"command":"health","service":"app"})");
  EXPECT_EQ(request({"reload"}), R"({"command":"reload"})");
  EXPECT_EQ(request({"upgrade"}), R"({"command":"upgrade"})");
}

TEST(BgctlRequest, Canary) {
  EXPECT_EQ(request({"canary", "start"}), R"({"command":"canary","action":"start"})");
  EXPECT_EQ(request({"canary", "start", "--steps", "10,50,100", "--interval", "60s"}),
            R"({"command":"canary","action":"start","steps":[10,50,100],"interval":"60s"})");
  EXPECT_EQ(request({"canary", "start", "-s", "app", "--steps", "5,12.5,100"}),
            R"({"command":"canary","service":"app","action":"start","steps":[5,12.5,100]})");
  EXPECT_EQ(request({"canary", "start", "--interval", "1.5m"}),
            R"({"command":"canary","action":"start","interval":"1.5m"})");
  EXPECT_EQ(request({"canary", "start", "--steps", "100"}), R"({"command":"canary","action":"start","steps":[100]})");
  EXPECT_EQ(request({"canary", "start", "--force"}), R"({"command":"canary","action":"start","force":true})");
  EXPECT_EQ(request({"canary", "pause"}), R"({"command":"canary","action":"pause"})");
  EXPECT_EQ(request({"canary", "resume", "-s", "app"}), R"({"command":"canary","service":"app","action":"resume"})");
  EXPECT_EQ(request({"canary", "abort"}), R"({"command":"canary","action":"abort"})");
}

TEST(BgctlRequest, History) {
  EXPECT_EQ(request({"history"}), R"({"command":"history"})");
  EXPECT_EQ(request({"history", "--limit", "50"}), R"({"command":"history","limit":50})");
  EXPECT_EQ(request({"history", "-s", "app", "--limit", "1"}), R"({"command":"history","service":"app","limit":1})");
}

TEST(BgctlRequest, Server) {
  EXPECT_EQ(request({"server", "disable", "127.0.0.1:5006"}),
            R"({"command":"server","action":"disable","address":"127.0.0.1:5006"})");
  EXPECT_EQ(request({"server", "enable", "127.0.0.1:5006", "-s", "app"}),
            R"({"command":"server","service":"app","action":"enable","address":"127.0.0.1:5006"})");
  EXPECT_EQ(request({"server", "drain", "green-1.internal:8080"}),
            R"({"command":"server","action":"drain","address":"green-1.internal:8080"})");
  EXPECT_EQ(request({"server", "drain", "[::1]:8080"}), R"({"command":"server","action":"drain","address":"[::1]:8080"})");
}

TEST(BgctlRequest, ServiceNamesAreJsonEscaped) {
  EXPECT_EQ(request({"status", "-s", "a\"b\\c"}), R"({"command":"status","service":"a\"b\\c"})");
}

TEST(BgctlRequest, EveryRequestIsOneJsonObject) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"status"}, {"split", "--green", "12.34", "-s", "x"}, {"canary", "start", "--steps", "1,2.5,100"}}) {
    const std::string line = request(args);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_TRUE(boost::json::parse(line).is_object()) << line;
  }
}

TEST(BgctlRequest, ProxyParsesWhatBgctlSends) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"status", "-s", "app"},
           {"split", "--green", "12.5", "--force"},
           {"split", "--blue", "33.33"},
           {"switch", "green", "-s", "app"},
           {"rollback"},
           {"canary", "start", "--steps", "10,50,100", "--interval", "60s", "--force"},
           {"canary", "abort"},
           {"health"},
           {"history", "--limit", "5"},
           {"server", "drain", "127.0.0.1:5006"},
           {"reload"},
           {"upgrade"}}) {
    const std::string line = request(args);
    const auto parsed = control::parse_command(line);
    EXPECT_TRUE(parsed.has_value()) << line << ": " << (parsed ? "" : parsed.error().message);
  }
  const auto split = control::parse_command(request({"split", "--green", "12.5"}));
  ASSERT_TRUE(split.has_value());
  EXPECT_EQ(split->green_bp, 1250u);
  const auto blue = control::parse_command(request({"split", "--blue", "33.33"}));
  ASSERT_TRUE(blue.has_value());
  EXPECT_EQ(blue->green_bp, 6667u);
}

TEST(BgctlSocket, DefaultEnvironmentAndFlag) {
  auto r = run({"status"});
  EXPECT_EQ(std::get<Invocation>(r).socket, "/run/bgproxy/control.sock");
  r = run({"status"}, std::string("/tmp/x.sock"));
  EXPECT_EQ(std::get<Invocation>(r).socket, "/tmp/x.sock");
  r = run({"status"}, std::string(""));  // set but empty: the default
  EXPECT_EQ(std::get<Invocation>(r).socket, "/run/bgproxy/control.sock");
  r = run({"-S", "/tmp/y.sock", "status"}, std::string("/tmp/x.sock"));
  EXPECT_EQ(std::get<Invocation>(r).socket, "/tmp/y.sock");
  r = run({"--socket=/tmp/z.sock", "status"});
  EXPECT_EQ(std::get<Invocation>(r).socket, "/tmp/z.sock");
  r = run({"status", "-S", "/tmp/after.sock"});  // global options may follow the command
  EXPECT_EQ(std::get<Invocation>(r).socket, "/tmp/after.sock");
}

TEST(BgctlSocket, JsonFlag) {
  EXPECT_FALSE(std::get<Invocation>(run({"status"})).json);
  EXPECT_TRUE(std::get<Invocation>(run({"--json", "status"})).json);
  EXPECT_TRUE(std::get<Invocation>(run({"status", "--json"})).json);
  EXPECT_TRUE(std::get<Invocation>(run({"-S", "/s", "--json", "history", "--limit", "3"})).json);
  EXPECT_EQ(std::get<Invocation>(run({"--json", "split", "--green", "5"})).command, "split");
}

TEST(BgctlUsage, UnknownOrMissingCommand) {
  EXPECT_EQ(first_line(usage_error({"frobnicate"})), "bgctl: unknown command 'frobnicate' (see bgctl help)");
  EXPECT_EQ(first_line(usage_error({"-S", "/tmp/s", "stat"})), "bgctl: unknown command 'stat' (see bgctl help)");
  EXPECT_EQ(first_line(usage_error({})), "bgctl: no command given (see bgctl help)");
  EXPECT_EQ(first_line(usage_error({"--json"})), "bgctl: no command given (see bgctl help)");
  EXPECT_EQ(first_line(usage_error({"help", "nope"})), "bgctl: unknown command 'nope' (see bgctl help)");
}

TEST(BgctlUsage, BadWeights) {
  const std::string tail = " must be a number between 0 and 100 with at most two decimals, not ";
  EXPECT_EQ(first_line(usage_error({"split", "--green", "150"})), "bgctl: --green" + tail + "'150'");
  EXPECT_EQ(first_line(usage_error({"split", "--green", "-1"})), "bgctl: --green" + tail + "'-1'");
  EXPECT_EQ(first_line(usage_error({"split", "--green", "abc"})), "bgctl: --green" + tail + "'abc'");
  EXPECT_EQ(first_line(usage_error({"split", "--green", "10.555"})), "bgctl: --green" + tail + "'10.555'");
  EXPECT_EQ(first_line(usage_error({"split", "--blue", "100.01"})), "bgctl: --blue" + tail + "'100.01'");
  EXPECT_EQ(first_line(usage_error({"split", "--blue", ""})), "bgctl: --blue" + tail + "''");
  EXPECT_EQ(first_line(usage_error({"split", "--green", "1e2"})), "bgctl: --green" + tail + "'1e2'");
}

TEST(BgctlUsage, SplitNeedsExactlyOneColor) {
  EXPECT_EQ(first_line(usage_error({"split", "--green", "10", "--blue", "90"})),
            "bgctl: split takes either --green or --blue, not both");
  EXPECT_EQ(first_line(usage_error({"split"})), "bgctl: split needs --green N or --blue N");
  EXPECT_EQ(first_line(usage_error({"split", "-s", "app"})), "bgctl: split needs --green N or --blue N");
}

TEST(BgctlUsage, UsageLineFollowsTheMessage) {
  const std::string err = usage_error({"split", "--green", "abc"});
  EXPECT_NE(err.find("\nusage: bgctl [-S SOCKET] [--json] [--local] split --green N | --blue N [-s SERVICE] [--force]\n"),
            std::string::npos)
      << err;
}

TEST(BgctlUsage, BadColor) {
  EXPECT_EQ(first_line(usage_error({"switch", "red"})), "bgctl: color must be blue or green, not 'red'");
  EXPECT_EQ(first_line(usage_error({"switch", "Green"})), "bgctl: color must be blue or green, not 'Green'");
  EXPECT_EQ(first_line(usage_error({"switch"})), "bgctl: switch needs a color: blue or green");
}

TEST(BgctlUsage, BadCanary) {
  EXPECT_EQ(first_line(usage_error({"canary"})), "bgctl: canary needs an action: start, pause, resume or abort");
  EXPECT_EQ(first_line(usage_error({"canary", "go"})),
            "bgctl: canary action must be start, pause, resume or abort, not 'go'");
  const std::string order = "steps must be increasing percentages ending at 100 (e.g. 10,50,100)";
  EXPECT_EQ(first_line(usage_error({"canary", "start", "--steps", "10,50"})), "bgctl: --steps '10,50': " + order);
  EXPECT_EQ(first_line(usage_error({"canary", "start", "--steps", "50,10,100"})),
            "bgctl: --steps '50,10,100': " + order);
  EXPECT_EQ(first_line(usage_error({"canary", "start", "--steps", "0,100"})), "bgctl: --steps '0,100': " + order);
  EXPECT_EQ(first_line(usage_error({"canary", "start", "--steps", "10,10,100"})),
            "bgctl: --steps '10,10,100': " + order);
  EXPECT_EQ(first_line(usage_error({"canary", "start", "--steps", "10,x,100"})),
            "bgctl: --steps '10,x,100': 'x' is not a percentage between 0 and 100 with at most two decimals "
            "(e.g. 10,50,100)");
  EXPECT_EQ(first_line(usage_error({"canary", "start", "--steps", "10,,100"})),
            "bgctl: --steps '10,,100': '' is not a percentage between 0 and 100 with at most two decimals "
            "(e.g. 10,50,100)");
  EXPECT_EQ(first_line(usage_error({"canary", "start", "--steps", ""})), "bgctl: --steps '': empty (e.g. 10,50,100)");
  EXPECT_EQ(first_line(usage_error({"canary", "start", "--steps", "10,150"})),
            "bgctl: --steps '10,150': '150' is not a percentage between 0 and 100 with at most two decimals "
            "(e.g. 10,50,100)");
  const std::string interval = "bgctl: --interval must be a duration above 0 such as 500ms, 60s, 5m or 1h, not ";
  EXPECT_EQ(first_line(usage_error({"canary", "start", "--interval", "60"})), interval + "'60'");
  EXPECT_EQ(first_line(usage_error({"canary", "start", "--interval", "0s"})), interval + "'0s'");
  EXPECT_EQ(first_line(usage_error({"canary", "start", "--interval", "soon"})), interval + "'soon'");
  EXPECT_EQ(first_line(usage_error({"canary", "pause", "--steps", "10,100"})),
            "bgctl: --steps only goes with canary start");
  EXPECT_EQ(first_line(usage_error({"canary", "abort", "--interval", "5s"})),
            "bgctl: --interval only goes with canary start");
  EXPECT_EQ(first_line(usage_error({"canary", "resume", "--force"})), "bgctl: --force only goes with canary start");
}

TEST(BgctlUsage, BadHistoryLimit) {
  const std::string msg = "bgctl: --limit must be a whole number above 0, not ";
  EXPECT_EQ(first_line(usage_error({"history", "--limit", "0"})), msg + "'0'");
  EXPECT_EQ(first_line(usage_error({"history", "--limit", "-3"})), msg + "'-3'");
  EXPECT_EQ(first_line(usage_error({"history", "--limit", "ten"})), msg + "'ten'");
  EXPECT_EQ(first_line(usage_error({"history", "--limit", "5x"})), msg + "'5x'");
  EXPECT_EQ(first_line(usage_error({"history", "--limit", "99999999999"})), msg + "'99999999999'");
}

TEST(BgctlUsage, BadServer) {
  EXPECT_EQ(first_line(usage_error({"server"})),
            "bgctl: server needs an action and an address: enable|disable|drain ADDRESS");
  EXPECT_EQ(first_line(usage_error({"server", "kill", "127.0.0.1:5006"})),
            "bgctl: server action must be enable, disable or drain, not 'kill'");
  EXPECT_EQ(first_line(usage_error({"server", "drain"})),
            "bgctl: server drain needs the server's ADDRESS, e.g. 127.0.0.1:5006");
  EXPECT_EQ(first_line(usage_error({"server", "drain", "127.0.0.1"})),
            "bgctl: invalid server address '127.0.0.1' (expected host:port as in the config)");
  EXPECT_EQ(first_line(usage_error({"server", "drain", "127.0.0.1:99999"})),
            "bgctl: invalid server address '127.0.0.1:99999' (expected host:port as in the config)");
}

TEST(BgctlUsage, Cli11ErrorsAreUsageErrors) {
  // Unknown flags, missing values, extra arguments: CLI11 finds them; bgctl still exits 2.
  EXPECT_EQ(first_line(usage_error({"status", "--bogus"})).rfind("bgctl: ", 0), 0u);
  EXPECT_EQ(first_line(usage_error({"split", "--green"})).rfind("bgctl: ", 0), 0u);
  EXPECT_EQ(first_line(usage_error({"switch", "green", "blue"})).rfind("bgctl: ", 0), 0u);
  EXPECT_EQ(first_line(usage_error({"reload", "-s", "app"})).rfind("bgctl: ", 0), 0u);
  EXPECT_EQ(first_line(usage_error({"upgrade", "-s", "app"})).rfind("bgctl: ", 0), 0u);
  EXPECT_EQ(first_line(usage_error({"--bogus", "status"})).rfind("bgctl: ", 0), 0u);
  EXPECT_EQ(first_line(usage_error({"-S"})).rfind("bgctl: ", 0), 0u);
  EXPECT_EQ(first_line(usage_error({"split", "--green", "10", "--green", "20"})).rfind("bgctl: ", 0), 0u);
  EXPECT_EQ(first_line(usage_error({"status", "-S", ""})), "bgctl: -S needs a socket path");
}

TEST(BgctlHelp, ListsEveryCommandOfTheTable) {
  const std::string help = help_text();
  for (const auto& c : control::command_table()) {
    EXPECT_NE(help.find(std::string(c.usage)), std::string::npos) << c.name;
    EXPECT_NE(help.find(std::string(c.summary)), std::string::npos) << c.name;
  }
  EXPECT_NE(help.find("help [COMMAND]"), std::string::npos);
  EXPECT_NE(help.find("BGCTL_SOCKET"), std::string::npos);
  EXPECT_NE(help.find("exit codes"), std::string::npos);
}

TEST(BgctlHelp, HelpCommandAndFlags) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"help"}, {"-h"}, {"--help"}, {"-S", "/x", "--help"}}) {
    auto r = run(args);
    const auto& f = std::get<Finished>(r);
    EXPECT_EQ(f.exit_code, exit_ok);
    EXPECT_EQ(f.out, help_text());
    EXPECT_TRUE(f.err.empty());
  }
  for (const auto& args : std::vector<std::vector<std::string>>{{"help", "split"}, {"split", "--help"}, {"split", "-h", "--green", "x"}}) {
    auto r = run(args);
    const auto& f = std::get<Finished>(r);
    EXPECT_EQ(f.exit_code, exit_ok);
    EXPECT_EQ(first_line(f.out), "usage: bgctl [-S SOCKET] [--json] [--local] split --green N | --blue N [-s SERVICE] [--force]");
  }
}

TEST(BgctlHelp, EveryTableCommandIsKnownToBgctl) {
  // A command added to the table without bgctl support would be sendable but unbuildable.
  for (const auto& c : control::command_table()) {
    std::vector<std::string> args{std::string(c.name)};
    if (c.name == "split") args = {"split", "--green", "1"};
    if (c.name == "switch") args = {"switch", "blue"};
    if (c.name == "canary") args = {"canary", "pause"};
    if (c.name == "server") args = {"server", "enable", "h:1"};
    auto r = run(args);
    EXPECT_TRUE(std::holds_alternative<Invocation>(r)) << c.name << ": " << std::get<Finished>(r).err;
  }
}

// ----------------------------------------------------------------------- --local (a fleet)

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
  EXPECT_EQ(usage_line("rollback"), "usage: bgctl [-S SOCKET] [--json] [--local] rollback [-s SERVICE] [--drain]\n");
}

TEST(BgctlAnswerTimeout, LongerWhereTheProxyTakesLongerToAnswer) {
  // upgrade: the successor's 60 s to ask for the sockets and 60 s to say it serves, and a margin.
  EXPECT_EQ(answer_timeout("upgrade"), std::chrono::seconds(125));
  // release: 16 smoke requests of 5 s each at the most, then the canary's start.
  EXPECT_EQ(answer_timeout("release"), std::chrono::seconds(85));
  for (const char* c : {"status", "split", "switch", "rollback", "reload", "shadow", "history"})
    EXPECT_EQ(answer_timeout(c), std::chrono::seconds(5)) << c;
}

}  // namespace
}  // namespace bgproxy::bgctl
