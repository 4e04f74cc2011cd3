// TxKeys: a transaction's abort key, commit key and commit check, derived
// from the decision log's secret (common/abort_key.h).
//
// The actions of one transaction come one after another (the prepares of all
// its participants, later its decisions to all of them), so the keys of the
// last txid asked about are kept: each is derived once per run of actions
// instead of once per participant.
//
// Thread: the node's, like the Node that owns it.
#pragma once

#include <string>

namespace commitd::coordinator {

class TxKeys {
 public:
  // Forgets every kept key. "" turns keys off (a log without a secret).
  void SetSecret(std::string secret);
  bool enabled() const { return !secret_.empty(); }

  // Only while enabled(). Copies: the kept ones change with the next txid.
  std::string AbortKeyOf(const std::string& txid);
  std::string CommitKeyOf(const std::string& txid);
  std::string CommitCheckOf(const std::string& txid);

 private:
  struct Kept {
    std::string txid;
    std::string abort_key;  // "" until derived, as are the others
    std::string commit_key;
    std::string commit_check;
  };
  Kept& For(const std::string& txid);

  std::string secret_;
  Kept last_;
};

}  // namespace commitd::coordinator
