// Reading one transaction from the coordinator and printing it for people.
#pragma once

#include <string>

#include "tools/commitctl/cli.h"

namespace commitd::commitctl {

// GET /v1/transactions/{txid}: status 200 with the transaction, or 404 (no
// record: presumed aborted). Any other answer is an error for the user.
Result<JsonReply> GetTransaction(Context& ctx, const std::string& txid);

// True when the coordinator has nothing left to do for it: its state is
// "finished", or it has no record (presumed abort).
bool IsFinished(const JsonReply& tx);

// A participant had done the other outcome (state "contradicted"): only an
// operator ends it (commitctl close).
bool IsContradicted(const JsonReply& tx);
// The "next:" line for a contradicted transaction.
void PrintContradictedNext(const std::string& txid);

// Decision, reason, each participant's state and the timeline.
void PrintTransaction(const nlohmann::json& tx);

}  // namespace commitd::commitctl
