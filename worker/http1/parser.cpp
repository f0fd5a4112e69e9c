#include "worker/http1/parser.h"

#include <array>
#include <utility>

#include "common/net/http_token.h"

namespace huginn::worker::http1 {

// ---------------------------------------------------------------- HeadScanner

void HeadScanner::reset() {
  state_ = State::kLeading;
  after_lf_ = State::kLineStart;
  bytes_ = 0;
  headers_ = 0;
}

namespace {

// Byte classes for the scanner's bulk runs: kText bytes continue a start line
// or a field value (anything but CR, LF and NUL), kName bytes a field name.
constexpr uint8_t kText = 1;
constexpr uint8_t kName = 2;

constexpr std::array<uint8_t, 256> kByteClass = [] {
  std::array<uint8_t, 256> t{};
  for (unsigned c = 0; c < 256; ++c) {
    if (c != '\r' && c != '\n' && c != 0) t[c] |= kText;
    if (huginn::net::is_tchar(static_cast<unsigned char>(c))) t[c] |= kName;
  }
  return t;
}();

}  // namespace

HeadScanner::Result HeadScanner::scan(const char* data, size_t len) {
  Result r;
  for (size_t i = 0; i < len; ++i) {
    // Most bytes of a head are inside a start line, a value or a name: take
    // such a run in one step and check the size limit once for all of it.
    // The byte that ends the run goes through the state machine below.
    const uint8_t run_class = state_ == State::kValue || state_ == State::kStartLine ? kText
                              : state_ == State::kName                               ? kName
                                                                                     : 0;
    if (run_class != 0) {
      size_t j = i;
      while (j < len && (kByteClass[static_cast<unsigned char>(data[j])] & run_class) != 0) ++j;
      const size_t run = j - i;
      if (run > limits_.max_header_bytes - bytes_) {
        r.consumed = i + (limits_.max_header_bytes - bytes_);
        bytes_ = size_t{limits_.max_header_bytes} + 1;
        r.error = ParseError::kHeaderTooLarge;
        return r;
      }
      bytes_ += run;
      i = j;
      if (i == len) break;
    }
    const auto c = static_cast<unsigned char>(data[i]);
    if (++bytes_ > limits_.max_header_bytes) {
      r.consumed = i;
      r.error = ParseError::kHeaderTooLarge;
      return r;
    }
    bool ok = true;
    switch (state_) {
      case State::kLeading:  // empty lines before the start line are ignored
        if (c == '\r') {
          state_ = State::kLeadingLf;
        } else if (c == '\n' || c == 0) {
          ok = false;
        } else {
          state_ = State::kStartLine;
        }
        break;
      case State::kLeadingLf:
        ok = c == '\n';
        state_ = State::kLeading;
        break;
      case State::kStartLine:
        if (c == '\r') {
          state_ = State::kLf;
          after_lf_ = State::kLineStart;
        } else if (c == '\n' || c == 0) {
          ok = false;
        }
        break;
      case State::kLineStart:
        if (c == '\r') {
          state_ = State::kEndLf;
        } else if (is_tchar(c)) {  // SP/HTAB here would be obs-fold
          if (++headers_ > limits_.max_headers) {
            r.consumed = i;
            r.error = ParseError::kTooManyHeaders;
            return r;
          }
          state_ = State::kName;
        } else {
          ok = false;
        }
        break;
      case State::kName:
        if (c == ':') {
          state_ = State::kValue;
        } else if (!is_tchar(c)) {
          ok = false;  // includes whitespace between the name and ':'
        }
        break;
      case State::kValue:
        if (c == '\r') {
          state_ = State::kLf;
          after_lf_ = State::kLineStart;
        } else if (c == '\n' || c == 0) {
          ok = false;
        }
        break;
      case State::kLf:
        ok = c == '\n';
        state_ = after_lf_;
        break;
      case State::kEndLf:
        if (c != '\n') {
          ok = false;
          break;
        }
        r.consumed = i + 1;
        r.done = true;
        return r;
    }
    if (!ok) {
      r.consumed = i;
      r.error = ParseError::kMalformed;
      return r;
    }
  }
  r.consumed = len;
  return r;
}

// ---------------------------------------------------------------- Parser

namespace {
Parser* self(llhttp_t* p) { return static_cast<Parser*>(p->data); }
constexpr size_t kHeadersReserve = 16;
}  // namespace

const llhttp_settings_t* Parser::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t st;
    llhttp_settings_init(&st);
    st.on_message_begin = &Parser::cb_message_begin;
    st.on_url = &Parser::cb_url;
    st.on_status = &Parser::cb_status;
    st.on_header_field = &Parser::cb_header_field;
    st.on_header_value = &Parser::cb_header_value;
    st.on_header_field_complete = &Parser::cb_header_field_complete;
    st.on_headers_complete = &Parser::cb_headers_complete;
    st.on_body = &Parser::cb_body;
    st.on_message_complete = &Parser::cb_message_complete;
    return st;
  }();
  return &s;
}

