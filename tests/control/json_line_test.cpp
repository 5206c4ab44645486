// One-line JSON text (control/core/json_line): doubles the plain way, NaN/inf as null,
// strings escaped, nested objects and arrays; every output parses back.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "control/core/json_line.hpp"

namespace bgproxy::control {
namespace {

namespace json = boost::json;

json::value parse(const std::string& text) {
  json::error_code ec;
  auto v = json::parse(text, ec);
  EXPECT_FALSE(ec) << ec.message() << ": " << text;
  return v;
}

TEST(JsonLine, WholeDoublesKeepOneDecimal) {
  EXPECT_EQ(to_line(70.0), "70.0");
  EXPECT_EQ(to_line(0.0), "0.0");
  EXPECT_EQ(to_line(100.0), "100.0");
  EXPECT_EQ(to_line(-3.0), "-3.0");
  EXPECT_EQ(to_line(123456789.0), "123456789.0");
}

TEST(JsonLine, FractionalDoublesPlain) {
  EXPECT_EQ(to_line(12.5), "12.5");
  EXPECT_EQ(to_line(0.213), "0.213");
  EXPECT_EQ(to_line(0.004), "0.004");
  EXPECT_EQ(to_line(87.66), "87.66");
  EXPECT_EQ(to_line(-0.05), "-0.05");
  EXPECT_EQ(to_line(0.1 + 0.2), "0.3");
}

TEST(JsonLine, NonFiniteIsNull) {
  EXPECT_EQ(to_line(std::numeric_limits<double>::quiet_NaN()), "null");
  EXPECT_EQ(to_line(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(to_line(-std::numeric_limits<double>::infinity()), "null");
  json::object o{{"p95_seconds", std::nan("")}, {"rps", 1.5}};
  EXPECT_EQ(to_line(o), R"({"p95_seconds":null,"rps":1.5})");
}

TEST(JsonLine, ExtremeDoublesStayValidJson) {
  for (double d : {1e15, 1e20, -1e300, 1e-7, 2.5e-12, std::numeric_limits<double>::denorm_min()}) {
    const std::string text = to_line(d);
    const auto v = parse(text);
    ASSERT_TRUE(v.is_number()) << text;
    EXPECT_NEAR(v.to_number<double>() / d, 1.0, 1e-9) << text;
  }
}

TEST(JsonLine, IntegersBoolsNull) {
  EXPECT_EQ(to_line(json::value(std::int64_t{-5})), "-5");
  EXPECT_EQ(to_line(json::value(std::int64_t{0})), "0");
  EXPECT_EQ(to_line(json::value(std::numeric_limits<std::uint64_t>::max())), "18446744073709551615");
  EXPECT_EQ(to_line(json::value(std::numeric_limits<std::int64_t>::min())), "-9223372036854775808");
  EXPECT_EQ(to_line(true), "true");
  EXPECT_EQ(to_line(false), "false");
  EXPECT_EQ(to_line(nullptr), "null");
}

TEST(JsonLine, StringsEscaped) {
  EXPECT_EQ(to_line("plain"), R"("plain")");
  EXPECT_EQ(to_line("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(to_line("line\nbreak\ttab"), R"("line\nbreak\ttab")");
  EXPECT_EQ(to_line(json::string("\x01")), R"("\u0001")");
  EXPECT_EQ(to_line(""), R"("")");
  const std::string utf8 = "caf\xc3\xa9 \xe2\x86\x92";
  EXPECT_EQ(parse(to_line(json::string(utf8))).as_string(), utf8);
}

TEST(JsonLine, KeysEscaped) {
  json::object o{{"we\"ird\nkey", 1}};
  const std::string text = to_line(o);
  EXPECT_EQ(text, R"({"we\"ird\nkey":1})");
  EXPECT_EQ(parse(text).as_object().at("we\"ird\nkey").as_int64(), 1);
}

TEST(JsonLine, NestedObjectsAndArrays) {
  json::object o{{"ok", true},
                 {"services", json::array{json::object{{"name", "app"},
                                                      {"weights", json::object{{"blue", 70.0}, {"green", 30.0}}},
                                                      {"target", nullptr},
                                                      {"steps", json::array{10, 50, 100}}}}},
                 {"empty_o", json::object{}},
                 {"empty_a", json::array{}},
                 {"mixed", json::array{1, 2.5, "x", json::array{json::array{}}, false}}};
  const std::string text = to_line(o);
  EXPECT_EQ(text,
            R"({"ok":true,"services":[{"name":"app","weights":{"blue":70.0,"green":30.0},"target":null,)"
            R"("steps":[10,50,100]}],"empty_o":{},"empty_a":[],"mixed":[1,2.5,"x",[[]],false]})");
  EXPECT_EQ(text.find('\n'), std::string::npos);
  const auto v = parse(text);
  EXPECT_EQ(v.at("services").at(0).at("weights").at("blue").as_double(), 70.0);
  EXPECT_EQ(v.at("mixed").at(1).as_double(), 2.5);
}

TEST(JsonLine, KeyOrderIsInsertionOrder) {
  json::object o;
  o["z"] = 1;
  o["a"] = 2;
  o["m"] = 3;
  EXPECT_EQ(to_line(o), R"({"z":1,"a":2,"m":3})");
}

}  // namespace
}  // namespace bgproxy::control
