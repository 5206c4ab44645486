#include "proxy/http/chunked_scanner.hpp"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace bgproxy::proxy {
namespace {

using namespace std::string_literals;

/// Collects the payload bytes the scanner points at; `input` must be set to the
/// view passed to the scan the offsets refer to.
struct Dechunker final : ChunkedScanner::PayloadSink {
  std::string_view input;
  std::string payload;
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  void on_payload(std::size_t offset, std::size_t size) override {
    spans.emplace_back(offset, size);
    payload.append(input.substr(offset, size));
  }
};

struct Outcome {
  std::size_t consumed = 0;  // absolute, over the whole input
  bool done = false;
  bool error = false;
  std::string payload;
  std::uint64_t payload_bytes = 0;
};

Outcome scan_pieces(std::string_view in, const std::vector<std::size_t>& cuts) {
  ChunkedScanner s;
  Dechunker sink;
  Outcome o;
  std::size_t start = 0;
  std::vector<std::size_t> bounds = cuts;
  bounds.push_back(in.size());
  for (const auto end : bounds) {
    sink.input = in.substr(start, end - start);
    const auto r = s.scan(sink.input, &sink);
    o.consumed += r.consumed;
    if (r.error) {
      o.error = true;
      break;
    }
    if (r.done) {
      o.done = true;
      break;
    }
    // Not done and no error: every byte offered belongs to the body.
    EXPECT_EQ(r.consumed, sink.input.size()) << "piece at " << start;
    start = end;
  }
  o.payload = sink.payload;
  o.payload_bytes = s.payload_bytes();
  return o;
}

Outcome scan_once(std::string_view in) { return scan_pieces(in, {}); }

ChunkedScanner::Result scan_plain(std::string_view in) {
  ChunkedScanner s;
  return s.scan(in);
}

constexpr std::string_view next_request = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";

// ------------------------------------------------------------------ valid bodies

TEST(ChunkedScanner, SingleChunk) {
  const std::string body = "5\r\nhello\r\n0\r\n\r\n";
  const auto o = scan_once(body);
  EXPECT_FALSE(o.error);
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.consumed, body.size());
  EXPECT_EQ(o.payload, "hello");
  EXPECT_EQ(o.payload_bytes, 5u);
}

TEST(ChunkedScanner, EmptyBodyIsJustTheLastChunk) {
  const auto o = scan_once("0\r\n\r\n");
  EXPECT_TRUE(o.done);
  EXPECT_FALSE(o.error);
  EXPECT_EQ(o.consumed, 5u);
  EXPECT_EQ(o.payload, "");
  EXPECT_EQ(o.payload_bytes, 0u);
}

TEST(ChunkedScanner, SeveralChunksUpperAndLowerHex) {
  const std::string body = "3\r\nabc\r\na\r\n0123456789\r\nB\r\nABCDEFGHIJK\r\n0\r\n\r\n";
  const auto o = scan_once(body);
  EXPECT_TRUE(o.done);
  EXPECT_FALSE(o.error);
  EXPECT_EQ(o.consumed, body.size());
  EXPECT_EQ(o.payload, "abc0123456789ABCDEFGHIJK");
  EXPECT_EQ(o.payload_bytes, 3u + 10u + 11u);
}

TEST(ChunkedScanner, LeadingZerosInSize) {
  const auto o = scan_once("0003\r\nabc\r\n000\r\n\r\n");
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.payload, "abc");
}

TEST(ChunkedScanner, ExtensionsAreSkipped) {
  const std::string body = "4;name=value;flag\r\nwxyz\r\n2 ; q=\"a b\"\r\nhi\r\n0;last\r\n\r\n";
  const auto o = scan_once(body);
  EXPECT_FALSE(o.error);
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.consumed, body.size());
  EXPECT_EQ(o.payload, "wxyzhi");
}

