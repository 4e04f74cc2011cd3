// The procedures file an agent loads at start (--procedures):
// Procedures::Parse, the text Procedures::Load reads.
#include <string>

#include "participant/procedures.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace commitd;
  using fuzz::Require;
  Result<participant::Procedures> procedures = participant::Procedures::Parse(std::string(fuzz::Text(data, size)));
  if (!procedures.ok()) {
    Require(procedures.status().code() == StatusCode::kInvalidArgument, "a bad file is InvalidArgument");
    Require(!procedures.status().message().empty(), "a refusal says why");
    return 0;
  }
  for (const std::string& name : procedures->Names()) {
    const participant::Procedure* p = procedures->Find(name);
    Require(p != nullptr && !name.empty(), "every listed procedure is found");
    Require(!p->statements.empty(), "a procedure has statements");
    if (p->expect_changes) Require(*p->expect_changes >= 0, "expect_changes is not negative");
  }
  return 0;
}
