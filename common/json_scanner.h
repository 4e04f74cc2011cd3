// JsonScanner: walks JSON text already checked (IsJson, common/json_syntax.h),
// handing out each value as the text it came in, so that a caller extracts
// what it needs without building a JSON value. Only for checked text: it
// does not look for errors. No I/O.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/json_plain_run.h"

namespace commitd {

class JsonScanner {
 public:
  explicit JsonScanner(std::string_view text) : text_(text) {}

  char Peek() {
    SkipSpace();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }
  void Take() { ++pos_; }

  // The value starting here, as text.
  std::string_view Value() {
    SkipSpace();
    const std::size_t start = pos_;
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
    Take();  // {
    std::string decoded;
    while (Peek() != '}') {
      const std::string_view token = Value();
      std::string_view key = token.substr(1, token.size() - 2);
      if (key.find('\\') != std::string_view::npos) {
        decoded = String(token);
        key = decoded;
      }
      Peek();
      Take();  // :
      member(key, *this);
      if (Peek() == ',') Take();
    }
    Take();
  }

  // Calls element(*this) for each element of the array starting here.
  template <class Element>
  void Array(Element&& element) {
    Take();  // [
    while (Peek() != ']') {
      element(*this);
      if (Peek() == ',') Take();
    }
    Take();
  }

  // A JSON string token's value.
  static std::string String(std::string_view token) {
    if (token.find('\\') == std::string_view::npos) return std::string(token.substr(1, token.size() - 2));
    return nlohmann::json::parse(token).get<std::string>();
  }

 private:
  static bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  static bool EndsScalar(char c) { return c == ',' || c == '}' || c == ']' || IsSpace(c); }
  void SkipSpace() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
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
};

}  // namespace commitd