Parser::Parser(Kind kind, const ParserLimits& limits, ParserSink* sink)
    : kind_(kind), limits_(limits), sink_(sink), scanner_(limits) {
  llhttp_init(&parser_, kind == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE, settings());
  parser_.data = this;
  // No lenient flags: llhttp's defaults are its strict behaviours.
}

int Parser::fail(ParseError e, const char* reason) {
  if (error_ == ParseError::kNone) {
    error_ = e;
    reason_ = reason;
  }
  llhttp_set_error_reason(&parser_, reason);
  return HPE_USER;
}

int Parser::cb_message_begin(llhttp_t* p) {
  Parser* s = self(p);
  if (s->kind_ == Kind::kRequest)
    s->headers_ = &s->head_.emplace<RequestHead>().headers;
  else
    s->headers_ = &s->head_.emplace<ResponseHead>().headers;
  s->head_done_ = false;
  s->field_open_ = false;
  s->trailer_bytes_ = 0;
  s->trailer_count_ = 0;
  return 0;
}

int Parser::cb_url(llhttp_t* p, const char* at, size_t len) {
  // Bounded: the scanner has already capped the head at max_header_bytes.
  std::get<RequestHead>(self(p)->head_).target.append(at, len);
  return 0;
}

int Parser::cb_status(llhttp_t* p, const char* at, size_t len) {
  std::get<ResponseHead>(self(p)->head_).reason.append(at, len);
  return 0;
}

int Parser::on_field_bytes(std::string_view data, bool value) {
  if (head_done_) {  // trailer fields: counted, bounded, dropped
    trailer_bytes_ += data.size();
    if (trailer_bytes_ > limits_.max_header_bytes)
      return fail(ParseError::kHeaderTooLarge, "trailers too large");
    return 0;
  }
  if (!value) {
    if (!field_open_) {
      // Room for a typical head at the first field: one allocation instead of
      // one per doubling (a browser request or a backend response has 5-20).
      if (headers_->empty()) headers_->reserve(kHeadersReserve);
      headers_->emplace_back();
      field_open_ = true;
    }
    headers_->back().name.append(data);
  } else if (!headers_->empty()) {
    headers_->back().value.append(data);
  }
  return 0;
}

int Parser::cb_header_field(llhttp_t* p, const char* at, size_t len) {
  return self(p)->on_field_bytes(std::string_view(at, len), false);
}

int Parser::cb_header_value(llhttp_t* p, const char* at, size_t len) {
  return self(p)->on_field_bytes(std::string_view(at, len), true);
}

int Parser::cb_header_field_complete(llhttp_t* p) {
  Parser* s = self(p);
  s->field_open_ = false;
  if (s->head_done_ && ++s->trailer_count_ > s->limits_.max_headers)
    return s->fail(ParseError::kTooManyHeaders, "too many trailer fields");
  return 0;
}

int Parser::cb_headers_complete(llhttp_t* p) { return self(p)->headers_complete(); }

int Parser::headers_complete() {
  head_done_ = true;
  const uint8_t major = parser_.http_major;
  const uint8_t minor = parser_.http_minor;
  if (major != 1 || minor > 1) return fail(ParseError::kMalformed, "unsupported HTTP version");
  const bool chunked = (parser_.flags & F_CHUNKED) != 0;
  const bool has_length = (parser_.flags & F_CONTENT_LENGTH) != 0;
  const bool keep_alive = llhttp_should_keep_alive(&parser_) != 0;

  if (kind_ == Kind::kRequest) {
    RequestHead& req = std::get<RequestHead>(head_);
    if (parser_.method == HTTP_CONNECT) return fail(ParseError::kMalformed, "CONNECT is not supported");
    if (parser_.flags & F_TRANSFER_ENCODING) {
      // Only a single "chunked" coding is accepted; anything else is a
      // smuggling shape or a coding we would have to understand.
      if (count_headers(req.headers, "transfer-encoding") != 1 ||
          !iequals(trim_ows(find_header(req.headers, "transfer-encoding")->value), "chunked"))
        return fail(ParseError::kMalformed, "Transfer-Encoding other than chunked");
    }
    const size_t hosts = count_headers(req.headers, "host");
    if (hosts > 1) return fail(ParseError::kMalformed, "several Host fields");
    if (hosts == 0 && minor == 1) return fail(ParseError::kMalformed, "HTTP/1.1 request without Host");
    req.method = parser_.method;
    req.version_major = major;
    req.version_minor = minor;
    req.keep_alive = keep_alive;
    if (chunked) {
      req.framing = BodyFraming::kChunked;
    } else if (has_length) {
      req.framing = BodyFraming::kLength;
      req.content_length = parser_.content_length;
    }
    sink_->on_request_head(std::move(req));
    return 0;
  }

  ResponseHead& resp = std::get<ResponseHead>(head_);
  const uint16_t status = parser_.status_code;
  if (status == 101) return fail(ParseError::kMalformed, "unexpected 101 from backend");
  resp.status = status;
  resp.version_major = major;
  resp.version_minor = minor;
  resp.keep_alive = keep_alive;
  const bool no_body = head_request_ || status / 100 == 1 || status == 204 || status == 304;
  if (no_body) {
    resp.framing = BodyFraming::kNone;
  } else if (chunked) {
    resp.framing = BodyFraming::kChunked;
  } else if (has_length) {
    resp.framing = BodyFraming::kLength;
    resp.content_length = parser_.content_length;
  } else {
    resp.framing = BodyFraming::kUntilClose;
    resp.keep_alive = false;
  }
  sink_->on_response_head(std::move(resp));
  return (head_request_ && status / 100 != 1) ? 1 : 0;
}

