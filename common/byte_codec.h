// Fixed-width little-endian integers and length-prefixed bytes: the pieces of
// the binary forms the coordinator group uses (raft/wire.h for messages
// between members, coordinator/raft_codec.h for the commands in the Raft log).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace commitd::bytes {

// Appends to a string it does not own; the string must outlive the Writer.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v) { Put(v, 4); }
  void U64(uint64_t v) { Put(v, 8); }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void Bool(bool v) { U8(v ? 1 : 0); }
  void Bytes(std::string_view b) {
    U32(static_cast<uint32_t>(b.size()));
    out_.append(b);
  }

 private:
  void Put(uint64_t v, int n) {
    char buf[8];
    for (int i = 0; i < n; ++i) buf[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    out_.append(buf, static_cast<std::size_t>(n));
  }
  std::string& out_;
};

// Reads from bytes it does not own. A read past the end sets !ok() and
// returns zeros or empty strings from then on; check ok() once at the end.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == in_.size(); }
  uint8_t U8() { return static_cast<uint8_t>(Get(1)); }
  uint32_t U32() { return static_cast<uint32_t>(Get(4)); }
  uint64_t U64() { return Get(8); }
  int64_t I64() { return static_cast<int64_t>(Get(8)); }
  bool Bool() { return U8() != 0; }
  // A view into the input: valid as long as the input is.
  std::string_view BytesView() {
    const uint32_t n = U32();
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    std::string_view out = in_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::string Bytes() { return std::string(BytesView()); }

 private:
  uint64_t Get(int n) {
    if (!ok_ || in_.size() - pos_ < static_cast<std::size_t>(n)) {
      ok_ = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i);
    pos_ += n;
    return v;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace commitd::bytes
