#include "tests/sim/adversary.h"

#include <cstdio>
#include <cstdlib>

#include "common/wire.h"
#include "coordinator/txid_issuer.h"

namespace commitd::sim {
namespace {

// No force this close to a replaced log: a request delayed (up to 1 s of
// outlier) or duplicated in the network could reach the new, empty log.
constexpr int64_t kWipeQuietMs = 1'500;
constexpr const char* kNowhere = "sim://nowhere";

bool Definite(const Response& r) {
  return (r.status == 200 || r.status == 409) && r.body.is_object() && r.body.contains("txid") &&
         r.body["txid"].is_string() && r.body.value("outcome", "") != "pending";
}

nlohmann::json Op(const std::string& procedure, nlohmann::json args) {
  return {{"procedure", procedure}, {"args", std::move(args)}};
}

}  // namespace

const char* Adversary::NameOf(Actor a) {
  switch (a) {
    case Actor::kQueryForged: return "query-forged";
    case Actor::kQueryOld: return "query-old";
    case Actor::kForceForged: return "force-forged";
    case Actor::kReplayKey: return "replay-key";
    case Actor::kStartWithTxid: return "start-with-txid";
    case Actor::kOutsiderMessage: return "outsider-message";
    case Actor::kOutsiderPrepare: return "outsider-prepare";
    case Actor::kClockBack: return "clock-back";
    case Actor::kWipeLog: return "wipe-log";
    case Actor::kOutsiderAbortRunning: return "outsider-abort-running";
    case Actor::kOutsiderCommitRunning: return "outsider-commit-running";
    case Actor::kOutsiderPrecommitRunning: return "outsider-precommit-running";
    case Actor::kOutsiderPrepareUnknown: return "outsider-prepare-unknown";
  }
  return "?";
}

Adversary::Adversary(Context& ctx, AdversaryTargets targets, bool outsider, std::string only)
    : ctx_(ctx), caller_(ctx, kNode), targets_(std::move(targets)), outsider_(outsider), only_(std::move(only)) {
  for (const auto& [bank, ids] : targets_.accounts) banks_.push_back(bank);
  ApiCaller::AddCallingNode(ctx_, kNode);
  // The coordinator outsider-prepare-unknown names: no process answers there.
  ctx_.network.AddNode(NodeOf(kNowhere), [](const Request&, Responder) {});
  ctx_.network.Crash(NodeOf(kNowhere));
  if (only_.empty() || only_ == "force-after-presumed") {
    ctx_.on_presumed_abort = [this](const std::string& participant, const std::string& txid,
                                    const std::string& coordinator_url) {
      OnPresumedAbort(participant, txid, coordinator_url);
    };
  }
}

void Adversary::Plan(int64_t from_ms, int64_t until_ms) {
  std::vector<Actor> actors = {Actor::kQueryForged,     Actor::kQueryOld,        Actor::kForceForged,
                               Actor::kReplayKey,       Actor::kStartWithTxid,   Actor::kOutsiderMessage,
                               Actor::kOutsiderPrepare, Actor::kClockBack};
  if (targets_.coordinators.size() == 1) actors.push_back(Actor::kWipeLog);
  if (outsider_) {
    for (Actor a : {Actor::kOutsiderAbortRunning, Actor::kOutsiderCommitRunning, Actor::kOutsiderPrecommitRunning,
                    Actor::kOutsiderPrepareUnknown}) {
      actors.push_back(a);
    }
  }
  for (Actor a : actors) {
    if (!only_.empty() && only_ != NameOf(a)) continue;
    // The coordinator's restarts once a seed; the rest 1-3 times.
    const int64_t times = a == Actor::kClockBack || a == Actor::kWipeLog ? 1 : ctx_.random.Uniform(1, 3);
    for (int64_t i = 0; i < times; ++i) {
      const int64_t at = ctx_.random.Uniform(from_ms, until_ms);
      if (a == Actor::kWipeLog) wipe_planned_ms_ = at;
      ctx_.scheduler.At(at, kNode, [this, a] {
        if (!targets_.healed()) Act(a);
      });
    }
  }
}

void Adversary::Call(const std::string& to, Request request, std::function<void(const Response&)> on_answer) {
  caller_.Call(to, std::move(request), std::move(on_answer));
}

std::string Adversary::Pick(const std::vector<std::string>& from) {
  return from[ctx_.random.Index(from.size())];
}
std::string Adversary::Bank() { return Pick(banks_); }
std::string Adversary::Coordinator() { return Pick(targets_.coordinators); }

// A txid in the issuer's format that nobody issued: a seen txid's
// coordinator and incarnation with a later (or the same) sequence number and
// a random part of our own, or the next incarnation's first txid.
std::string Adversary::ForgedTxid() {
  std::string coordinator = Coordinator();
  uint64_t incarnation = 1, sequence = 1;
  const std::vector<std::string> seen = ctx_.checker.Txids();
  if (!seen.empty()) {
    if (auto parts = coordinator::ParseTxid(Pick(seen))) {
      coordinator = parts->coordinator;
      incarnation = parts->incarnation;
      sequence = parts->sequence + static_cast<uint64_t>(ctx_.random.Uniform(0, 3));
      if (ctx_.random.Chance(0.25)) {
        ++incarnation;
        sequence = 1;
      }
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(ctx_.random.Next()));
  std::string txid = coordinator + "-" + std::to_string(incarnation) + "-" + std::to_string(sequence) + "-" + hex;
  forged_.insert(txid);
  return txid;
}

std::string Adversary::OldTxid(bool resolved_only) {
  std::vector<std::string> candidates;
  for (const auto& txid : ctx_.checker.Txids()) {
    if (!resolved_only || ctx_.checker.Resolved(txid)) candidates.push_back(txid);
  }
  return candidates.empty() ? "" : Pick(candidates);
}

std::string Adversary::RunningTxid() {
  std::vector<std::string> candidates;
  for (const auto& txid : ctx_.checker.Txids()) {
    if (!ctx_.checker.Resolved(txid)) candidates.push_back(txid);
  }
  return candidates.empty() ? "" : Pick(candidates);
}

// A transfer between two banks, as the client sends it: the first and the
// last, or with three banks two drawn at random (no draw with two: those runs
// replay as before).
nlohmann::json Adversary::Transfer(int64_t amount) {
  std::string from_bank = banks_.front(), to_bank = banks_.back();
  if (banks_.size() > 2) {
    const auto [from_index, to_index] = ctx_.random.DistinctPair(banks_.size());
    from_bank = banks_[from_index];
    to_bank = banks_[to_index];
  }
  const std::string from = Pick(targets_.accounts[from_bank]), to = Pick(targets_.accounts[to_bank]);
  return {{"protocol", ctx_.protocol},
          {"timeout_ms", ctx_.random.Uniform(100, 3000)},
          {"branches",
           {{{"participant", from_bank},
             {"ops", {Op("debit", {{"account", from}, {"amount", amount}}),
                      Op("journal", {{"account", from}, {"delta", -amount}})}}},
            {{"participant", to_bank},
             {"ops", {Op("credit", {{"account", to}, {"amount", amount}}),
                      Op("journal", {{"account", to}, {"delta", amount}})}}}}}};
}

void Adversary::Act(Actor a) {
  ++actions_;
  ctx_.Log(kNode, std::string("ADVERSARY ") + NameOf(a));
  switch (a) {
    case Actor::kQueryForged:
      QueryTxid(ForgedTxid(), true, ctx_.random.Chance(0.5));
      return;
    case Actor::kQueryOld:
      if (std::string txid = OldTxid(false); !txid.empty()) QueryTxid(txid, false, false);
      return;
    case Actor::kForceForged: {
      // Two operators, opposite outcomes, one never-issued txid, one instant.
      // Not around a replaced log: the two could reach different logs, each
      // first, and a heuristic commit an agent answers already_aborted is
      // redelivered for ever (docs/simulation.md, "What the adversary found").
      if (wipe_planned_ms_ >= 0 && std::abs(ctx_.now() - wipe_planned_ms_) < kWipeQuietMs) return;
      const std::string txid = ForgedTxid();
      const std::string to = Coordinator();
      const std::string bank = Bank();
      auto forced = std::make_shared<std::vector<std::string>>();
      const int64_t sent_ms = ctx_.now();
      for (const char* outcome : {"commit", "abort"}) {
        Call(to,
             Request{"POST", "/v1/admin/transactions/" + txid + "/force",
                     {{"outcome", outcome}, {"participants", {{{"name", bank}}}}}},
             [this, txid, forced, sent_ms](const Response& r) {
               if (r.status != 200 || !r.body.is_object() || !r.body.value("forced", false)) return;
               if (wiped_at_ms_ >= sent_ms) return;  // each may have met another log
               forced->push_back(r.body.value("outcome", ""));
               if (forced->size() == 2 && (*forced)[0] != (*forced)[1]) {
                 ctx_.checker.Fail("first decision wins", "forces of " + txid + " both won: " + (*forced)[0] +
                                                              " and " + (*forced)[1]);
               }
             });
      }
      return;
    }
    case Actor::kReplayKey:
      ReplayKey();
      return;
    case Actor::kStartWithTxid: {
      const std::string old = OldTxid(false);
      if (old.empty()) return;
      nlohmann::json body = Transfer(1);
      body["txid"] = old;
      Call(Coordinator(), Request{"POST", "/v1/transactions", std::move(body)}, [this, old](const Response& r) {
        if (r.status == 400) return;
        if (r.body.is_object() && r.body.value("txid", "") == old) {
          ctx_.checker.Fail("txid started once", "a request naming " + old + " started it again (HTTP " +
                                                     std::to_string(r.status) + ")");
        }
      });
      return;
    }
    case Actor::kOutsiderMessage: {
      static const char* kWhat[] = {"commit", "abort", "precommit"};
      const std::string what = kWhat[ctx_.random.Uniform(0, 2)];
      std::string txid = ctx_.random.Chance(0.5) ? OldTxid(true) : "";
      std::string bank = Bank();
      if (txid.empty()) {
        txid = ForgedTxid();
      } else {
        auto branches = ctx_.checker.BranchesOf(txid);
        bank = Pick(std::vector<std::string>(branches.begin(), branches.end()));
      }
      SendToAgent(what, txid, bank);
      return;
    }
    case Actor::kOutsiderPrepare:
      OutsiderPrepare(UrlOf(Coordinator()));
      return;
    case Actor::kClockBack:
      targets_.restart(Coordinator(), ctx_.random.Uniform(1'000, 600'000), false, ctx_.random.Uniform(1, 3000));
      return;
    case Actor::kWipeLog:
      wiped_at_ms_ = ctx_.now();
      targets_.restart(targets_.coordinators.front(), 0, true, ctx_.random.Uniform(1, 3000));
      return;
    case Actor::kOutsiderAbortRunning:
    case Actor::kOutsiderCommitRunning:
    case Actor::kOutsiderPrecommitRunning: {
      const std::string txid = RunningTxid();
      if (txid.empty()) return;
      auto branches = ctx_.checker.BranchesOf(txid);
      const std::string what = a == Actor::kOutsiderAbortRunning    ? "abort"
                               : a == Actor::kOutsiderCommitRunning ? "commit"
                                                                    : "precommit";
      SendToAgent(what, txid, Pick(std::vector<std::string>(branches.begin(), branches.end())));
      return;
    }
    case Actor::kOutsiderPrepareUnknown:
      OutsiderPrepare(kNowhere);
      return;
  }
}

// As a participant asking (?participant=), naming the coordinator's current
// log (name_log: as an agent holding a record of it would) or none.
void Adversary::QueryTxid(const std::string& txid, bool forged, bool name_log) {
  std::string to = Coordinator();
  if (auto parts = coordinator::ParseTxid(txid)) {
    for (const auto& c : targets_.coordinators) {
      if (c == parts->coordinator) to = c;
    }
  }
  std::string target = "/v1/transactions/" + txid + "?participant=" + Bank();
  if (const std::string log_id = name_log ? targets_.log_id_of(to) : ""; !log_id.empty()) {
    target += "&log_id=" + log_id;
  }
  Call(to, Request{"GET", std::move(target), nullptr},
       [this, txid, forged](const Response& r) {
         if (r.status != 200 || !r.body.is_object()) return;
         const std::string outcome = r.body.value("outcome", "");
         if (forged && outcome == "committed") {
           ctx_.checker.Fail("unissued txid", txid + ", never issued, was reported committed");
         }
         if (!forged && (outcome == "committed" || outcome == "aborted")) {
           ctx_.checker.OnOutcomeTold(txid, outcome == "committed");
         }
       });
}

void Adversary::ReplayKey() {
  const std::string key = "mallory-" + std::to_string(++next_key_);
  const std::string to = Coordinator();
  Request first{"POST", "/v1/transactions", Transfer(ctx_.random.Uniform(1, 20)), {{"idempotency-key", key}}};
  const int64_t sent_ms = ctx_.now();
  Call(to, std::move(first), [this, key, to, sent_ms](const Response& r) {
    std::string txid;
    if (Definite(r)) {
      txid = r.body["txid"].get<std::string>();
      ctx_.checker.OnOutcomeTold(txid, r.status == 200);
    }
    const int64_t answered_ms = sent_ms;
    ctx_.scheduler.After(ctx_.random.Uniform(200, 5000), kNode, [this, key, to, txid, answered_ms] {
      Request again{"POST", "/v1/transactions", Transfer(ctx_.random.Uniform(21, 40)), {{"idempotency-key", key}}};
      Call(to, std::move(again), [this, key, txid, answered_ms](const Response& r) {
        if (!Definite(r)) return;
        const std::string second = r.body["txid"].get<std::string>();
        ctx_.checker.OnOutcomeTold(second, r.status == 200);
        // A log replaced since the first request forgets its keys: a new
        // transaction is all it can do.
        const bool forgotten = wiped_at_ms_ >= answered_ms;
        if (!txid.empty() && second != txid && !forgotten) {
          ctx_.checker.Fail("idempotency", "Idempotency-Key " + key + " answered " + txid + ", then " + second);
        }
      });
    });
  });
}

// A made-up transaction prepared straight at an agent: a credit of 0 and a
// journal row of 0 (its commit changes no balance), naming coordinator_url.
void Adversary::OutsiderPrepare(const std::string& coordinator_url) {
  const std::string bank = Bank();
  const std::string account = Pick(targets_.accounts[bank]);
  wire::PrepareRequest prepare;
  prepare.txid = "mallory-" + std::to_string(++next_made_up_) + "-" + ForgedTxid();
  prepare.protocol = ctx_.protocol == "3pc" ? wire::Protocol::k3pc : wire::Protocol::k2pc;
  prepare.participant = bank;
  prepare.coordinator = coordinator_url;
  prepare.log_id = coordinator_url == kNowhere ? "" : targets_.log_id_of(NodeOf(coordinator_url));
  prepare.timeout_ms = ctx_.random.Uniform(50, 2000);
  for (const auto& op : {Op("credit", {{"account", account}, {"amount", 0}}),
                         Op("journal", {{"account", account}, {"delta", 0}})}) {
    auto parsed = wire::ParseOp(op, "ops");
    if (parsed.ok()) prepare.ops.push_back(std::move(parsed).value());
  }
  prepare.participants.push_back({bank, UrlOf(bank)});
  const std::string txid = prepare.txid;
  ctx_.checker.OnBranch(txid, bank);
  Call(bank, Request{"POST", "/v1/prepare", wire::ToJson(prepare)}, [this, txid, bank](const Response&) {
    // Its abort is harmless (its coordinator can only presume abort too); its
    // commit contradicts that coordinator's decision, which only an agent
    // rule could refuse: --adversary-outsider.
    const int64_t then = ctx_.random.Uniform(outsider_ ? 0 : 1, 2);
    if (then == 2) return;  // left to its deadline
    ctx_.scheduler.After(ctx_.random.Uniform(0, 500), kNode,
                         [this, txid, bank, then] { SendToAgent(then == 0 ? "commit" : "abort", txid, bank); });
  });
}

void Adversary::SendToAgent(const std::string& what, const std::string& txid, const std::string& bank) {
  Call(bank, Request{"POST", "/v1/" + what, {{"txid", txid}}}, nullptr);
}

void Adversary::OnPresumedAbort(const std::string& participant, const std::string& txid,
                                const std::string& coordinator_url) {
  const std::string to = NodeOf(coordinator_url);
  bool ours = false;
  for (const auto& c : targets_.coordinators) ours = ours || c == to;
  if (!ours || targets_.healed() || force_after_presumed_left_ <= 0 || !ctx_.random.Chance(0.5)) return;
  // Not around a replaced log: the force could reach the new, empty log,
  // which knows nothing of the abort the old one recorded.
  if (wipe_planned_ms_ >= 0 && std::abs(ctx_.now() - wipe_planned_ms_) < kWipeQuietMs) return;
  --force_after_presumed_left_;
  ctx_.Log(kNode, "ADVERSARY force-after-presumed " + txid);
  nlohmann::json participants = nlohmann::json::array({{{"name", participant}}});
  for (const auto& b : ctx_.checker.BranchesOf(txid)) {
    if (b != participant) participants.push_back({{"name", b}});
  }
  Call(to, Request{"POST", "/v1/admin/transactions/" + txid + "/force",
                   {{"outcome", "commit"}, {"participants", std::move(participants)}}},
       nullptr);
}

}  // namespace commitd::sim
