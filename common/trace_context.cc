#include "common/trace_context.h"

#include "common/hex.h"

namespace commitd {
namespace {

constexpr std::size_t kTraceIdHex = 32;
constexpr std::size_t kSpanIdHex = 16;
// "00-" + trace-id + "-" + span-id + "-" + flags
constexpr std::size_t kHeaderSize = 3 + kTraceIdHex + 1 + kSpanIdHex + 1 + 2;

bool IsAllZero(std::string_view text) { return text.find_first_not_of('0') == std::string_view::npos; }

// A random id of `bytes` bytes that is not all zero (the format forbids it).
std::string RandomId(Entropy& entropy, std::size_t bytes) {
  std::string id = entropy.Hex(bytes);
  if (IsAllZero(id)) id.back() = '1';
  return id;
}

}  // namespace

std::optional<TraceContext> TraceContext::Parse(std::string_view header) {
  if (header.size() != kHeaderSize) return std::nullopt;
  if (header.substr(0, 3) != "00-") return std::nullopt;
  const std::string_view trace_id = header.substr(3, kTraceIdHex);
  if (header[3 + kTraceIdHex] != '-') return std::nullopt;
  const std::string_view span_id = header.substr(4 + kTraceIdHex, kSpanIdHex);
  if (header[4 + kTraceIdHex + kSpanIdHex] != '-') return std::nullopt;
  const std::string_view flags = header.substr(5 + kTraceIdHex + kSpanIdHex, 2);
  if (!IsLowerHex(trace_id) || !IsLowerHex(span_id) || !IsLowerHex(flags)) return std::nullopt;
  if (IsAllZero(trace_id) || IsAllZero(span_id)) return std::nullopt;
  return TraceContext(std::string(trace_id), std::string(span_id),
                      static_cast<uint8_t>(HexDigitValue(flags[0]) * 16 + HexDigitValue(flags[1])));
}

TraceContext TraceContext::Generate(Entropy& entropy) {
  std::string trace_id = RandomId(entropy, kTraceIdHex / 2);
  return TraceContext(std::move(trace_id), RandomId(entropy, kSpanIdHex / 2), 0x01);
}

TraceContext TraceContext::Child(Entropy& entropy) const {
  return TraceContext(trace_id_, RandomId(entropy, kSpanIdHex / 2), flags_);
}

std::string TraceContext::Format() const {
  std::string out;
  out.reserve(kHeaderSize);
  out += "00-";
  out += trace_id_;
  out += '-';
  out += span_id_;
  out += '-';
  AppendHex(&out, &flags_, 1);
  return out;
}

}  // namespace commitd