TEST(ChunkedScanner, TabInExtensionIsAllowed) {
  const std::string body = "1;a=\tb\r\nx\r\n0\r\n\r\n";
  const auto o = scan_once(body);
  EXPECT_FALSE(o.error);
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.consumed, body.size());
}

TEST(ChunkedScanner, WhitespaceAfterSizeIsAllowed) {
  // BWS before ';' (RFC 9112 §7.1.1); the scanner also accepts it before CRLF.
  const std::string body = "2 \t;e\r\nok\r\n1 \r\n!\r\n0\r\n\r\n";
  const auto o = scan_once(body);
  EXPECT_FALSE(o.error);
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.payload, "ok!");
}

TEST(ChunkedScanner, Trailers) {
  const std::string body = "2\r\nab\r\n0\r\nX-Checksum: 1234\r\nX-Other: v\r\n\r\n";
  const auto o = scan_once(body);
  EXPECT_FALSE(o.error);
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.consumed, body.size());
  EXPECT_EQ(o.payload, "ab");
}

TEST(ChunkedScanner, BinaryPayloadWithCrLfInside) {
  const std::string body = "6\r\n\r\n0\r\n\0\r\n0\r\n\r\n"s;
  const auto o = scan_once(body);
  EXPECT_TRUE(o.done);
  EXPECT_EQ(o.consumed, body.size());
  EXPECT_EQ(o.payload, "\r\n0\r\n\0"s);
}

TEST(ChunkedScanner, BytesAfterTheEndAreNotConsumed) {
  const std::string body = "3\r\nabc\r\n0\r\nT: v\r\n\r\n";
  const std::string in = body + std::string(next_request);
  ChunkedScanner s;
  const auto r = s.scan(in);
  EXPECT_TRUE(r.done);
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.consumed, body.size());
  EXPECT_EQ(std::string_view(in).substr(r.consumed), next_request);

  // Once done, nothing more is taken.
  const auto again = s.scan(next_request);
  EXPECT_TRUE(again.done);
  EXPECT_FALSE(again.error);
  EXPECT_EQ(again.consumed, 0u);
}

TEST(ChunkedScanner, EmptyInputConsumesNothing) {
  ChunkedScanner s;
  const auto r = s.scan({});
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_FALSE(r.done);
  EXPECT_FALSE(r.error);
}

TEST(ChunkedScanner, IncompleteBodyTakesEverythingOffered) {
  ChunkedScanner s;
  const auto r = s.scan("a\r\n01234");
  EXPECT_EQ(r.consumed, 8u);
  EXPECT_FALSE(r.done);
  EXPECT_FALSE(r.error);
  EXPECT_EQ(s.payload_bytes(), 10u);  // counted when the size line ends
  const auto r2 = s.scan("56789\r\n0\r\n\r");
  EXPECT_EQ(r2.consumed, 11u);
  EXPECT_FALSE(r2.done);
  const auto r3 = s.scan("\nNEXT");
  EXPECT_EQ(r3.consumed, 1u);
  EXPECT_TRUE(r3.done);
}

TEST(ChunkedScanner, PayloadBytesCountsAnnouncedSizes) {
  ChunkedScanner s;
  EXPECT_EQ(s.payload_bytes(), 0u);
  s.scan("10\r\n");
  EXPECT_EQ(s.payload_bytes(), 16u);
  s.scan("0123456789abcdef\r\n20;x\r\n");
  EXPECT_EQ(s.payload_bytes(), 48u);
}

TEST(ChunkedScanner, SixteenHexDigitsIsTheLargestSize) {
  ChunkedScanner s;
  const auto r = s.scan("FFFFFFFFFFFFFFFF\r\nabc");
  EXPECT_FALSE(r.error);
  EXPECT_FALSE(r.done);
  EXPECT_EQ(r.consumed, 21u);
  EXPECT_EQ(s.payload_bytes(), std::numeric_limits<std::uint64_t>::max());
}

