#include "common/json_syntax.h"

#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <string>
#include <vector>

#include "common/json_plain_run.h"
#include "common/utf8.h"

namespace commitd {
namespace {

// The containers open at a point of a walk, innermost last: true for an
// object. The first 64 levels in a word, deeper ones (hostile text) in a vector.
class OpenContainers {
 public:
  bool empty() const { return depth_ == 0; }
  void push(bool object) {
    if (depth_ < 64) {
      bits_ = (bits_ & ~(uint64_t{1} << depth_)) | (uint64_t{object} << depth_);
    } else {
      deeper_.push_back(object);
    }
    ++depth_;
  }
  bool back() const { return depth_ <= 64 ? ((bits_ >> (depth_ - 1)) & 1) != 0 : deeper_.back(); }
  void pop() {
    if (depth_ > 64) deeper_.pop_back();
    --depth_;
  }

 private:
  uint64_t bits_ = 0;
  std::size_t depth_ = 0;
  std::vector<bool> deeper_;
};

class Checker {
 public:
  Checker(std::string_view text, std::size_t at) : s_(text), i_(at) {}

  bool Document() {
    if (!Value()) return false;
    SkipSpace();
    return i_ == s_.size();
  }

  // One value, after any whitespace; leaves end() just past it.
  bool Value() {
    OpenContainers open;
    for (;;) {
      SkipSpace();
      if (At('{') || At('[')) {
        const bool object = At('{');
        ++i_;
        SkipSpace();
        if (At(object ? '}' : ']')) {
          ++i_;
        } else {
          open.push(object);
          if (object && !Key()) return false;
          continue;  // the first value
        }
      } else if (!Scalar()) {
        return false;
      }
      // A value ended: close what ends here, or go on to the next element.
      for (;;) {
        if (open.empty()) return true;
        SkipSpace();
        if (At(',')) {
          ++i_;
          if (open.back() && !Key()) return false;
          break;
        }
        if (!At(open.back() ? '}' : ']')) return false;
        ++i_;
        open.pop();
      }
    }
  }

  std::size_t end() const { return i_; }

 private:
  bool At(char c) const { return i_ < s_.size() && s_[i_] == c; }

  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }

  // A member's key and its colon.
  bool Key() {
    SkipSpace();
    if (!At('"') || !String()) return false;
    SkipSpace();
    if (!At(':')) return false;
    ++i_;
    return true;
  }

  bool Scalar() {
    if (At('"')) return String();
    if (Literal("true") || Literal("false") || Literal("null")) return true;
    return Number();
  }

  bool Literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  bool Digits() {
    const std::size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    return i_ > start;
  }

  bool Number() {
    const std::size_t start = i_;
    if (At('-')) ++i_;
    if (At('0')) {
      ++i_;
    } else if (i_ >= s_.size() || s_[i_] < '1' || s_[i_] > '9' || !Digits()) {
      return false;
    }
    bool integer = true;
    if (At('.')) {
      ++i_;
      if (!Digits()) return false;
      integer = false;
    }
    if (At('e') || At('E')) {
      ++i_;
      if (At('+') || At('-')) ++i_;
      if (!Digits()) return false;
      integer = false;
    }
    // A number with a fraction or exponent, or an integer too large for 64
    // bits, is read as a double, and nlohmann refuses one that overflows it.
    if (integer && i_ - start < 19) return true;
    const std::string number(s_.substr(start, i_ - start));
    return std::isfinite(std::strtod(number.c_str(), nullptr));
  }

  int Hex4() {
    if (s_.size() - i_ < 4) return -1;
    int v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        return -1;
      }
    }
    return v;
  }

  bool Escape() {
    if (i_ >= s_.size()) return false;
    const char c = s_[i_++];
    if (c != 'u') return std::string_view("\"\\/bfnrt").find(c) != std::string_view::npos;
    const int unit = Hex4();
    if (unit < 0 || (unit >= 0xDC00 && unit <= 0xDFFF)) return false;
    if (unit < 0xD800 || unit > 0xDBFF) return true;
    // A high surrogate: its low half must follow.
    if (!Literal("\\u")) return false;
    const int low = Hex4();
    return low >= 0xDC00 && low <= 0xDFFF;
  }

  // One UTF-8 sequence starting with a byte >= 0x80.
  bool Utf8() {
    const std::size_t n = Utf8SequenceLength(s_, i_);
    i_ += n;
    return n != 0;
  }

  bool String() {
    ++i_;  // "
    while (i_ < s_.size()) {
      i_ += PlainJsonRun(s_.substr(i_));
      if (i_ >= s_.size()) break;
      const auto c = static_cast<uint8_t>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        ++i_;
        if (!Escape()) return false;
      } else if (c < 0x80) {
        ++i_;
      } else if (!Utf8()) {
        return false;
      }
    }
    return false;
  }

  std::string_view s_;
  std::size_t i_;
};

}  // namespace

bool IsJson(std::string_view text) { return Checker(text, 0).Document(); }

std::size_t JsonValueEnd(std::string_view text, std::size_t at) {
  Checker checker(text, at);
  return checker.Value() ? checker.end() : std::string_view::npos;
}

}  // namespace commitd
