#include "common/trace_context.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace commitd {
namespace {

// Fills with one byte value, then counts up: predictable ids.
class CountingEntropy final : public Entropy {
 public:
  explicit CountingEntropy(uint8_t start) : next_(start) {}
  void Fill(uint8_t* out, std::size_t n) override {
    for (std::size_t i = 0; i < n; ++i) out[i] = next_;
    ++next_;
  }

 private:
  uint8_t next_;
};

class ZeroEntropy final : public Entropy {
 public:
  void Fill(uint8_t* out, std::size_t n) override {
    for (std::size_t i = 0; i < n; ++i) out[i] = 0;
  }
};

const std::string kValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST_CASE("a valid traceparent parses and formats back to itself") {
  auto t = TraceContext::Parse(kValid);
  REQUIRE(t);
  CHECK(t->trace_id() == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(t->span_id() == "00f067aa0ba902b7");
  CHECK(t->flags() == 0x01);
  CHECK(t->Format() == kValid);
  auto unsampled = TraceContext::Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  REQUIRE(unsampled);
  CHECK(unsampled->flags() == 0);
  auto all_flags = TraceContext::Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff");
  REQUIRE(all_flags);
  CHECK(all_flags->flags() == 0xff);
  CHECK(all_flags->Format().substr(53) == "ff");
}

TEST_CASE("malformed traceparent headers are not trace contexts") {
  const std::vector<std::string> bad = {
      "",
      "00",
      "00-",
      kValid + "-",                                                      // too long
      kValid.substr(0, kValid.size() - 1),                               // too short
      " " + kValid,                                                      // leading space
      kValid + " ",                                                      // trailing space
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",         // version ff
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",         // a version we do not speak
      "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",         // upper-case trace-id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",         // upper-case parent-id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",         // upper-case flags
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",         // all-zero trace-id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",         // all-zero parent-id
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",         // not hex
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",         // wrong separators
      "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
      "00-4bf92f3577b34da6a3ce929d0e0e47-3600f067aa0ba902b7-01",         // misplaced dash, right length
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7--1",
      "00--4bf92f3577b34da6a3ce929d0e0e473600f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01,00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      std::string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\0", 55),
      std::string(55, '-'),
      std::string(55, '0'),
      std::string(4096, 'a'),
  };
  for (const std::string& header : bad) {
    CAPTURE(header);
    CHECK_FALSE(TraceContext::Parse(header));
  }
}

TEST_CASE("every single-character corruption of a valid header is caught or still well formed") {
  // Replace each position with each printable character: whatever parses must
  // format back to exactly the input (nothing is silently reinterpreted).
  for (std::size_t i = 0; i < kValid.size(); ++i) {
    for (int c = 0; c < 256; ++c) {
      std::string header = kValid;
      header[i] = static_cast<char>(c);
      auto t = TraceContext::Parse(header);
      if (t) {
        CAPTURE(header);
        CHECK(t->Format() == header);
      }
    }
  }
}

TEST_CASE("generated traces are well formed and children keep the trace") {
  CountingEntropy entropy(0xab);
  TraceContext t = TraceContext::Generate(entropy);
  CHECK(t.trace_id() == "abababababababababababababababab");
  CHECK(t.span_id() == "acacacacacacacac");
  CHECK(t.flags() == 0x01);
  auto parsed = TraceContext::Parse(t.Format());
  REQUIRE(parsed);
  CHECK(*parsed == t);

  TraceContext child = t.Child(entropy);
  CHECK(child.trace_id() == t.trace_id());
  CHECK(child.flags() == t.flags());
  CHECK(child.span_id() == "adadadadadadadad");
  CHECK(child.span_id() != t.span_id());
  CHECK(TraceContext::Parse(child.Format()));
}

TEST_CASE("an entropy source that gives zeros still yields valid ids") {
  ZeroEntropy zeros;
  TraceContext t = TraceContext::Generate(zeros);
  CHECK(TraceContext::Parse(t.Format()));
  CHECK(TraceContext::Parse(t.Child(zeros).Format()));
}

TEST_CASE("system entropy gives distinct traces") {
  SystemEntropy entropy;
  TraceContext a = TraceContext::Generate(entropy);
  TraceContext b = TraceContext::Generate(entropy);
  CHECK(a.trace_id() != b.trace_id());
  CHECK(TraceContext::Parse(a.Format()));
}

}  // namespace
}  // namespace commitd
