// IsJson against nlohmann::json::accept, the parser whose text it stands in
// for: chosen cases, then random texts built from JSON's own pieces; and
// JsonScanner's walks against IsJson.
#include "common/json_syntax.h"

#include "common/json_scanner.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace commitd {
namespace {

bool Accepted(const std::string& text) { return nlohmann::json::accept(text); }

TEST_CASE("chosen texts are judged as nlohmann judges them") {
  const std::string cases[] = {
      "{}", "[]", "0", "-0", "1.5e3", "-1E-2", "\"\"", "true", "false", "null", " \t\r\n{ } ",
      R"({"requests":[{"method":"POST","target":"/v1/prepare","body":{"txid":"t","ops":[1,2.5,null]}}]})",
      R"("\u00e9\uD83D\uDE00\n\t\\\/\"")", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "18446744073709551616",
      "123456789012345678901234567890", "1e308", "1e-400", "-1e-400",
      // Refused.
      "", " ", "{", "}", "[1,]", "[,1]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{1:2}", "01", "-", "1.", ".5", "1e",
      "1e+", "+1", "0x10", "NaN", "Infinity", "tru", "nul", "True", "[1 2]", "{} {}", "\"a", "\"\\x\"", "\"\\u12\"",
      "\"\\uZZZZ\"", "\"\\uD800\"", "\"\\uDC00\"", "\"\\uD800\\u0041\"", "\"\x01\"", "\"\xff\"", "\"\xc3\"",
      "\"\xc0\x80\"", "\"\xe0\x80\x80\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xf8\x88\x80\x80\x80\"",
      "1e309", "-1e309", "[1]x", "/* c */ 1", "\xef\xbb\xbf{}"};
  for (const std::string& text : cases) {
    CAPTURE(text);
    if (text.rfind("\xef\xbb\xbf", 0) == 0) {
      CHECK_FALSE(IsJson(text));  // nlohmann skips a byte-order mark; a batch never has one
      continue;
    }
    CHECK(IsJson(text) == Accepted(text));
  }
}

TEST_CASE("a NUL byte is never JSON, though nlohmann stops reading there") {
  const std::string after_value("200\0\0]", 6);
  CHECK(Accepted(after_value));
  CHECK_FALSE(IsJson(after_value));
  CHECK_FALSE(IsJson(std::string("\"a\0b\"", 5)));
  CHECK_FALSE(IsJson(std::string("\0", 1)));
}

// Texts from pieces of JSON, valid and not, so that most are near misses.
std::string RandomText(std::mt19937_64& random) {
  static const std::string kPieces[] = {
      "{", "}", "[", "]", ",", ":", " ", "\n", "\"", "\"a\"", "\"txid\":", "\\", "\\u", "\\uD83D", "\\uDE00", "00e9",
      "\\n", "0", "-", "1", "9", ".", "e", "E", "+", "12345678901234567890", "1e400", "true", "false", "null", "nul",
      "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff", "\xc3", "\xed\xa0\x80", "\x01", "\x7f", "/", "x"};
  std::string text;
  const std::size_t length = random() % 16;
  for (std::size_t i = 0; i < length; ++i) text += kPieces[random() % std::size(kPieces)];
  return text;
}

// The i-th random case: a RandomText, every so often inside a valid
// document, so that acceptance is exercised as much as refusal.
std::string RandomCase(std::mt19937_64& random, int i) {
  std::string text = RandomText(random);
  if (i % 4 == 0) text = "{\"k\":[" + text + "]}";
  if (i % 8 == 1) text = "[\"" + text + "\"]";
  if (i % 8 == 3) text = "{\"a\":" + text + ",\"b\":[" + text + "]}";
  return text;
}

