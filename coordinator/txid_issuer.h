// TxidIssuer: the transaction ids one coordinator incarnation hands out.
//
//   <coordinator id>-<incarnation>-<sequence>-<16 random hex digits>
//
// The incarnation is a counter made durable before the first txid of a
// process is issued (a single coordinator's decisions.db; a group leader's
// Raft term), so ids never repeat across restarts whatever the wall clock
// says. The random part makes ids unguessable: nobody can name a txid that
// has not been issued yet, so nothing recorded about a made-up txid (a
// presumed abort, a forced decision) can ever collide with a real one.
//
// Thread: its owner's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/entropy.h"

namespace commitd::coordinator {

struct TxidParts {
  std::string coordinator;
  uint64_t incarnation = 0;
  uint64_t sequence = 0;
};

class TxidIssuer {
 public:
  // entropy must outlive the issuer.
  TxidIssuer(std::string coordinator_id, uint64_t incarnation, Entropy& entropy)
      : coordinator_id_(std::move(coordinator_id)), incarnation_(incarnation), entropy_(entropy) {}

  std::string Next();
  uint64_t incarnation() const { return incarnation_; }
  uint64_t issued() const { return sequence_; }

 private:
  std::string coordinator_id_;
  uint64_t incarnation_;
  Entropy& entropy_;
  uint64_t sequence_ = 0;
};

// The parts of a txid in the issuer's format; nullopt for anything else
// (an older format, a made-up string).
std::optional<TxidParts> ParseTxid(std::string_view txid);

}  // namespace commitd::coordinator