TEST(ChunkedScanner, PayloadSinkOffsetsAreRelativeToEachInput) {
  ChunkedScanner s;
  Dechunker sink;
  sink.input = "3\r\nab";
  s.scan(sink.input, &sink);
  ASSERT_EQ(sink.spans.size(), 1u);
  EXPECT_EQ(sink.spans[0], (std::pair<std::size_t, std::size_t>{3, 2}));
  sink.input = "c\r\n2;e\r\nde\r\n0\r\n\r\n";
  s.scan(sink.input, &sink);
  ASSERT_EQ(sink.spans.size(), 3u);
  EXPECT_EQ(sink.spans[1], (std::pair<std::size_t, std::size_t>{0, 1}));
  EXPECT_EQ(sink.spans[2], (std::pair<std::size_t, std::size_t>{8, 2}));
  EXPECT_EQ(sink.payload, "abcde");
}

TEST(ChunkedScanner, ResetStartsAFreshBody) {
  ChunkedScanner s;
  ASSERT_TRUE(s.scan("2\r\nab\r\n0\r\n\r\n").done);
  EXPECT_EQ(s.payload_bytes(), 2u);
  s.reset();
  EXPECT_EQ(s.payload_bytes(), 0u);
  const auto r = s.scan("1\r\nz\r\n0\r\n\r\n");
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, 11u);
  EXPECT_EQ(s.payload_bytes(), 1u);

  // Reset in the middle of a size line forgets the digits seen.
  s.reset();
  s.scan("FFFFFFFF");
  s.reset();
  const auto r2 = s.scan("FFFFFFFFFFFFFFFF\r\n");
  EXPECT_FALSE(r2.error);
  EXPECT_EQ(s.payload_bytes(), std::numeric_limits<std::uint64_t>::max());
}

TEST(ChunkedScanner, ResetAfterError) {
  ChunkedScanner s;
  ASSERT_TRUE(s.scan("zz").error);
  s.reset();
  const auto r = s.scan("0\r\n\r\n");
  EXPECT_FALSE(r.error);
  EXPECT_TRUE(r.done);
}

// --------------------------------------------------- split at every byte boundary

const std::vector<std::string>& valid_bodies() {
  static const std::vector<std::string> bodies = {
      "0\r\n\r\n",
      "5\r\nhello\r\n0\r\n\r\n",
      "3;a=b\r\nabc\r\n1A ; x=\"q\"\r\n01234567890123456789012345\r\n0;end\r\nT1: a\r\nT2:\tb\r\n\r\n",
      "1\r\n\r\r\n2\r\n\n\n\r\n0 \r\n\r\n",
  };
  return bodies;
}

TEST(ChunkedScanner, OneByteAtATimeMatchesOneShot) {
  for (const auto& body : valid_bodies()) {
    const std::string in = body + std::string(next_request);
    const auto whole = scan_once(in);
    ASSERT_TRUE(whole.done) << body;
    ASSERT_EQ(whole.consumed, body.size());

    ChunkedScanner s;
    Dechunker sink;
    std::size_t consumed = 0;
    bool done = false;
    for (std::size_t i = 0; i < in.size(); ++i) {
      sink.input = std::string_view(in).substr(i, 1);
      const auto r = s.scan(sink.input, &sink);
      ASSERT_FALSE(r.error) << body << " at " << i;
      consumed += r.consumed;
      if (done) {
        EXPECT_EQ(r.consumed, 0u) << body << " at " << i;
        EXPECT_TRUE(r.done);
        continue;
      }
      EXPECT_EQ(r.consumed, 1u) << body << " at " << i;
      EXPECT_EQ(r.done, i + 1 == body.size()) << body << " at " << i;
      done = r.done;
    }
    EXPECT_TRUE(done) << body;
    EXPECT_EQ(consumed, whole.consumed) << body;
    EXPECT_EQ(sink.payload, whole.payload) << body;
    EXPECT_EQ(s.payload_bytes(), whole.payload_bytes) << body;
  }
}

