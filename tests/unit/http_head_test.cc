#include "common/http_head.h"

#include <doctest/doctest.h>

using commitd::http::Response;
using commitd::http::ResponseHead;

TEST_CASE("a response head names the status, the body's type and length, and the fields, in that order") {
  Response r;
  r.status = 409;
  r.body = R"({"outcome":"aborted"})";
  r.headers = {{"Retry-After", "1"}, {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}};
  CHECK(ResponseHead(r, 11, true) ==
        "HTTP/1.1 409 Conflict\r\n"
        "Content-Type: application/json\r\n"
        "Retry-After: 1\r\n"
        "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
        "Content-Length: 21\r\n\r\n");
}

TEST_CASE("the connection's fate is said as each HTTP version needs it") {
  Response r;
  r.content_type.clear();
  CHECK(ResponseHead(r, 11, true) == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  CHECK(ResponseHead(r, 11, false) == "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  CHECK(ResponseHead(r, 10, true) == "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
  CHECK(ResponseHead(r, 10, false) == "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("a field that could end early is left out, and an unknown status keeps its number") {
  Response r;
  r.status = 777;
  r.content_type = "text/plain\r\nSet-Cookie: a=b";
  r.headers = {{"X-Ok", "fine"},
               {"X-Bad", "a\r\nSet-Cookie: a=b"},
               {"X-Nul", std::string("a\0b", 3)},
               {"Bad Name", "x"},
               {"Bad:Name", "x"},
               {"", "x"}};
  r.body = "abc";
  CHECK(ResponseHead(r, 11, true) == "HTTP/1.1 777 <unknown-status>\r\nX-Ok: fine\r\nContent-Length: 3\r\n\r\n");
}

TEST_CASE("a request head names the method, target and host, then the fields and the body's length") {
  auto post = commitd::http::RequestHead("POST", "/v1/prepare", "127.0.0.1:7101", {{"Authorization", "Bearer x"}}, 12);
  REQUIRE(post.ok());
  CHECK(*post ==
        "POST /v1/prepare HTTP/1.1\r\nHost: 127.0.0.1:7101\r\nAuthorization: Bearer x\r\nContent-Length: 12\r\n\r\n");
  auto empty_post = commitd::http::RequestHead("POST", "/v1/abort", "h", {}, 0);
  REQUIRE(empty_post.ok());
  CHECK(*empty_post == "POST /v1/abort HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  auto get = commitd::http::RequestHead("GET", "/v1/transactions?limit=5", "h", {}, 0);
  REQUIRE(get.ok());
  CHECK(*get == "GET /v1/transactions?limit=5 HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST_CASE("a request whose head would not keep its shape is refused, not sent") {
  using commitd::http::RequestHead;
  CHECK(RequestHead("GET", "/a b", "h", {}, 0).status().code() == commitd::StatusCode::kInvalidArgument);
  CHECK(RequestHead("GET", "/a\r\nX: y", "h", {}, 0).status().code() == commitd::StatusCode::kInvalidArgument);
  CHECK(RequestHead("GE T", "/", "h", {}, 0).status().code() == commitd::StatusCode::kInvalidArgument);
  CHECK(RequestHead("", "/", "h", {}, 0).status().code() == commitd::StatusCode::kInvalidArgument);
  CHECK(RequestHead("GET", "/", "h\r\nX: y", {}, 0).status().code() == commitd::StatusCode::kInvalidArgument);
  CHECK(RequestHead("GET", "/", "h", {{"Authorization", "Bearer x\r\nX: y"}}, 0).status().code() ==
        commitd::StatusCode::kInvalidArgument);
  CHECK(RequestHead("GET", "/", "h", {{"Bad Name", "x"}}, 0).status().code() ==
        commitd::StatusCode::kInvalidArgument);
}

TEST_CASE("a field given twice is written once, with its later value") {
  Response r;
  r.headers = {{"Retry-After", "1"}, {"content-type", "text/plain"}, {"retry-after", "2"}};
  CHECK(ResponseHead(r, 11, true) ==
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nretry-after: 2\r\nContent-Length: 0\r\n\r\n");
  auto request = commitd::http::RequestHead("GET", "/", "h", {{"host", "other"}, {"A", "1"}, {"a", "2"}}, 0);
  REQUIRE(request.ok());
  CHECK(*request == "GET / HTTP/1.1\r\nhost: other\r\na: 2\r\n\r\n");
}

TEST_CASE("the framing fields are the writer's own") {
  Response r;
  r.body = "abc";
  r.headers = {{"Content-Length", "1"}, {"transfer-encoding", "chunked"}, {"Connection", "upgrade"}};
  CHECK(ResponseHead(r, 11, false) ==
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 3\r\n\r\n");
  // A request may ask the server to close; its length is the writer's.
  auto request = commitd::http::RequestHead("POST", "/", "h", {{"content-length", "0"}, {"Connection", "close"}}, 2);
  REQUIRE(request.ok());
  CHECK(*request == "POST / HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 2\r\n\r\n");
}
