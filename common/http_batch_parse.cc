#include "common/http_batch_parse.h"

#include <nlohmann/json.hpp>

#include "common/json_syntax.h"

namespace commitd::http {
namespace {

// Walks text already known to be valid JSON, so that each sub-request's body
// reaches its handler as the bytes that came in, not parsed and dumped again.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

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
      while (pos_ < text_.size() && std::string_view(",}] \t\r\n").find(text_[pos_]) == std::string_view::npos) ++pos_;
    }
    return text_.substr(start, pos_ - start);
  }

  // Calls member(key, *this) for each member of the object starting here;
  // member must consume the value.
  template <class Member>
  void Object(Member&& member) {
    Take();  // {
    while (Peek() != '}') {
      const std::string key = String(Value());
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
  void SkipSpace() {
    while (pos_ < text_.size() && std::string_view(" \t\r\n").find(text_[pos_]) != std::string_view::npos) ++pos_;
  }
  void SkipString() {
    for (++pos_; text_[pos_] != '"'; ++pos_) {
      if (text_[pos_] == '\\') ++pos_;
    }
    ++pos_;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

std::optional<std::vector<BatchPart>> ParseBatch(const std::string& text, std::string_view key) {
  if (!IsJson(text)) return std::nullopt;
  Scanner scan(text);
  if (scan.Peek() != '{') return std::nullopt;
  std::optional<std::vector<BatchPart>> parts;
  scan.Object([&](const std::string& name, Scanner& s) {
    if (name != key || s.Peek() != '[') {
      s.Value();
      if (name == key) parts.reset();  // the last of repeated keys counts, as in a parsed object
      return;
    }
    parts.emplace();
    s.Array([&](Scanner& a) {
      BatchPart& part = parts->emplace_back();
      if (a.Peek() != '{') {
        a.Value();
        return;
      }
      part.object = true;
      a.Object([&](const std::string& field, Scanner& o) {
        std::string_view value = o.Value();
        if (field == "method") part.method = value;
        if (field == "target") part.target = value;
        if (field == "status") part.status = value;
        if (field == "body") part.body = value;
        if (field == "traceparent") part.traceparent = value;
      });
    });
  });
  return parts;
}

std::string JsonStringValue(std::string_view token) { return Scanner::String(token); }

}  // namespace commitd::http
