#include "coordinator/tx_keys.h"

#include "common/abort_key.h"

namespace commitd::coordinator {

void TxKeys::SetSecret(std::string secret) {
  secret_ = std::move(secret);
  last_ = Kept{};
}

TxKeys::Kept& TxKeys::For(const std::string& txid) {
  if (last_.txid != txid) last_ = Kept{txid, "", "", ""};
  return last_;
}

std::string TxKeys::AbortKeyOf(const std::string& txid) {
  Kept& kept = For(txid);
  if (kept.abort_key.empty()) kept.abort_key = AbortKey(secret_, txid);
  return kept.abort_key;
}

std::string TxKeys::CommitKeyOf(const std::string& txid) {
  Kept& kept = For(txid);
  if (kept.commit_key.empty()) kept.commit_key = CommitKey(secret_, txid);
  return kept.commit_key;
}

std::string TxKeys::CommitCheckOf(const std::string& txid) {
  Kept& kept = For(txid);
  if (kept.commit_check.empty()) kept.commit_check = CommitCheck(CommitKeyOf(txid));
  return kept.commit_check;
}

}  // namespace commitd::coordinator
