// Bodies an agent receives from coordinators (POST /v1/prepare, and the
// {"txid"} and {"txid","commit_key"} bodies of /v1/commit, /v1/precommit)
// and votes a coordinator receives back: wire::ParsePrepareRequest,
// ParseTxidBody, ParseCommitRequest, ParseVote. Every input goes to each.
#include <string>

#include "common/json_syntax.h"
#include "common/wire.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using commitd::Result;
using commitd::StatusCode;
using commitd::fuzz::Require;
namespace wire = commitd::wire;

template <class T>
void CheckRefusal(const Result<T>& r) {
  if (r.ok()) return;
  Require(r.status().code() == StatusCode::kInvalidArgument, "a refusal is InvalidArgument");
  Require(!r.status().message().empty(), "a refusal says why");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = commitd::fuzz::Text(data, size);

  Result<wire::PrepareRequest> prepare = wire::ParsePrepareRequest(text);
  CheckRefusal(prepare);
  // The text read straight, as it usually is, agrees with the tree parser in everything.
  Result<wire::PrepareRequest> tree = wire::ParsePrepareRequestTree(text);
  Require(prepare.ok() == tree.ok(), "both prepare parsers accept or refuse");
  Require(prepare.ok() || prepare.status().ToString() == tree.status().ToString(), "with the same error");
  Require(!prepare.ok() || wire::ToJson(*prepare).dump() == wire::ToJson(*tree).dump(), "and read the same");
  // A batch's sub-request skips the syntax check its batch had: the same reading.
  if (commitd::IsJson(text)) {
    Result<wire::PrepareRequest> checked = wire::ParsePrepareRequest(text, wire::BodySyntax::kChecked);
    Require(checked.ok() == prepare.ok(), "a checked body is accepted as an unchecked one");
    Require(checked.ok() || checked.status().ToString() == prepare.status().ToString(), "with the same error");
    Require(!checked.ok() || wire::ToJson(*checked).dump() == wire::ToJson(*prepare).dump(), "and read the same");
    Result<wire::CommitRequest> commit_checked = wire::ParseCommitRequest(text, wire::BodySyntax::kChecked);
    Result<wire::CommitRequest> commit_unchecked = wire::ParseCommitRequest(text);
    Require(commit_checked.ok() == commit_unchecked.ok(), "a checked commit body is accepted as an unchecked one");
    Require(!commit_checked.ok() || (commit_checked->txid == commit_unchecked->txid &&
                                     commit_checked->commit_key == commit_unchecked->commit_key),
            "and read the same");
  }
  if (prepare.ok()) {
    Require(wire::IsValidTxid(prepare->txid), "a prepare's txid is valid");
    Require(prepare->timeout_ms >= 1 && prepare->timeout_ms <= wire::kMaxTimeoutMs, "timeout in range");
    // What a coordinator sends (ToJson) parses back to the same request.
    const std::string sent = wire::ToJson(*prepare).dump();
    Result<wire::PrepareRequest> again = wire::ParsePrepareRequest(sent);
    Require(again.ok(), "a serialized prepare parses");
    Require(wire::ToJson(*again).dump() == sent, "a serialized prepare round-trips");
    Require(wire::PrepareRequestText(*prepare) == sent, "the prepare text is ToJson's, byte for byte");
  }

  Result<wire::Vote> vote = wire::ParseVote(text);
  CheckRefusal(vote);
  Result<wire::Vote> vote_tree = wire::ParseVoteTree(text);
  Require(vote.ok() == vote_tree.ok(), "both vote parsers accept or refuse");
  Require(vote.ok() || vote.status().ToString() == vote_tree.status().ToString(), "with the same error");
  Require(!vote.ok() || wire::ToJson(*vote).dump() == wire::ToJson(*vote_tree).dump(), "and read the same");
  // A batch's sub-response skips the syntax check its batch had: the same reading.
  if (commitd::IsJson(text)) {
    Result<wire::Vote> checked = wire::ParseVote(text, wire::BodySyntax::kChecked);
    Require(checked.ok() == vote.ok(), "a checked vote is accepted as an unchecked one");
    Require(checked.ok() || checked.status().ToString() == vote.status().ToString(), "with the same error");
    Require(!checked.ok() || wire::ToJson(*checked).dump() == wire::ToJson(*vote).dump(), "and read the same");
  }
  if (vote.ok()) {
    Require(vote->results.is_array() || vote->results.is_null(), "vote results are an array or null");
    const std::string sent = wire::ToJson(*vote).dump();
    Result<wire::Vote> again = wire::ParseVote(sent);
    Require(again.ok(), "a serialized vote parses");
    Require(wire::ToJson(*again).dump() == sent, "a serialized vote round-trips");
    Require(wire::VoteText(*vote) == sent, "the vote text is ToJson's, byte for byte");
  }

  Result<std::string> txid = wire::ParseTxidBody(text);
  CheckRefusal(txid);
  if (txid.ok()) Require(wire::IsValidTxid(*txid), "a txid body's txid is valid");

  Result<wire::CommitRequest> commit = wire::ParseCommitRequest(text);
  CheckRefusal(commit);
  Result<wire::CommitRequest> commit_tree = wire::ParseCommitRequestTree(text);
  Require(commit.ok() == commit_tree.ok(), "both commit parsers accept or refuse");
  Require(commit.ok() || commit.status().ToString() == commit_tree.status().ToString(), "with the same error");
  Require(!commit.ok() || (commit->txid == commit_tree->txid && commit->commit_key == commit_tree->commit_key),
          "and read the same");
  if (commit.ok()) {
    Require(wire::IsValidTxid(commit->txid), "a commit body's txid is valid");
    const std::string sent = wire::ToJson(*commit).dump();
    Result<wire::CommitRequest> again = wire::ParseCommitRequest(sent);
    Require(again.ok() && again->txid == commit->txid && again->commit_key == commit->commit_key,
            "a serialized commit body round-trips");
  }
  return 0;
}
