// shadow::compare (SPEC §14): status, headers, bodies as bytes or JSON leaf by leaf, ignore.
#include <string>

#include <gtest/gtest.h>

#include "bgproxy/shadow/compare.hpp"

namespace bgproxy::shadow {
namespace {

Answer json_answer(std::string body) {
  Answer a;
  a.status = 200;
  a.headers = {{"content-type", "application/json"}};
  a.body = std::move(body);
  return a;
}

config::ShadowCompare defaults() { return {}; }

std::vector<std::string> fields_of(const PairResult& r) {
  std::vector<std::string> out;
  for (const auto& d : r.differences) out.push_back(d.field);
  return out;
}

TEST(ShadowCompare, EqualAnswersCompareStatusHeaderAndEveryLeaf) {
  const auto a = json_answer(R"({"id":7,"user":{"name":"ann"}})");
  const auto r = compare(a, a, defaults());
  EXPECT_TRUE(r.differences.empty());
  EXPECT_EQ(r.compared, (std::vector<std::string>{"status", "header:content-type", "$.id", "$.user.name"}));
}

TEST(ShadowCompare, StatusDiffersWithBothValues) {
  auto a = json_answer("{}");
  auto b = a;
  b.status = 503;
  const auto r = compare(a, b, defaults());
  ASSERT_EQ(r.differences.size(), 1u);
  EXPECT_EQ(r.differences[0].field, "status");
  EXPECT_EQ(r.differences[0].primary, "200");
  EXPECT_EQ(r.differences[0].shadow, "503");
}

TEST(ShadowCompare, StatusLeftOutWhenNotConfigured) {
  auto a = json_answer("{}");
  auto b = a;
  b.status = 503;
  auto cfg = defaults();
  cfg.status = false;
  const auto r = compare(a, b, cfg);
  EXPECT_TRUE(r.differences.empty());
  EXPECT_EQ(r.compared, (std::vector<std::string>{"header:content-type", "$"}));
}

TEST(ShadowCompare, HeaderMissingOnOneSideDiffersAsAbsent) {
  auto a = json_answer("{}");
  auto b = a;
  b.headers.clear();
  const auto r = compare(a, b, defaults());
  ASSERT_EQ(r.differences.size(), 1u);
  EXPECT_EQ(r.differences[0].field, "header:content-type");
  EXPECT_EQ(r.differences[0].primary, "application/json");
  EXPECT_EQ(r.differences[0].shadow, "(absent)");
}

TEST(ShadowCompare, RepeatedHeaderFieldsJoinAsAList) {
  Answer a;
  a.status = 200;
  a.headers = {{"vary", "accept"}, {"vary", "origin"}};
  Answer b = a;
  b.headers = {{"vary", "accept, origin"}};
  config::ShadowCompare cfg;
  cfg.headers = {"vary"};
  EXPECT_TRUE(compare(a, b, cfg).differences.empty());
}

TEST(ShadowCompare, IgnoredHeaderIsNotCompared) {
  auto a = json_answer("{}");
  auto b = a;
  b.headers = {{"content-type", "text/html"}};
  auto cfg = defaults();
  cfg.ignore = {"content-type"};
  const auto r = compare(a, b, cfg);
  EXPECT_TRUE(r.differences.empty());
  EXPECT_EQ(r.compared, (std::vector<std::string>{"status", "$"}));
}

TEST(ShadowCompare, JsonLeavesByPathWithArrayIndexes) {
  const auto a = json_answer(R"({"items":[{"id":1,"price":9.5},{"id":2,"price":3}],"total":2})");
  const auto b = json_answer(R"({"total":2,"items":[{"id":1,"price":9.75},{"id":2,"price":3}]})");
  const auto r = compare(a, b, defaults());
  ASSERT_EQ(r.differences.size(), 1u);
  EXPECT_EQ(r.differences[0].field, "$.items[0].price");
  EXPECT_EQ(r.differences[0].primary, "9.5");
  EXPECT_EQ(r.differences[0].shadow, "9.75");
  EXPECT_EQ(r.compared.size(), 2u + 5u);  // status, header, five leaves
}

TEST(ShadowCompare, IntegerAndFloatOfTheSameValueAreEqual) {
  EXPECT_TRUE(compare(json_answer(R"({"n":1})"), json_answer(R"({"n":1.0})"), defaults()).differences.empty());
}

TEST(ShadowCompare, PathOnOneSideOnlyDiffers) {
  const auto r = compare(json_answer(R"({"a":{"b":1}})"), json_answer(R"({"a":{"b":1,"c":"new"}})"), defaults());
  ASSERT_EQ(r.differences.size(), 1u);
  EXPECT_EQ(r.differences[0].field, "$.a.c");
  EXPECT_EQ(r.differences[0].primary, "(absent)");
  EXPECT_EQ(r.differences[0].shadow, "\"new\"");
}

TEST(ShadowCompare, ShorterArrayLeavesTheExtraIndexesOnOneSide) {
  const auto r = compare(json_answer(R"([1,2,3])"), json_answer(R"([1,2])"), defaults());
  EXPECT_EQ(fields_of(r), (std::vector<std::string>{"$[2]"}));
}

TEST(ShadowCompare, EmptyObjectAndEmptyArrayDiffer) {
  const auto r = compare(json_answer(R"({"a":{}})"), json_answer(R"({"a":[]})"), defaults());
  ASSERT_EQ(r.differences.size(), 1u);
  EXPECT_EQ(r.differences[0].field, "$.a");
  EXPECT_EQ(r.differences[0].primary, "{}");
  EXPECT_EQ(r.differences[0].shadow, "[]");
}

TEST(ShadowCompare, IgnoredJsonPathsWithWildcardAndSubtree) {
  const auto a = json_answer(R"({"ts":1,"items":[{"id":1,"at":5},{"id":2,"at":6}],"meta":{"took":3,"host":"a"}})");
  const auto b = json_answer(R"({"ts":2,"items":[{"id":1,"at":7},{"id":3,"at":8}],"meta":{"took":4,"host":"b"}})");
  auto cfg = defaults();
  cfg.ignore = {"$.ts", "$.items[*].at", "$.meta"};
  const auto r = compare(a, b, cfg);
  EXPECT_EQ(fields_of(r), (std::vector<std::string>{"$.items[1].id"}));
  EXPECT_EQ(r.compared, (std::vector<std::string>{"status", "header:content-type", "$.items[0].id", "$.items[1].id"}));
}

TEST(ShadowCompare, IgnoreOfAPathDoesNotCoverALongerKey) {
  auto cfg = defaults();
  cfg.ignore = {"$.ts"};
  const auto r = compare(json_answer(R"({"tsx":1})"), json_answer(R"({"tsx":2})"), cfg);
  EXPECT_EQ(fields_of(r), (std::vector<std::string>{"$.tsx"}));
}

TEST(ShadowCompare, NonJsonBodiesCompareAsBytes) {
  Answer a;
  a.status = 200;
  a.body = "hello blue";
  Answer b = a;
  b.body = "hello green";
  config::ShadowCompare cfg;
  cfg.headers.clear();
  const auto r = compare(a, b, cfg);
  EXPECT_EQ(r.compared, (std::vector<std::string>{"status", "body"}));
  ASSERT_EQ(r.differences.size(), 1u);
  EXPECT_EQ(r.differences[0].primary, "hello blue");
  EXPECT_EQ(r.differences[0].shadow, "hello green");
}

TEST(ShadowCompare, OneSideJsonTheOtherNotComparesAsBytes) {
  const auto r = compare(json_answer(R"({"a":1})"), json_answer("<html>"), defaults());
  EXPECT_EQ(fields_of(r), (std::vector<std::string>{"body"}));
}

TEST(ShadowCompare, CutBodiesCompareAsBytesEvenWhenJson) {
  auto a = json_answer(R"({"a":1})");
  a.body_cut = true;
  auto b = a;
  const auto r = compare(a, b, defaults());
  EXPECT_TRUE(r.differences.empty());
  EXPECT_EQ(r.compared.back(), "body");
  b.body_cut = false;
  EXPECT_EQ(fields_of(compare(a, b, defaults())), (std::vector<std::string>{"body"}));
}

TEST(ShadowCompare, BodiesCutAtDifferentLengthsCompareWhatIsKnownOfBoth) {
  Answer a;
  a.status = 200;
  a.body = std::string(1000, 'x');
  a.body_cut = true;
  Answer b = a;
  b.body.resize(700);  // cut shorter: the same as far as both are known
  config::ShadowCompare cfg;
  cfg.headers.clear();
  EXPECT_TRUE(compare(a, b, cfg).differences.empty());
  b.body[10] = 'y';  // the known prefixes differ
  EXPECT_EQ(fields_of(compare(a, b, cfg)), (std::vector<std::string>{"body"}));
  // A whole body of 700 bytes next to one known to be longer than 1,000.
  b.body = std::string(700, 'x');
  b.body_cut = false;
  EXPECT_EQ(fields_of(compare(a, b, cfg)), (std::vector<std::string>{"body"}));
  // A whole body of 1,200 bytes whose first 1,000 are those of the cut one: nothing known differs.
  b.body = std::string(1200, 'x');
  EXPECT_TRUE(compare(a, b, cfg).differences.empty());
  EXPECT_TRUE(compare(b, a, cfg).differences.empty());
}

TEST(ShadowCompare, BodyNotComparedWhenOff) {
  auto cfg = defaults();
  cfg.body = false;
  const auto r = compare(json_answer("1"), json_answer("2"), cfg);
  EXPECT_TRUE(r.differences.empty());
  EXPECT_EQ(r.compared, (std::vector<std::string>{"status", "header:content-type"}));
}

TEST(ShadowCompare, LongValuesAreCutTo60BytesAroundTheFirstDifference) {
  Answer a;
  a.status = 200;
  a.body = std::string(200, 'x') + "BLUE" + std::string(100, 'y');
  Answer b = a;
  b.body = std::string(200, 'x') + "GREEN" + std::string(100, 'y');
  config::ShadowCompare cfg;
  cfg.headers.clear();
  const auto r = compare(a, b, cfg);
  ASSERT_EQ(r.differences.size(), 1u);
  EXPECT_EQ(r.differences[0].primary, "..." + std::string(20, 'x') + "BLUE" + std::string(36, 'y') + "...");
  EXPECT_EQ(r.differences[0].shadow, "..." + std::string(20, 'x') + "GREEN" + std::string(35, 'y') + "...");

  const auto j = compare(json_answer(R"({"s":")" + std::string(100, 'a') + R"("})"),
                         json_answer(R"({"s":"b"})"), defaults());
  ASSERT_EQ(j.differences.size(), 1u);
  EXPECT_EQ(j.differences[0].primary, "\"" + std::string(59, 'a') + "...");
}

}  // namespace
}  // namespace bgproxy::shadow
