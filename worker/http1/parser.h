// HTTP/1.1 message parser: llhttp plus the checks llhttp's loose build does
// not make, with the configured limits enforced while bytes arrive.
//
// One Parser reads one direction of one connection (client requests, or a
// backend's responses). feed() consumes bytes up to the end of one message
// and then stops ("pause per message", nghttpx style): the next message is
// parsed only after the caller calls feed() again. Body bytes are handed to the
// sink as they are parsed, so the caller bounds memory by bounding what it
// feeds. No I/O here: the fuzz target drives this class directly.
//
// Rejected (the message and the connection end): bare LF line endings, obs-fold,
// invalid header-name characters (including whitespace before ':'), duplicate
// Content-Length, Content-Length with Transfer-Encoding, any Transfer-Encoding
// other than exactly "chunked", invalid chunk sizes/extensions, HTTP versions
// other than 1.0 and 1.1, CONNECT, several Host fields, an HTTP/1.1 request
// without Host; and for responses, 101 Switching Protocols.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "worker/http1/message.h"

namespace huginn::worker::http1 {

struct ParserLimits {
  uint32_t max_header_bytes = 65536;  // start line + header block, CRLFs included
  uint32_t max_headers = 100;
};

class ParserSink {
 public:
  virtual ~ParserSink() = default;
  virtual void on_request_head(RequestHead&& head) { (void)head; }
  virtual void on_response_head(ResponseHead&& head) { (void)head; }
  virtual void on_body(std::string_view data) = 0;
  virtual void on_message_complete() = 0;
};

enum class ParseError : uint8_t {
  kNone,
  kMalformed,       // 400 (requests) / 502 (responses)
  kHeaderTooLarge,  // 431
  kTooManyHeaders,  // 431
};

// Strict byte-level scan of a message head (start line and header lines),
// run ahead of llhttp over the same bytes. It finds the end of the head and
// enforces what llhttp's loose build lets through.
class HeadScanner {
 public:
  struct Result {
    size_t consumed = 0;  // bytes of the head in this call
    bool done = false;    // the empty line ending the head was consumed
    ParseError error = ParseError::kNone;
  };
  HeadScanner(const ParserLimits& limits) : limits_(limits) {}
  Result scan(const char* data, size_t len);
  void reset();
  size_t bytes() const { return bytes_; }

 private:
  enum class State : uint8_t { kLeading, kLeadingLf, kStartLine, kLineStart, kName, kValue, kLf, kEndLf };
  ParserLimits limits_;
  State state_ = State::kLeading;
  State after_lf_ = State::kLineStart;
  size_t bytes_ = 0;
  uint32_t headers_ = 0;
};

class Parser {
 public:
  enum class Kind : uint8_t { kRequest, kResponse };
  enum class Status : uint8_t {
    kNeedMore,         // everything consumed, the message is not finished
    kMessageComplete,  // stopped right after a message; feed() again for the next
    kError,
  };
  struct Result {
    size_t consumed = 0;
    Status status = Status::kNeedMore;
  };

  Parser(Kind kind, const ParserLimits& limits, ParserSink* sink);
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  Result feed(const char* data, size_t len);
  // The peer closed its side. Completes a close-delimited response body;
  // returns kMessageComplete, kNeedMore (nothing was in progress) or kError.
  Status finish();

  // Responses only: the next response answers a HEAD request (no body).
  void set_head_request(bool head) { head_request_ = head; }

  ParseError error() const { return error_; }
  const char* error_reason() const { return reason_; }
  // True once any byte of the current message was consumed.
  bool in_message() const { return !in_head_ || scanner_.bytes() > 0; }
  // True while the head of the current message is being read.
  bool in_head() const { return in_head_; }

 private:
  static int cb_message_begin(llhttp_t* p);
  static int cb_url(llhttp_t* p, const char* at, size_t len);
  static int cb_status(llhttp_t* p, const char* at, size_t len);
  static int cb_header_field(llhttp_t* p, const char* at, size_t len);
  static int cb_header_value(llhttp_t* p, const char* at, size_t len);
  static int cb_header_field_complete(llhttp_t* p);
  static int cb_headers_complete(llhttp_t* p);
  static int cb_body(llhttp_t* p, const char* at, size_t len);
  static int cb_message_complete(llhttp_t* p);
  static const llhttp_settings_t* settings();

  int fail(ParseError e, const char* reason);
  int headers_complete();
  int on_field_bytes(std::string_view data, bool value);

  Kind kind_;
  ParserLimits limits_;
  ParserSink* sink_;
  llhttp_t parser_{};
  HeadScanner scanner_;
  bool in_head_ = true;
  bool head_done_ = false;     // on_headers_complete ran for this message
  bool message_done_ = false;  // on_message_complete ran during this feed()
  bool paused_ = false;
  bool finishing_ = false;
  bool head_request_ = false;
  bool field_open_ = false;  // a header name is being received
  ParseError error_ = ParseError::kNone;
  const char* reason_ = "";
  // The head being read: a request parser's or a response parser's, never both.
  std::variant<RequestHead, ResponseHead> head_;
  Headers* headers_ = nullptr;
  size_t trailer_bytes_ = 0;
  uint32_t trailer_count_ = 0;
};

}  // namespace huginn::worker::http1
