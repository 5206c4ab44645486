// User text in one-line messages: quoted, escaped, cut short on a code-point boundary.
#include <string>

#include <gtest/gtest.h>

#include "bgproxy/text/quote.hpp"

namespace bgproxy::text {
namespace {

TEST(Quote, PlainTextBetweenMarks) {
  EXPECT_EQ(quote("app"), "\"app\"");
  EXPECT_EQ(quote(""), "\"\"");
  EXPECT_EQ(quote("app", {.mark = '\''}), "'app'");
  EXPECT_EQ(quote("ünïcødé ☃"), "\"ünïcødé ☃\"");
}

TEST(Quote, KeepsTheMessageOneUnambiguousLine) {
  EXPECT_EQ(quote("a\tb\nc\rd"), "\"a\\tb\\nc\\rd\"");
  EXPECT_EQ(quote(std::string("a\0b", 3)), "\"a\\x00b\"");
  EXPECT_EQ(quote("\x1b[2J\x7f"), "\"\\x1b[2J\\x7f\"");
  EXPECT_EQ(quote("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
  // Only the mark in use is escaped.
  EXPECT_EQ(quote("it's \"x\"", {.mark = '\''}), "'it\\'s \"x\"'");
}

TEST(Quote, CutsLongTextWithDotsInsideTheMarks) {
  EXPECT_EQ(quote(std::string(40, 'z')), "\"" + std::string(40, 'z') + "\"");
  EXPECT_EQ(quote(std::string(41, 'z')), "\"" + std::string(40, 'z') + "...\"");
  EXPECT_EQ(quote(std::string(100, 'x'), {.max_bytes = 80}), "\"" + std::string(80, 'x') + "...\"");
  EXPECT_EQ(quote("abc", {.max_bytes = 0}), "\"...\"");
}

TEST(Quote, NeverSplitsAUtf8Sequence) {
  // 39 ASCII bytes then a 2-byte "é": byte 40 is inside it, so the cut falls before it.
  EXPECT_EQ(quote(std::string(39, 'a') + "\xc3\xa9tail"), "\"" + std::string(39, 'a') + "...\"");
  // A 3-byte snowman straddling the limit.
  EXPECT_EQ(quote(std::string(38, 'a') + "\xe2\x98\x83tail"), "\"" + std::string(38, 'a') + "...\"");
  EXPECT_EQ(quote(std::string(37, 'a') + "\xe2\x98\x83tail"), "\"" + std::string(37, 'a') + "\xe2\x98\x83...\"");
}

TEST(Quote, EscapesCountAfterTheCut) {
  // The limit is on the text shown, not on its escaped form.
  std::string expected = "\"";
  for (int i = 0; i < 40; ++i) expected += "\\n";
  expected += "...\"";
  EXPECT_EQ(quote(std::string(45, '\n')), expected);
}

}  // namespace
}  // namespace bgproxy::text
