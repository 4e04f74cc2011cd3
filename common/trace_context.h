// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent`
// header, version 00 only:
//   00-<trace-id: 32 lower-case hex>-<parent-id: 16 lower-case hex>-<flags: 2 lower-case hex>
// A header that is not exactly that (wrong length, upper-case hex, an
// all-zero id, another version) is not a trace context: Parse answers
// nullopt and the caller starts a new trace. No I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/entropy.h"

namespace commitd {

class TraceContext {
 public:
  static constexpr std::string_view kHeader = "traceparent";

  static std::optional<TraceContext> Parse(std::string_view header);
  // A new trace (random trace-id and span-id, flags 01: sampled).
  static TraceContext Generate(Entropy& entropy);
  // The same trace and flags with a new span-id: a call made within this span.
  TraceContext Child(Entropy& entropy) const;

  // The header value, "00-<trace_id>-<span_id>-<flags>".
  std::string Format() const;
  const std::string& trace_id() const { return trace_id_; }  // 32 lower-case hex digits
  const std::string& span_id() const { return span_id_; }    // 16 lower-case hex digits (the parent-id field)
  uint8_t flags() const { return flags_; }

  bool operator==(const TraceContext&) const = default;

 private:
  TraceContext(std::string trace_id, std::string span_id, uint8_t flags)
      : trace_id_(std::move(trace_id)), span_id_(std::move(span_id)), flags_(flags) {}

  std::string trace_id_;
  std::string span_id_;
  uint8_t flags_ = 0;
};

}  // namespace commitd
