// ParseBatch: the parts of a batch body, with each sub-body as the bytes that came in.
#include <doctest/doctest.h>

#include <string>

#include "common/http_batch_parse.h"

namespace commitd::http {
namespace {

TEST_CASE("ParseBatch views each element's fields in the text, bodies verbatim") {
  const std::string text = R"( { "other": [1, {"requests": 2}],
    "requests" : [ {"method":"POST", "target" : "/v1/prepare", "body": {"a": "x]}\"y", "n": [1, 2.5e3, null]}},
                   {"target":"/v1/commit","body" : "just a string"} , 7, {"body": true} ] } )";
  auto parts = ParseBatch(text, "requests");
  REQUIRE(parts.has_value());
  REQUIRE(parts->size() == 4);
  const BatchPart& first = (*parts)[0];
  CHECK(first.object);
  CHECK(*first.method == "\"POST\"");
  CHECK(*first.target == "\"/v1/prepare\"");
  CHECK(*first.body == R"({"a": "x]}\"y", "n": [1, 2.5e3, null]})");
  CHECK_FALSE(first.status.has_value());
  CHECK(*(*parts)[1].body == "\"just a string\"");
  CHECK_FALSE((*parts)[1].method.has_value());
  CHECK_FALSE((*parts)[2].object);
  CHECK(*(*parts)[3].body == "true");
  CHECK_FALSE((*parts)[3].target.has_value());
}

TEST_CASE("ParseBatch reads responses and escaped keys, and refuses what is not a batch") {
  auto responses = ParseBatch(R"({"responses":[{"status":409,"body":{"error":{}}},{"status":200}]})", "responses");
  REQUIRE(responses.has_value());
  REQUIRE(responses->size() == 2);
  CHECK(*(*responses)[0].status == "409");
  CHECK(*(*responses)[0].body == R"({"error":{}})");
  CHECK_FALSE((*responses)[1].body.has_value());

  auto escaped = ParseBatch(R"({"re\u0071uests":[{"t\u0061rget":"/x"}]})", "requests");
  REQUIRE(escaped.has_value());
  CHECK(*(*escaped)[0].target == "\"/x\"");

  CHECK(ParseBatch(R"({"requests":[]})", "requests")->empty());
  CHECK_FALSE(ParseBatch(R"({"requests":[{"target":"/x"}])", "requests").has_value());  // not valid JSON
  CHECK_FALSE(ParseBatch(R"({"requests":[1,]})", "requests").has_value());
  CHECK_FALSE(ParseBatch(R"([{"requests":[]}])", "requests").has_value());
  CHECK_FALSE(ParseBatch(R"({"requests":"nope"})", "requests").has_value());
  CHECK_FALSE(ParseBatch(R"({"other":[]})", "requests").has_value());
  CHECK_FALSE(ParseBatch(R"({"requests":[], "requests":{}})", "requests").has_value());  // the last one counts
  CHECK(ParseBatch(R"({"requests":{}, "requests":[1]})", "requests")->size() == 1);
  CHECK_FALSE(ParseBatch("", "requests").has_value());
}

TEST_CASE("JsonStringValue decodes escapes") {
  CHECK(JsonStringValue("\"/v1/commit\"") == "/v1/commit");
  CHECK(JsonStringValue(R"("a\u0062\"c\\")") == "ab\"c\\");
}

}  // namespace
}  // namespace commitd::http