int Parser::cb_body(llhttp_t* p, const char* at, size_t len) {
  self(p)->sink_->on_body(std::string_view(at, len));
  return 0;
}

int Parser::cb_message_complete(llhttp_t* p) {
  Parser* s = self(p);
  s->message_done_ = true;
  s->in_head_ = true;
  s->scanner_.reset();
  s->sink_->on_message_complete();
  return s->finishing_ ? 0 : HPE_PAUSED;
}

Parser::Result Parser::feed(const char* data, size_t len) {
  Result r;
  if (error_ != ParseError::kNone) {
    r.status = Status::kError;
    return r;
  }
  if (paused_) {
    llhttp_resume(&parser_);
    paused_ = false;
  }
  message_done_ = false;
  size_t off = 0;
  while (off < len) {
    size_t chunk = len - off;
    bool head_end = false;
    if (in_head_) {
      const HeadScanner::Result s = scanner_.scan(data + off, chunk);
      if (s.error != ParseError::kNone) {
        fail(s.error,
             s.error == ParseError::kMalformed ? "malformed message head" : "message head too large");
        r.consumed = off + s.consumed;
        r.status = Status::kError;
        return r;
      }
      chunk = s.consumed;
      head_end = s.done;
    }
    const llhttp_errno_t e = llhttp_execute(&parser_, data + off, chunk);
    if (e == HPE_OK) {
      off += chunk;
      if (head_end && !message_done_) {
        if (!head_done_) {
          fail(ParseError::kMalformed, "message head framing mismatch");
          r.consumed = off;
          r.status = Status::kError;
          return r;
        }
        in_head_ = false;
      }
      continue;
    }
    const size_t used = static_cast<size_t>(llhttp_get_error_pos(&parser_) - (data + off));
    if (e == HPE_PAUSED_UPGRADE) {
      // A request carrying Upgrade is proxied as a plain request (Upgrade is
      // hop-by-hop and removed); keep parsing the stream as HTTP.
      llhttp_resume_after_upgrade(&parser_);
      off += used;
      if (message_done_) {
        r.consumed = off;
        r.status = Status::kMessageComplete;
        return r;
      }
      continue;
    }
    if (e == HPE_PAUSED) {
      paused_ = true;
      r.consumed = off + used;
      r.status = Status::kMessageComplete;
      return r;
    }
    if (error_ == ParseError::kNone) {
      error_ = ParseError::kMalformed;
      reason_ = llhttp_get_error_reason(&parser_);
      if (reason_ == nullptr) reason_ = llhttp_errno_name(e);
    }
    r.consumed = off + used;
    r.status = Status::kError;
    return r;
  }
  r.consumed = off;
  return r;
}

Parser::Status Parser::finish() {
  if (error_ != ParseError::kNone) return Status::kError;
  if (paused_) {
    llhttp_resume(&parser_);
    paused_ = false;
  }
  message_done_ = false;
  const bool was_in_message = in_message();
  finishing_ = true;
  const llhttp_errno_t e = llhttp_finish(&parser_);
  finishing_ = false;
  if (e != HPE_OK) {
    if (error_ == ParseError::kNone) {
      error_ = ParseError::kMalformed;
      reason_ = "connection closed inside a message";
    }
    return Status::kError;
  }
  if (message_done_) return Status::kMessageComplete;
  if (was_in_message) {
    error_ = ParseError::kMalformed;
    reason_ = "connection closed inside a message";
    return Status::kError;
  }
  return Status::kNeedMore;
}

}  // namespace huginn::worker::http1
