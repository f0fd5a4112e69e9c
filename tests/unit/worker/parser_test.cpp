// HTTP/1 parser: strictness, limits, per-message pause, body streaming.
#include "worker/http1/parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace huginn::worker::http1 {
namespace {

struct Recorder : ParserSink {
  std::vector<RequestHead> requests;
  std::vector<ResponseHead> responses;
  std::string body;
  int completes = 0;
  void on_request_head(RequestHead&& h) override { requests.push_back(std::move(h)); }
  void on_response_head(ResponseHead&& h) override { responses.push_back(std::move(h)); }
  void on_body(std::string_view d) override { body.append(d); }
  void on_message_complete() override { ++completes; }
};

// Feeds everything (resuming after each message); returns the final status.
Parser::Status feed_all(Parser& p, const std::string& data, size_t step = 0) {
  size_t off = 0;
  Parser::Status last = Parser::Status::kNeedMore;
  while (off < data.size()) {
    const size_t n = step ? std::min(step, data.size() - off) : data.size() - off;
    const auto r = p.feed(data.data() + off, n);
    off += r.consumed;
    last = r.status;
    if (r.status == Parser::Status::kError) return last;
  }
  return last;
}

struct BadCase {
  const char* name;
  std::string bytes;
  ParseError want;
};

TEST(Parser, RejectsSmugglingAndMalformedRequests) {
  const std::vector<BadCase> cases = {
      {"cl+te",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       ParseError::kMalformed},
      {"te+cl",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
       ParseError::kMalformed},
      {"dup-cl-differ", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
       ParseError::kMalformed},
      {"cl-list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\nxx", ParseError::kMalformed},
      {"cl-negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", ParseError::kMalformed},
      {"cl-overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
       ParseError::kMalformed},
      {"bad-chunk-size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
       ParseError::kMalformed},
      {"chunk-overflow",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n",
       ParseError::kMalformed},
      {"chunk-size-lf", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n",
       ParseError::kMalformed},
      {"chunk-negative", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n",
       ParseError::kMalformed},
      {"chunk-data-no-crlf",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy0\r\n\r\n",
       ParseError::kMalformed},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", ParseError::kMalformed},
      {"obs-fold-tab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\n\r\n", ParseError::kMalformed},
      {"bare-lf-request-line", "GET / HTTP/1.1\nHost: a\r\n\r\n", ParseError::kMalformed},
      {"bare-lf-header", "GET / HTTP/1.1\r\nHost: a\n\r\n", ParseError::kMalformed},
      {"bare-lf-end", "GET / HTTP/1.1\r\nHost: a\r\n\n", ParseError::kMalformed},
      {"bare-cr", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", ParseError::kMalformed},
      {"space-before-colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", ParseError::kMalformed},
      {"bad-name-char", "GET / HTTP/1.1\r\nHost: a\r\nX(A): 1\r\n\r\n", ParseError::kMalformed},
      {"empty-name", "GET / HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n", ParseError::kMalformed},
      {"nul-in-value", std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 33),
       ParseError::kMalformed},
      {"ctl-in-value",
       "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01"
       "b\r\n\r\n",
       ParseError::kMalformed},
      {"te-gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", ParseError::kMalformed},
      {"te-gzip-chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
       ParseError::kMalformed},
      {"te-chunked-twice",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
       "chunked\r\n\r\n0\r\n\r\n",
       ParseError::kMalformed},
      {"te-chunked-gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
       ParseError::kMalformed},
      {"te-http10", "POST / HTTP/1.0\r\nTransfer-Encoding: identity\r\n\r\n", ParseError::kMalformed},
      {"no-host-11", "GET / HTTP/1.1\r\n\r\n", ParseError::kMalformed},
      {"two-hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ParseError::kMalformed},
      {"http09", "GET /\r\n\r\n", ParseError::kMalformed},
      {"http20", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", ParseError::kMalformed},
      {"http12", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", ParseError::kMalformed},
      {"connect", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", ParseError::kMalformed},
      {"bad-method", "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", ParseError::kMalformed},
      {"space-in-target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", ParseError::kMalformed},
      {"leading-space-header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", ParseError::kMalformed},
  };
  for (const auto& c : cases) {
    for (size_t step : {size_t{0}, size_t{1}}) {
      Recorder rec;
      Parser p(Parser::Kind::kRequest, ParserLimits{}, &rec);
      EXPECT_EQ(feed_all(p, c.bytes, step), Parser::Status::kError) << c.name << " step " << step;
      EXPECT_EQ(p.error(), c.want) << c.name;
    }
  }
}

TEST(Parser, AcceptsValidRequests) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"get", "GET /a?b HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"leading-crlf", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"http10-no-host", "GET / HTTP/1.0\r\n\r\n"},
      {"cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"},
      {"chunked-ext-trailer",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n"},
      {"empty-value", "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n"},
      {"upgrade", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"},
      {"absolute", "GET http://h.example/x HTTP/1.1\r\nHost: other\r\n\r\n"},
  };
  for (const auto& [name, bytes] : cases) {
    for (size_t step : {size_t{0}, size_t{1}, size_t{7}}) {
      Recorder rec;
      Parser p(Parser::Kind::kRequest, ParserLimits{}, &rec);
      EXPECT_EQ(feed_all(p, bytes, step), Parser::Status::kMessageComplete) << name << " step " << step;
      EXPECT_EQ(rec.completes, 1) << name;
      ASSERT_EQ(rec.requests.size(), 1u) << name;
    }
  }
}

TEST(Parser, HeadFieldsAndFraming) {
  Recorder rec;
  Parser p(Parser::Kind::kRequest, ParserLimits{}, &rec);
  const std::string req =
      "POST /up HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Long: a b  c\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  ASSERT_EQ(feed_all(p, req, 1), Parser::Status::kMessageComplete);
  ASSERT_EQ(rec.requests.size(), 1u);
  const auto& h = rec.requests[0];
  EXPECT_EQ(h.method, HTTP_POST);
  EXPECT_EQ(h.target, "/up");
  EXPECT_EQ(h.framing, BodyFraming::kChunked);
  ASSERT_EQ(h.headers.size(), 4u);
  EXPECT_EQ(h.headers[1].name, "X-Empty");
  EXPECT_EQ(h.headers[1].value, "");
  EXPECT_EQ(h.headers[2].name, "X-Long");
  EXPECT_EQ(h.headers[2].value, "a b  c");
  EXPECT_EQ(rec.body, "hello world");
  EXPECT_TRUE(h.keep_alive);
}

TEST(Parser, PausesAfterEachPipelinedMessage) {
  Recorder rec;
  Parser p(Parser::Kind::kRequest, ParserLimits{}, &rec);
  const std::string two =
      "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  auto r = p.feed(two.data(), two.size());
  EXPECT_EQ(r.status, Parser::Status::kMessageComplete);
  EXPECT_EQ(r.consumed, two.find("GET /2"));
  EXPECT_EQ(rec.requests.size(), 1u);
  EXPECT_FALSE(p.in_message());
  auto r2 = p.feed(two.data() + r.consumed, two.size() - r.consumed);
  EXPECT_EQ(r2.status, Parser::Status::kMessageComplete);
  EXPECT_EQ(r.consumed + r2.consumed, two.size());
  ASSERT_EQ(rec.requests.size(), 2u);
  EXPECT_EQ(rec.requests[1].target, "/2");
  EXPECT_FALSE(rec.requests[1].keep_alive);
}

TEST(Parser, HeaderLimits) {
  ParserLimits lim;
  lim.max_header_bytes = 200;
  lim.max_headers = 3;
  {
    Recorder rec;
    Parser p(Parser::Kind::kRequest, lim, &rec);
    std::string req = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    EXPECT_EQ(feed_all(p, req), Parser::Status::kError);
    EXPECT_EQ(p.error(), ParseError::kTooManyHeaders);
  }
  {
    Recorder rec;
    Parser p(Parser::Kind::kRequest, lim, &rec);
    std::string req = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
    EXPECT_EQ(feed_all(p, req), Parser::Status::kMessageComplete);
  }
  {
    Recorder rec;
    Parser p(Parser::Kind::kRequest, lim, &rec);
    std::string req = "GET /" + std::string(250, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
    EXPECT_EQ(feed_all(p, req, 10), Parser::Status::kError);
    EXPECT_EQ(p.error(), ParseError::kHeaderTooLarge);
  }
  {
    // Exactly at the limit is accepted.
    Recorder rec;
    Parser p(Parser::Kind::kRequest, lim, &rec);
    std::string req = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    req += std::string(200 - req.size() - 4, 'v') + "\r\n\r\n";
    ASSERT_EQ(req.size(), 200u);
    EXPECT_EQ(feed_all(p, req), Parser::Status::kMessageComplete);
  }
}

TEST(HeadScanner, TheSizeLimitCutsAtTheExactByteWhereverItFallsAndHoweverTheHeadIsSplit) {
  // The limit may fall in the start line, a name, a value or a line end; the
  // scanner takes names and values in runs, so check every position.
  const std::string head =
      "GET /some/path?q=1 HTTP/1.1\r\nHost: example.test\r\nX-Long-Name: " + std::string(40, 'v') +
      "\r\n\r\n";
  for (uint32_t limit = 1; limit <= head.size() + 1; ++limit) {
    for (const size_t step : {size_t{1}, size_t{3}, size_t{7}, head.size()}) {
      ParserLimits lim;
      lim.max_header_bytes = limit;
      HeadScanner sc(lim);
      size_t off = 0;
      HeadScanner::Result r;
      while (off < head.size()) {
        const size_t n = std::min(step, head.size() - off);
        r = sc.scan(head.data() + off, n);
        off += r.consumed;
        if (r.error != ParseError::kNone || r.done) break;
      }
      SCOPED_TRACE("limit " + std::to_string(limit) + " step " + std::to_string(step));
      if (limit >= head.size()) {
        EXPECT_TRUE(r.done);
        EXPECT_EQ(off, head.size());
      } else {
        EXPECT_EQ(r.error, ParseError::kHeaderTooLarge);
        EXPECT_EQ(off, limit);  // every byte up to the limit, none past it
      }
    }
  }
}

TEST(Parser, Responses) {
  {
    Recorder rec;
    Parser p(Parser::Kind::kResponse, ParserLimits{}, &rec);
    const std::string r = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    EXPECT_EQ(feed_all(p, r), Parser::Status::kMessageComplete);
    ASSERT_EQ(rec.responses.size(), 2u);
    EXPECT_EQ(rec.responses[0].status, 100);
    EXPECT_EQ(rec.responses[1].status, 200);
    EXPECT_EQ(rec.responses[1].framing, BodyFraming::kLength);
    EXPECT_EQ(rec.body, "hi");
  }
  {
    Recorder rec;
    Parser p(Parser::Kind::kResponse, ParserLimits{}, &rec);
    p.set_head_request(true);
    const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    EXPECT_EQ(feed_all(p, r), Parser::Status::kMessageComplete);
    EXPECT_EQ(rec.responses.at(0).framing, BodyFraming::kNone);
  }
  {
    Recorder rec;
    Parser p(Parser::Kind::kResponse, ParserLimits{}, &rec);
    const std::string r = "HTTP/1.1 200 OK\r\n\r\nuntil close";
    EXPECT_EQ(feed_all(p, r), Parser::Status::kNeedMore);
    EXPECT_EQ(rec.responses.at(0).framing, BodyFraming::kUntilClose);
    EXPECT_EQ(p.finish(), Parser::Status::kMessageComplete);
    EXPECT_EQ(rec.body, "until close");
  }
  {
    Recorder rec;
    Parser p(Parser::Kind::kResponse, ParserLimits{}, &rec);
    const std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
    EXPECT_EQ(feed_all(p, r), Parser::Status::kNeedMore);
    EXPECT_EQ(p.finish(), Parser::Status::kError);
  }
  {
    Recorder rec;
    Parser p(Parser::Kind::kResponse, ParserLimits{}, &rec);
    EXPECT_EQ(feed_all(p, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"), Parser::Status::kError);
  }
  {
    Recorder rec;
    Parser p(Parser::Kind::kResponse, ParserLimits{}, &rec);
    EXPECT_EQ(feed_all(p, "HTTP/1.1 204 No Content\r\n\r\n"), Parser::Status::kMessageComplete);
  }
}

}  // namespace
}  // namespace huginn::worker::http1
