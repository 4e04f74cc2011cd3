// The abort capability of one transaction: HMAC-SHA256(secret, txid), where
// the secret is created with a coordinator's decision log (or a group's
// replicated log) and never leaves it. The coordinator puts the key in every
// prepare of the transaction and in every abort it sends; an agent takes an
// abort of a record that voted yes only with the key its prepare carried
// (docs/security.md). Participants of the transaction know the key too: 3PC
// termination sends it with the aborts it decides. The commit capability
// below is built the same way.
#pragma once

#include <string>
#include <string_view>

namespace commitd {

// 64 lower-case hex digits. The secret must not be empty.
std::string AbortKey(std::string_view secret, std::string_view txid);

// Constant-time comparison; false when either is empty.
bool AbortKeyMatches(std::string_view expected, std::string_view given);

// The commit capability of one transaction: HMAC-SHA256(secret, "commit\0" +
// txid), 64 hex digits, from the same secret. Commits and 3PC precommits
// carry it; the prepare carries only its check, CommitCheck(key) =
// SHA-256(key) in hex, so that a prepared record (and anyone who reads it)
// does not hold the key before the coordinator decided commit.
std::string CommitKey(std::string_view secret, std::string_view txid);
std::string CommitCheck(std::string_view commit_key);
// SHA-256(given) == check, compared in constant time; false when either is empty.
bool CommitKeyMatches(std::string_view check, std::string_view given);

}  // namespace commitd
