#include <doctest/doctest.h>

#include "common/peer_url.h"

namespace commitd {
namespace {

TEST_CASE("a peer URL is a scheme, a host and a port, returned without a trailing slash") {
  CHECK(ValidatePeerUrl("http://127.0.0.1:7001").value() == "http://127.0.0.1:7001");
  CHECK(ValidatePeerUrl("https://bank-a.example:443").value() == "https://bank-a.example:443");
  CHECK(ValidatePeerUrl("http://localhost:8080/").value() == "http://localhost:8080");
  CHECK(ValidatePeerUrl("http://localhost:8080//").value() == "http://localhost:8080");
  CHECK(ValidatePeerUrl("http://h:1").value() == "http://h:1");
  CHECK(ValidatePeerUrl("http://h:65535").value() == "http://h:65535");
}

TEST_CASE("anything that could point a probe elsewhere than host:port is refused") {
  for (const char* url : {
           "",
           "127.0.0.1:7001",                        // no scheme
           "ftp://127.0.0.1:21",                    // other scheme
           "file:///etc/passwd",                    //
           "gopher://127.0.0.1:70",                 //
           "HTTP://127.0.0.1:7001",                 // schemes are matched exactly
           "http://",                               // nothing after the scheme
           "http://127.0.0.1",                      // no port
           "http://127.0.0.1:",                     // empty port
           "http://127.0.0.1:0",                    // port 0
           "http://127.0.0.1:65536",                // out of range
           "http://127.0.0.1:99999999999999999999",  //
           "http://127.0.0.1:-1",                   //
           "http://127.0.0.1:80x",                  //
           "http://:7001",                          // no host
           "http://127.0.0.1:7001/v1/procedures",   // path
           "http://127.0.0.1:7001/admin?x=1",       //
           "http://127.0.0.1:7001?x=1",             // query
           "http://127.0.0.1:7001#frag",            // fragment
           "http://user:pw@127.0.0.1:7001",         // user info
           "http://user@127.0.0.1:7001",            //
           "http://127.0.0.1:7001\\evil",           // backslash
           "http://127.0.0.1 :7001",                // whitespace
           "http://127.0.0.1:7001\r\nHost: x",      // header injection
       }) {
    CAPTURE(url);
    auto r = ValidatePeerUrl(url);
    CHECK_FALSE(r.ok());
    if (!r.ok()) CHECK(r.status().code() == StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace commitd