TEST(ChunkedScanner, EveryTwoWaySplitMatchesOneShot) {
  for (const auto& body : valid_bodies()) {
    const std::string in = body + std::string(next_request);
    const auto whole = scan_once(in);
    for (std::size_t cut = 0; cut <= in.size(); ++cut) {
      const auto split = scan_pieces(in, {cut});
      EXPECT_EQ(split.consumed, whole.consumed) << body << " cut " << cut;
      EXPECT_EQ(split.done, whole.done) << body << " cut " << cut;
      EXPECT_FALSE(split.error) << body << " cut " << cut;
      EXPECT_EQ(split.payload, whole.payload) << body << " cut " << cut;
      EXPECT_EQ(split.payload_bytes, whole.payload_bytes) << body << " cut " << cut;
    }
  }
}

TEST(ChunkedScanner, ErrorsAreFoundAtTheSameOffsetWhateverTheSplit) {
  const std::vector<std::pair<std::string, std::size_t>> bad = {
      {"5\r\nhelloX\r\n0\r\n\r\n", 8},
      {"2\r\nab\r\n0\r\nT: v\r\n folded\r\n\r\n", 16},
      {"3;a\x01\r\nabc\r\n0\r\n\r\n", 3},
      {"10000000000000000\r\n", 16},
  };
  for (const auto& [in, offset] : bad) {
    const auto whole = scan_once(in);
    ASSERT_TRUE(whole.error) << in;
    ASSERT_EQ(whole.consumed, offset) << in;
    for (std::size_t cut = 0; cut <= in.size(); ++cut) {
      const auto split = scan_pieces(in, {cut});
      EXPECT_TRUE(split.error) << in << " cut " << cut;
      EXPECT_EQ(split.consumed, offset) << in << " cut " << cut;
    }
    std::vector<std::size_t> every;
    for (std::size_t i = 1; i < in.size(); ++i) every.push_back(i);
    const auto bytewise = scan_pieces(in, every);
    EXPECT_TRUE(bytewise.error) << in;
    EXPECT_EQ(bytewise.consumed, offset) << in;
  }
}

// ------------------------------------------------------------------------ errors

struct BadCase {
  const char* what;
  std::string input;
  std::size_t consumed;  // where the offending byte is
};

TEST(ChunkedScanner, MalformedFramingIsRejected) {
  const std::vector<BadCase> cases = {
      {"non-hex size", "g\r\n", 0},
      {"non-hex after digits", "1g\r\n", 1},
      {"empty size line", "\r\n", 0},
      {"empty size line after a chunk", "1\r\na\r\n\r\n", 6},
      {"0x prefix", "0x10\r\n", 1},
      {"negative", "-1\r\n", 0},
      {"plus sign", "+1\r\n", 0},
      {"space before size", " 1\r\n", 0},
      {"tab before size", "\t1\r\n", 0},
      {"space inside size", "1 0\r\n", 2},
      {"17 hex digits", "11111111111111111\r\n", 16},
      {"17 digits with leading zeros", "00000000000000001\r\n", 16},
      {"bare LF after size", "3\nabc\r\n0\r\n\r\n", 1},
      {"bare LF after extension", "3;e\nabc\r\n", 3},
      {"CR not followed by LF after size", "3\rabc\r\n", 2},
      {"data longer than size", "3\r\nabcd\r\n", 6},
      {"missing CRLF after data", "3\r\nabc0\r\n\r\n", 6},
      {"CR without LF after data", "3\r\nabc\rX", 7},
      {"bare LF after data", "3\r\nabc\n0\r\n\r\n", 6},
      {"bare LF ends trailers", "0\r\n\n", 3},
      {"bare LF ends a trailer line", "0\r\nT: v\n\r\n", 7},
      {"CR without LF after trailer line", "0\r\nT: v\rX", 8},
      {"CR without LF at the end", "0\r\n\rX", 4},
      {"obs-fold with SP in trailers", "0\r\nA: b\r\n c\r\n\r\n", 9},
      {"obs-fold with HTAB in trailers", "0\r\nA: b\r\n\tc\r\n\r\n", 9},
      {"trailer section starting with SP", "0\r\n X: y\r\n\r\n", 3},
      {"NUL in extension", "1;a\0b\r\nx\r\n0\r\n\r\n"s, 3},
      {"control char in extension", "1;a=\x1b\r\nx\r\n", 4},
      {"unit separator in extension", "1;\x1f\r\nx\r\n", 2},
      {"size chars after whitespace", "1 a\r\n", 2},
  };
  for (const auto& c : cases) {
    const auto r = scan_plain(c.input);
    EXPECT_TRUE(r.error) << c.what;
    EXPECT_FALSE(r.done) << c.what;
    EXPECT_EQ(r.consumed, c.consumed) << c.what;
  }
}

