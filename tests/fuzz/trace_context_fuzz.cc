// The traceparent header (common/trace_context.h) as a client or a peer sends
// it: whatever parses is a valid version-00 context that formats back to
// exactly the bytes that came in, and its children stay in its trace.
#include <string>

#include "common/trace_context.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using commitd::fuzz::Require;

class CountingEntropy final : public commitd::Entropy {
 public:
  void Fill(uint8_t* out, std::size_t n) override {
    for (std::size_t i = 0; i < n; ++i) out[i] = next_++;
  }

 private:
  uint8_t next_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text = commitd::fuzz::Text(data, size);
  const auto trace = commitd::TraceContext::Parse(text);
  if (!trace) return 0;
  Require(trace->Format() == text, "a parsed traceparent formats back to its input");
  Require(trace->trace_id().size() == 32 && trace->span_id().size() == 16, "ids have their lengths");
  CountingEntropy entropy;
  const commitd::TraceContext child = trace->Child(entropy);
  Require(child.trace_id() == trace->trace_id() && child.flags() == trace->flags(), "a child keeps the trace");
  Require(commitd::TraceContext::Parse(child.Format()).has_value(), "a child is a valid traceparent");
  return 0;
}
