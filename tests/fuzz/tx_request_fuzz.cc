// POST /v1/transactions bodies from clients: wire::ParseTxRequest, and that
// its reading straight from the text agrees with ParseTxRequestTree.
#include <string>

#include "common/wire.h"
#include "tests/fuzz/fuzz_input.h"

namespace commitd::wire {
namespace {

using fuzz::Require;

void CheckAccepted(const TxRequest& request) {
  Require(!request.branches.empty() && request.branches.size() <= kMaxBranches, "branch count within limits");
  if (request.timeout_ms) Require(*request.timeout_ms >= 1 && *request.timeout_ms <= kMaxTimeoutMs, "timeout in range");
  for (const Branch& branch : request.branches) {
    Require(!branch.participant.empty(), "participant named");
    Require(!branch.ops.empty() && branch.ops.size() <= kMaxOpsPerBranch, "op count within limits");
    for (const Op& op : branch.ops) {
      Require(op.procedure.has_value() != op.sql.has_value(), "an op is a procedure or SQL");
      // What the coordinator forwards to an agent, the agent reads as the same op.
      const PrepareRequest prepare{"t1", Protocol::k2pc, branch.participant, "http://c", 100, {op}, {}};
      Result<PrepareRequest> read = ParsePrepareRequest(PrepareRequestText(prepare));
      Require(read.ok() && read->ops.size() == 1, "a forwarded op parses");
      Require(read->ops[0].values_text.empty(), "an agent reads the values");
      Require(OpToJson(read->ops[0]) == OpToJson(op), "a forwarded op is unchanged");
    }
  }
}

}  // namespace
}  // namespace commitd::wire

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace commitd;
  Result<wire::TxRequest> request = wire::ParseTxRequest(fuzz::Text(data, size));
  // The text read straight, as it usually is, agrees with the tree parser in everything.
  Result<wire::TxRequest> tree = wire::ParseTxRequestTree(fuzz::Text(data, size));
  fuzz::Require(request.ok() == tree.ok(), "both request parsers accept or refuse");
  fuzz::Require(request.ok() || request.status().ToString() == tree.status().ToString(), "with the same error");
  if (request.ok()) {
    fuzz::Require(request->protocol == tree->protocol && request->timeout_ms == tree->timeout_ms &&
                      request->branches.size() == tree->branches.size(),
                  "and read the same request");
    for (std::size_t b = 0; b < request->branches.size(); ++b) {
      const wire::Branch& x = request->branches[b];
      const wire::Branch& y = tree->branches[b];
      fuzz::Require(x.participant == y.participant && x.ops.size() == y.ops.size(), "and the same branches");
      for (std::size_t o = 0; o < x.ops.size(); ++o) {
        fuzz::Require(wire::OpToJson(x.ops[o]).dump() == wire::OpToJson(y.ops[o]).dump(), "and the same ops");
      }
    }
  }
  if (request.ok()) {
    wire::CheckAccepted(*request);
  } else {
    fuzz::Require(request.status().code() == StatusCode::kInvalidArgument, "a refusal is InvalidArgument");
    fuzz::Require(!request.status().message().empty(), "a refusal says why");
  }
  return 0;
}