TEST(ChunkedScanner, ExtensionLineLimit) {
  const std::string ok = "1;" + std::string(8192, 'e') + "\r\nx\r\n0\r\n\r\n";
  const auto r = scan_plain(ok);
  EXPECT_FALSE(r.error);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, ok.size());

  const std::string too_long = "1;" + std::string(8193, 'e') + "\r\nx\r\n0\r\n\r\n";
  const auto bad = scan_plain(too_long);
  EXPECT_TRUE(bad.error);
  EXPECT_EQ(bad.consumed, 2u + 8192u);
}

TEST(ChunkedScanner, TrailerLineLimit) {
  // The first byte of a trailer line is not counted, so 8193 bytes pass.
  const std::string ok = "0\r\n" + std::string(8193, 't') + "\r\n\r\n";
  const auto r = scan_plain(ok);
  EXPECT_FALSE(r.error);
  EXPECT_TRUE(r.done);

  const std::string too_long = "0\r\n" + std::string(9000, 't') + "\r\n\r\n";
  const auto bad = scan_plain(too_long);
  EXPECT_TRUE(bad.error);
  EXPECT_EQ(bad.consumed, 3u + 8193u);
}

// ---------------------------------------------------------------- regressions (issue 2 review)

// DEL (0x7F) is a control character (RFC 5234 CTL) and is valid neither in a
// token nor in a quoted-string of a chunk extension, yet it passes.
TEST(ChunkedScanner, Issue2DelInExtensionIsRejected) {
  const auto r = scan_plain("1;a=\x7f\r\nx\r\n0\r\n\r\n");
  EXPECT_TRUE(r.error);
  EXPECT_EQ(r.consumed, 4u);
}

// RFC 9110 §5.5: a field value containing NUL (or bare CR/LF) is invalid and a
// recipient MUST reject the message or replace the character with SP before
// forwarding. The scanner accepts a trailer line with NUL, and the relay
// forwards the bytes verbatim.
TEST(ChunkedScanner, Issue2NulInTrailerIsRejected) {
  const auto r = scan_plain("0\r\nX-T: a\0b\r\n\r\n"s);
  EXPECT_TRUE(r.error);
  EXPECT_EQ(r.consumed, 9u);
}

// The 8192-byte line limit applies to chunk extensions but not to the
// whitespace after the chunk size: a client can send an unbounded chunk-size
// line (forwarded as it arrives, never counted by payload_bytes(), so it also
// escapes the body limit).
TEST(ChunkedScanner, Issue2WhitespaceAfterSizeIsBounded) {
  const std::string in = "1" + std::string(100000, ' ');
  const auto r = scan_plain(in);
  EXPECT_TRUE(r.error);
  EXPECT_LE(r.consumed, 1u + 8192u);
}

}  // namespace
}  // namespace bgproxy::proxy
