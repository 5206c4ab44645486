// H2Stream::take_response: the session's HTTP/1.1 answer, however its writes cut it, becomes the
// same HTTP/2 head (fields as the link sees them at response_head) and the same payload.
#include "proxy/h2/h2_stream.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

/// Records what a connection would send: the head's fields when it is complete, then payload.
class RecordingLink final : public H2Link {
 public:
  void request_consumed(H2Stream&, std::size_t) override {}
  void response_head(H2Stream& s) override {
    ++heads;
    status = s.response_head.result_int();
    for (const auto& f : s.response_head) fields.emplace_back(f.name_string(), f.value());
  }
  void response_data(H2Stream& s) override {
    while (s.out.pending() != 0) {
      const auto span = s.out.next(16384);
      payload.append(span);
      s.out.release(s.out.frame(span.size()));
    }
    done = s.out_done;
  }
  void abandon(H2Stream&) override {}

  int heads = 0;
  unsigned status = 0;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string payload;
  bool done = false;
};

constexpr std::string_view answer =
    "HTTP/1.1 100 Continue\r\n\r\n"
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: bg_id=1; Path=/\r\nContent-Length: 11\r\n"
    "X-Bg-Color: blue\r\n\r\nhello world";

TEST(H2Stream, AnAnswerCutAtEveryByteGivesTheSameHeadAndPayload) {
  boost::asio::io_context io;
  BlockPool blocks{4};
  for (std::size_t cut = 0; cut <= answer.size(); ++cut) {
    RecordingLink link;
    auto s = std::make_shared<H2Stream>(link, 1, io.get_executor(), blocks);
    // Each piece lives only during its call, as the session's write buffer does.
    ASSERT_TRUE(s->take_response(std::string(answer.substr(0, cut)))) << cut;
    ASSERT_TRUE(s->take_response(std::string(answer.substr(cut)))) << cut;
    EXPECT_EQ(link.heads, 1) << cut;
    EXPECT_EQ(link.status, 200u) << cut;
    const std::vector<std::pair<std::string, std::string>> expected{{"Content-Type", "text/plain"},
                                                                    {"Set-Cookie", "bg_id=1; Path=/"},
                                                                    {"Content-Length", "11"},
                                                                    {"X-Bg-Color", "blue"}};
    EXPECT_EQ(link.fields, expected) << cut;
    EXPECT_EQ(link.payload, "hello world") << cut;
    EXPECT_TRUE(link.done) << cut;
  }
}

TEST(H2Stream, AHeadThatNeverEndsIsRefusedPastItsLimit) {
  boost::asio::io_context io;
  BlockPool blocks{4};
  RecordingLink link;
  auto s = std::make_shared<H2Stream>(link, 1, io.get_executor(), blocks);
  ASSERT_TRUE(s->take_response("HTTP/1.1 200 OK\r\n"));
  const std::string field = "X-Filler: " + std::string(1000, 'x') + "\r\n";
  bool ok = true;
  for (int i = 0; i < 100 && ok; ++i) ok = s->take_response(field);
  EXPECT_FALSE(ok);
  EXPECT_EQ(link.heads, 0);
}

}  // namespace
}  // namespace bgproxy::proxy
