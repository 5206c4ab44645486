// `bgctl status --watch` / `health --watch` (SPEC §15): which lines a pipe gets, and the flag on
// the command line.

#include "control/bgctl/watch.hpp"

#include <gtest/gtest.h>

#include "control/bgctl/cli.hpp"

namespace bgproxy::bgctl {
namespace {

using Lines = std::vector<std::string>;

TEST(BgctlWatch, TheFirstAnswerIsShownWhole) {
  EXPECT_EQ(changed_lines("", "service app\n  blue 100%\n"), (Lines{"service app", "  blue 100%"}));
}

TEST(BgctlWatch, OnlyLinesThatChangedAreShownAgain) {
  const std::string before = "service app\n  blue 100%\n  green 0%\n";
  EXPECT_EQ(changed_lines(before, before), Lines{});
  EXPECT_EQ(changed_lines(before, "service app\n  blue 50%\n  green 50%\n"), (Lines{"  blue 50%", "  green 50%"}));
  EXPECT_EQ(changed_lines(before, "service app\n  blue 100%\n  green 0%\n  phase idle\n"), (Lines{"  phase idle"}));
  // A line that appears in the middle does not make the lines below it new.
  EXPECT_EQ(changed_lines(before, "service app\n  reason: manual\n  blue 100%\n  green 0%\n"),
            (Lines{"  reason: manual"}));
  // Two equal lines where there was one: the second is new.
  EXPECT_EQ(changed_lines("a\n", "a\na\n"), (Lines{"a"}));
  EXPECT_EQ(changed_lines(before, "bgctl: cannot connect to /run/x: refused\n"),
            (Lines{"bgctl: cannot connect to /run/x: refused"}));
}

Invocation parsed(std::vector<std::string> args) {
  auto r = parse_command_line(args, std::nullopt);
  if (const auto* f = std::get_if<Finished>(&r)) {
    ADD_FAILURE() << "exit " << f->exit_code << ": " << f->err;
    return {};
  }
  return std::get<Invocation>(r);
}

TEST(BgctlWatch, StatusAndHealthTakeWatchOtherCommandsDoNot) {
  EXPECT_TRUE(parsed({"status", "--watch"}).watch);
  EXPECT_TRUE(parsed({"health", "-s", "app", "--watch"}).watch);
  EXPECT_FALSE(parsed({"status"}).watch);
  // The request sent is the plain one: watching is bgctl's business, not the proxy's.
  EXPECT_EQ(parsed({"status", "--watch"}).request, parsed({"status"}).request);
  auto r = parse_command_line({"split", "--green", "10", "--watch"}, std::nullopt);
  ASSERT_TRUE(std::holds_alternative<Finished>(r));
  EXPECT_EQ(std::get<Finished>(r).exit_code, exit_usage);
}

}  // namespace
}  // namespace bgproxy::bgctl
