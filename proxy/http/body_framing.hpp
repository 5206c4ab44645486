#pragma once
/// How far a message body reaches in the bytes at hand: by Content-Length, by
/// chunked framing, or until the connection closes. The relay forwards exactly
/// what this allows, so bytes of a pipelined next message are never sent along.
/// I/O-free. Thread: owned by one session.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "proxy/http/chunked_scanner.hpp"
#include "proxy/http/grpc_messages.hpp"

namespace bgproxy::proxy {

enum class BodyKind : std::uint8_t { none, length, chunked, until_eof };

class BodyFraming {
 public:
  struct Step {
    std::size_t take = 0;  ///< bytes of the input that belong to the body
    bool done = false;     ///< the body ends within them
    bool error = false;    ///< malformed chunked framing
  };

  /// @param keep_trailers collect the trailer fields of a chunked body (trailers()) without
  ///        de-chunking it (gRPC accounting reads grpc-status there)
  void reset(BodyKind kind, std::uint64_t length = 0, bool dechunk = false, bool keep_trailers = false) noexcept;

  /// Consumes the body's share of `input`. With dechunk, payload() then lists
  /// the chunk data inside the taken bytes (for a client that cannot take chunked).
  /// @param count_grpc the body is a gRPC call's: its payload bytes go to grpc_messages()
  Step next(std::string_view input, bool count_grpc = false);

  BodyKind kind() const noexcept { return kind_; }
  bool done() const noexcept { return done_; }
  bool dechunk() const noexcept { return dechunk_; }
  void mark_done() noexcept { done_ = true; }
  /// Body bytes seen so far (payload bytes for chunked).
  std::uint64_t body_bytes() const noexcept;
  const std::vector<boost::asio::const_buffer>& payload() const noexcept { return payload_.spans; }
  /// With dechunk or keep_trailers: the trailer field lines seen so far ("Name: value\r\n" each), as received.
  const std::string& trailers() const noexcept { return payload_.trailers; }
  /// gRPC messages in the payload passed so far with count_grpc: 0, 1, or 2 for more.
  unsigned grpc_messages() const noexcept { return messages_.count(); }

 private:
  struct PayloadSpans final : ChunkedScanner::PayloadSink {
    const char* base = nullptr;
    std::vector<boost::asio::const_buffer> spans;
    std::string trailers;
    GrpcMessages* messages = nullptr;  ///< counting this scan's payload
    void on_payload(std::size_t offset, std::size_t size) override {
      spans.emplace_back(base + offset, size);
      if (messages != nullptr) messages->feed(std::string_view(base + offset, size));
    }
    void on_trailer(std::size_t offset, std::size_t size) override { trailers.append(base + offset, size); }
  };

  BodyKind kind_ = BodyKind::none;
  bool done_ = true;
  bool dechunk_ = false;
  bool keep_trailers_ = false;
  std::uint64_t left_ = 0;
  std::uint64_t seen_ = 0;
  ChunkedScanner chunks_;
  PayloadSpans payload_;
  GrpcMessages messages_;
};

}  // namespace bgproxy::proxy