TEST_CASE("random texts are judged as nlohmann judges them") {
  std::mt19937_64 random(20261204);
  int accepted = 0;
  for (int i = 0; i < 200'000; ++i) {
    const std::string text = RandomCase(random, i);
    CAPTURE(text);
    const bool expected = Accepted(text);
    REQUIRE(IsJson(text) == expected);
    accepted += expected;
  }
  MESSAGE(accepted << " of 200000 random texts are JSON");
  CHECK(accepted > 5'000);
}

// Walks a value as the fast readers do: objects member by member, arrays
// element by element, scalars by Value().
void Walk(JsonScanner& scan) {
  const char c = scan.Peek();
  if (c == '{') {
    scan.Object([](std::string_view, JsonScanner& member) { Walk(member); });
  } else if (c == '[') {
    scan.Array([](JsonScanner& element) { Walk(element); });
  } else {
    scan.Value();
  }
}

TEST_CASE("a scanner's walk finishes exactly on the texts IsJson accepts") {
  std::mt19937_64 random(20261207);
  int accepted = 0;
  for (int i = 0; i < 200'000; ++i) {
    const std::string text = RandomCase(random, i);
    CAPTURE(text);
    const bool json = IsJson(text);
    JsonScanner whole(text);
    whole.Value();
    REQUIRE(whole.Finished() == json);
    JsonScanner walked(text);
    Walk(walked);
    REQUIRE(walked.Finished() == json);
    accepted += json;
  }
  CHECK(accepted > 5'000);
}

TEST_CASE("JsonValueEnd follows containers nested deeper than 64 levels") {
  for (std::size_t depth : {1, 63, 64, 65, 66, 200}) {
    CAPTURE(depth);
    std::string open, close;
    for (std::size_t d = 0; d < depth; ++d) {
      open += d % 2 == 0 ? "{\"k\":[" : "[";
      close = (d % 2 == 0 ? "]}" : "]") + close;
    }
    const std::string text = open + "1" + close;
    CHECK(JsonValueEnd(text + " ,x", 0) == text.size());
    CHECK(IsJson(text));
    // Each closing character swapped for the other kind, at the innermost,
    // around the 64th and the outermost level.
    for (std::size_t at : {std::size_t{0}, std::size_t{63}, std::size_t{64}, depth - 1}) {
      if (at >= depth) continue;
      std::string wrong = text;
      std::size_t pos = open.size() + 1;  // first closing character of the innermost level
      for (std::size_t d = depth - 1; d > depth - 1 - at; --d) pos += d % 2 == 0 ? 2 : 1;
      wrong[pos] = wrong[pos] == ']' ? '}' : ']';
      CAPTURE(at);
      CHECK(JsonValueEnd(wrong, 0) == std::string_view::npos);
      CHECK(IsJson(wrong) == Accepted(wrong));
    }
  }
  CHECK(JsonValueEnd("  1 , 2", 0) == 3);
  CHECK(JsonValueEnd("\"a\"x", 0) == 3);
  CHECK(JsonValueEnd("[1,2] ", 0) == 5);
  CHECK(JsonValueEnd("[1,2", 0) == std::string_view::npos);
  CHECK(JsonValueEnd("", 0) == std::string_view::npos);
  CHECK(JsonValueEnd("1", 1) == std::string_view::npos);
}

TEST_CASE("after an error a scanner reads nothing more") {
  for (const std::string text : {R"({"a":1 "b":2})", R"({"a":1,})", R"({"a" 1})", R"({"a":1,"b":[1 2]})"}) {
    CAPTURE(text);
    JsonScanner scan(text);
    std::vector<std::string> names;
    scan.Object([&](std::string_view name, JsonScanner& s) {
      names.emplace_back(name);
      Walk(s);
    });
    CHECK(names.size() <= 2);
    CHECK_FALSE(scan.ok());
    CHECK(scan.Peek() == '\0');
    CHECK(scan.Value() == "null");
    bool called = false;
    scan.Array([&](JsonScanner&) { called = true; });
    scan.Object([&](std::string_view, JsonScanner&) { called = true; });
    CHECK_FALSE(called);
    CHECK_FALSE(scan.Finished());
  }
  // Checked text is walked without checking again.
  JsonScanner checked(R"({"a":[1,{"b":"c"}]})", JsonSyntax::kChecked);
  std::string value;
  checked.Object([&](std::string_view, JsonScanner& s) { value = s.Value(); });
  CHECK(value == R"([1,{"b":"c"}])");
  CHECK(checked.Finished());
}

}  // namespace
}  // namespace commitd

TEST_CASE("strings with one byte that needs a look anywhere in them are judged as nlohmann judges them") {
  // Plain runs are checked eight bytes at a time: every position of the odd
  // byte in strings around a multiple of eight long, valid or not.
  const std::string kOdd[] = {"\"", "\\", "\\\"", "\\u00e9", "\\x", std::string(1, '\0'), "\x1f", "\x7f",
                              "\x80", "\xff", "\xc3\xa9", "\xc3", "\xe2\x82\xac", "\xed\xa0\x80", "!", "#"};
  for (std::size_t length = 0; length <= 24; ++length) {
    const std::string plain(length, 'x');
    for (std::size_t at = 0; at <= length; ++at) {
      for (const std::string& odd : kOdd) {
        const std::string text = "[\"" + plain.substr(0, at) + odd + plain.substr(at) + "\"]";
        const bool nul = text.find('\0') != std::string::npos;
        const bool json = commitd::IsJson(text);
        REQUIRE_MESSAGE(json == (!nul && commitd::Accepted(text)), text);
        if (!json) continue;
        // The scanner, which skips strings the same way, hands out the string whole.
        commitd::JsonScanner scan(text);
        std::vector<std::string> elements;
        scan.Array([&](commitd::JsonScanner& element) { elements.emplace_back(element.Value()); });
        REQUIRE(elements == std::vector<std::string>{text.substr(1, text.size() - 2)});
      }
    }
  }
}

TEST_CASE("JsonScanner hands out member names decoded, plain ones as views of the text") {
  const std::string text = R"({"plain":1,"t\u0078id":"a","q\"uote":[1,{"in\\ner":2}],"":null,"last":"x"})";
  REQUIRE(commitd::IsJson(text));
  commitd::JsonScanner scan(text);
  std::vector<std::string> names;
  std::vector<std::string> values;
  std::vector<bool> views_of_text;
  scan.Object([&](std::string_view name, commitd::JsonScanner& s) {
    names.emplace_back(name);
    views_of_text.push_back(name.data() >= text.data() && name.data() <= text.data() + text.size());
    values.emplace_back(s.Value());
  });
  CHECK(names == std::vector<std::string>{"plain", "txid", "q\"uote", "", "last"});
  CHECK(values == std::vector<std::string>{"1", "\"a\"", R"([1,{"in\\ner":2}])", "null", "\"x\""});
  CHECK(views_of_text == std::vector<bool>{true, false, false, true, true});
  // Every name as nlohmann reads it.
  const nlohmann::json parsed = nlohmann::json::parse(text);
  for (const std::string& name : names) CHECK(parsed.contains(name));
}
