// JsonScanner: walks JSON text, handing out each value as the text it came
// in, so that a caller extracts what it needs without building a JSON value.
// It checks what it walks as IsJson does (common/json_syntax.h), so a reader
// whose walk ended with Finished() has read one valid JSON text; text checked
// before (JsonSyntax::kChecked) is walked without checking again. No I/O.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/json_plain_run.h"
#include "common/json_syntax.h"

namespace commitd {

class JsonScanner {
 public:
  explicit JsonScanner(std::string_view text, JsonSyntax syntax = JsonSyntax::kUnchecked)
      : text_(text), checked_(syntax == JsonSyntax::kChecked) {}

  // False once the walk met text that is not JSON. From then on Peek()
  // answers '\0', Value() "null", and Object and Array call nothing.
  bool ok() const { return ok_; }
  // The walk met no error and nothing but whitespace is left.
  bool Finished() {
    SkipSpace();
    return ok_ && pos_ == text_.size();
  }

  // The next character after whitespace; '\0' at the end or after an error.
  char Peek() {
    if (!ok_) return '\0';
    SkipSpace();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }

  // The value starting here, as text.
  std::string_view Value() {
    if (!ok_) return kAfterError;
    SkipSpace();
    const std::size_t start = pos_;
    if (checked_) {
      SkipChecked();
    } else {
      const std::size_t end = JsonValueEnd(text_, pos_);
      if (end == std::string_view::npos) return Fail();
      pos_ = end;
    }
    return text_.substr(start, pos_ - start);
  }

  // Calls walk(*this), which must consume the value starting here, and
  // returns that value's text.
  template <class Walk>
  std::string_view Walked(Walk&& walk) {
    SkipSpace();
    const std::size_t start = pos_;
    walk(*this);
    return text_.substr(start, pos_ - start);
  }

  // Calls member(key, *this) for each member of the object starting here;
  // member must consume the value. key (a std::string_view) is valid during
  // the call only: a view of the text, or of the key decoded when it holds
  // escapes.
  template <class Member>
  void Object(Member&& member) {
    if (!Open('{', '}')) return;
    std::string decoded;
    for (;;) {
      if (Peek() != '"') {
        Fail();
        return;
      }
      const std::string_view token = Value();
      if (!ok_) return;
      std::string_view key = token.substr(1, token.size() - 2);
      if (key.find('\\') != std::string_view::npos) {
        decoded = String(token);
        key = decoded;
      }
      if (Peek() != ':') {
        Fail();
        return;
      }
      ++pos_;
      member(key, *this);
      if (!Next('}')) return;
    }
  }

  // Calls element(*this), which must consume the element, for each element
  // of the array starting here.
  template <class Element>
  void Array(Element&& element) {
    if (!Open('[', ']')) return;
    for (;;) {
      element(*this);
      if (!Next(']')) return;
    }
  }

  // A JSON string token's value (a token this scanner handed out).
  static std::string String(std::string_view token) {
    if (token.find('\\') == std::string_view::npos) return std::string(token.substr(1, token.size() - 2));
    return nlohmann::json::parse(token).get<std::string>();
  }

 private:
  static constexpr std::string_view kAfterError = "null";

  static bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  static bool EndsScalar(char c) { return c == ',' || c == '}' || c == ']' || IsSpace(c); }
  void SkipSpace() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
  }
  std::string_view Fail() {
    ok_ = false;
    return kAfterError;
  }

  // Takes the container's opening character; false if it is not there, or
  // if the container is empty (then taken whole).
  bool Open(char open, char close) {
    if (Peek() != open) {
      Fail();
      return false;
    }
    ++pos_;
    if (Peek() != close) return ok_;
    ++pos_;
    return false;
  }

  // After an element: takes a comma (true: another follows) or the closing
  // character (false); anything else is an error.
  bool Next(char close) {
    const char c = Peek();
    if (c == ',') {
      ++pos_;
      return true;
    }
    if (c == close) {
      ++pos_;
    } else {
      Fail();
    }
    return false;
  }

  // The value starting at pos_ in checked text.
  void SkipChecked() {
    const char c = text_[pos_];
    if (c == '"') {
      SkipString();
    } else if (c == '{' || c == '[') {
      int depth = 0;
      do {
        const char d = text_[pos_];
        if (d == '"') {
          SkipString();
          continue;
        }
        if (d == '{' || d == '[') ++depth;
        if (d == '}' || d == ']') --depth;
        ++pos_;
      } while (depth > 0);
    } else {
      while (pos_ < text_.size() && !EndsScalar(text_[pos_])) ++pos_;
    }
  }
  // Checked text: the string ends, and a backslash has a character after it.
  void SkipString() {
    ++pos_;
    for (;;) {
      pos_ += PlainJsonRun(text_.substr(pos_));
      const char c = text_[pos_];
      if (c == '"') break;
      pos_ += c == '\\' ? 2 : 1;
    }
    ++pos_;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  bool checked_;
  bool ok_ = true;
};

}  // namespace commitd
