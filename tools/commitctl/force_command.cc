// commitctl resolve TXID --force commit|abort [--yes]: a heuristic decision,
// for when the coordinator's decision log was lost.
#include <chrono>
#include <cstdio>
#include <thread>

#include "tools/commitctl/commands.h"
#include "tools/commitctl/transaction_view.h"

namespace commitd::commitctl {
namespace {

struct Holder {
  Participant participant;
  nlohmann::json held;  // the agent's GET /v1/transactions entry
};

// Every asked participant that holds txid; an error if one cannot be asked,
// since a plan missing a holder would leave it in doubt.
Result<std::vector<Holder>> FindHolders(Context& ctx, const std::string& txid) {
  auto participants = ParticipantsToAsk(ctx);
  if (!participants.ok()) return participants.status();
  std::vector<Holder> holders;
  for (const Participant& p : *participants) {
    auto reply = ctx.client->Call(ctx.Agent(p), "GET", "/v1/transactions?state=prepared");
    if (reply.ok() && reply->status != 200) {
      reply = Status::Unavailable("participant " + p.name + " answered HTTP " + std::to_string(reply->status) + ": " +
                                  ErrorMessage(*reply));
    }
    if (!reply.ok()) {
      return Status::Unavailable(reply.status().message() +
                                 "; every participant must answer before a forced decision is planned (or name "
                                 "exactly the ones to ask with --participant NAME=URL)");
    }
    for (const auto& t : ArrayOf(reply->body, "transactions")) {
      if (Str(t, "txid") == txid) holders.push_back({p, t});
    }
  }
  return holders;
}

void PrintPlan(const std::string& txid, bool commit, const std::vector<Holder>& holders, const nlohmann::json& skip) {
  std::printf("plan: have each participant below adopt %s (from then on it refuses the decisions of the log it was "
              "prepared under), then record a heuristic %s in the coordinator's decision log, marked heuristic "
              "(`commitctl tx show` and the metric commitd_transactions_heuristic_total keep showing it), and "
              "deliver it. The participants their records name are asked too (one that already committed holds "
              "nothing, so it is not listed). If a participant does not answer, or already did the other outcome, "
              "nothing is recorded and the coordinator says which:\n",
              txid.c_str(), commit ? "COMMIT" : "ABORT");
  const int64_t now = WallNowMs();
  for (const Holder& h : holders) {
    const int64_t deadline = IntOr(h.held, "deadline_ms", 0);
    std::string when = deadline > now ? "deadline in " + FormatAge(deadline - now)
                                      : "deadline passed " + FormatAge(now - deadline) + " ago";
    std::printf("  %-12s %-28s holds it %s (age %s, %s)\n", h.participant.name.c_str(), h.participant.url.c_str(),
                Str(h.held, "state").c_str(), FormatAge(IntOr(h.held, "age_ms", 0)).c_str(), when.c_str());
  }
  for (const auto& name : skip) {
    std::printf("  %-12s not asked, not sent the decision (--skip-participants: gone for good)\n",
                name.get<std::string>().c_str());
  }
  if (commit) {
    std::printf("warning: the coordinator has no record of %s, so it answers \"aborted\" (presumed abort) to a "
                "participant that asks about it, unless that participant prepared it under another decision log. "
                "Force commit only if you know every participant of %s voted yes (e.g. the coordinator lost its "
                "decision log after deciding commit). A participant that already aborted it makes the force "
                "refused.\n",
                txid.c_str(), txid.c_str());
  }
}

// Reports why nothing (more) was done; returns code.
int Refuse(const Context& ctx, nlohmann::json& report, const std::string& why, int code) {
  report["refused"] = why;
  if (ctx.json) {
    PrintJson(report);
  } else {
    PrintError(why);
  }
  return code;
}

// After the coordinator took a forced decision: waits up to wait_s for every
// participant to acknowledge it, then reports.
int WaitForDelivery(Context& ctx, const std::string& txid, double wait_s, nlohmann::json& report) {
  using Clock = std::chrono::steady_clock;
  auto refuse = [&](const std::string& why, int code) { return Refuse(ctx, report, why, code); };
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait_s));
  auto tx = GetTransaction(ctx, txid);
  if (tx.ok() && !IsFinished(*tx) && wait_s > 0) {
    PrintWaiting(wait_s, "every holder of " + txid + " to acknowledge the forced decision");
  }
  while (tx.ok() && !IsFinished(*tx) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    tx = GetTransaction(ctx, txid);
  }
  if (!tx.ok()) return refuse(tx.status().message(), kExitTrouble);
  const bool finished = IsFinished(*tx);
  report["finished"] = finished;
  report["transaction"] = tx->body;
  if (ctx.json) {
    PrintJson(report);
  } else {
    std::printf("recorded: %s is %s (heuristic)%s\n", txid.c_str(), Str(tx->body, "outcome").c_str(),
                finished ? ", every participant acknowledged it" : "");
    if (!finished) {
      PrintTransaction(tx->body);
      std::printf("next: not every participant acknowledged it yet; commitd keeps delivering. Watch it with "
                  "`commitctl tx show %s`; a participant that refuses (last_error) needs repair by hand.\n",
                  txid.c_str());
    }
  }
  return finished ? kExitOk : kExitTrouble;
}

// Asks the coordinator to record the forced decision (body), then waits for its delivery.
int PostForce(Context& ctx, const std::string& txid, const nlohmann::json& body, double wait_s,
              nlohmann::json& report) {
  auto reply = ctx.client->Call(ctx.Coordinator(), "POST", "/v1/admin/transactions/" + http::PercentEncode(txid) +
                                                               "/force", body.dump());
  if (!reply.ok()) return Refuse(ctx, report, reply.status().message(), kExitTrouble);
  if (reply->status == 409) {
    return Refuse(ctx, report, "the coordinator refused: " + ErrorMessage(*reply), kExitTrouble);
  }
  if (reply->status != 200) {
    return Refuse(ctx, report,
                  "coordinator answered the force with HTTP " + std::to_string(reply->status) + ": " +
                      ErrorMessage(*reply),
                  kExitTrouble);
  }
  report["forced"] = IsTrue(reply->body, "forced");
  return WaitForDelivery(ctx, txid, wait_s, report);
}

}  // namespace

int RunForce(Context& ctx) {
  if (ctx.args.size() != 1) {
    PrintError("resolve --force needs exactly one TXID (see commitctl resolve --help)");
    return kExitUsage;
  }
  const std::string force = *ctx.flags->Get("force");
  if (force != "commit" && force != "abort") {
    PrintError("--force: expected commit or abort, got '" + force + "'");
    return kExitUsage;
  }
  double wait_s = 10;
  if (auto text = ctx.flags->Get("wait-s")) {
    char* end = nullptr;
    wait_s = std::strtod(text->c_str(), &end);
    if (text->empty() || *end != '\0' || wait_s < 0) {
      PrintError("--wait-s: expected a number of seconds >= 0, got '" + *text + "'");
      return kExitUsage;
    }
  }
  // Participants gone for good: the coordinator asks every participant the
  // holders' records name, but these.
  nlohmann::json skip = nlohmann::json::array();
  if (auto text = ctx.flags->Get("skip-participants")) {
    for (std::string& name : CommaItems(*text)) {
      if (name.empty()) {
        PrintError("--skip-participants: expected NAME[,NAME...], got '" + *text + "'");
        return kExitUsage;
      }
      skip.push_back(std::move(name));
    }
  }
  const std::string& txid = ctx.args[0];
  const bool commit = force == "commit";
  const std::string wanted = commit ? "committed" : "aborted";
  nlohmann::json report = {{"txid", txid}, {"force", force}, {"forced", false}};
  auto refuse = [&](const std::string& why, int code) { return Refuse(ctx, report, why, code); };

  auto tx = GetTransaction(ctx, txid);
  if (!tx.ok()) return refuse(tx.status().message(), kExitTrouble);
  const bool in_doubt = tx->status == 200 && Str(tx->body, "outcome") == "pending" && IsTrue(tx->body, "in_doubt");
  if (tx->status == 200 && !in_doubt) {
    const std::string known = Str(tx->body, "outcome");
    report["coordinator_outcome"] = known;
    if (known == "pending") {
      const bool precommitting = Str(tx->body, "protocol") == "3pc" && Str(tx->body, "state") == "precommitting";
      return refuse(precommitting
                        ? txid + " is not decided yet: its participants voted yes and the coordinator waits for "
                                 "their precommits, which decide it; nothing to force (unless a participant no "
                                 "longer knows it: then `commitctl tx show` says in doubt)"
                        : txid + " is not decided yet: the coordinator is collecting its votes (or, after a restart, "
                                 "fencing its participants) and decides it itself; nothing to force",
                    kExitTrouble);
    }
    if (known != wanted) {
      return refuse("the coordinator recorded " + txid + " as " + known + "; refusing to force " + force +
                        ": a heuristic decision may only stand in for a lost decision, never overrule one. "
                        "`commitctl resolve " + txid + "` delivers the recorded one.",
                    kExitTrouble);
    }
    report["transaction"] = tx->body;
    if (ctx.json) {
      PrintJson(report);
    } else {
      std::printf("%s is already decided %s by the coordinator; nothing to force. `commitctl resolve %s` pushes it "
                  "to its participants.\n",
                  txid.c_str(), known.c_str(), txid.c_str());
    }
    return kExitOk;
  }

  if (in_doubt) {
    // 3PC: a participant no longer knows it, so only an operator can settle
    // it; the coordinator holds its record and its participants.
    report["coordinator_outcome"] = "pending";
    report["in_doubt"] = true;
    report["transaction"] = tx->body;
    if (!ctx.flags->Has("yes")) {
      report["refused"] = "not confirmed: --yes missing";
      if (ctx.json) {
        PrintJson(report);
      } else {
        PrintTransaction(tx->body);
        std::printf("%s is in doubt: a participant no longer knows it (state unknown), so its outcome cannot be "
                    "learned from them. Check the participants' data, then run again with --yes to record %s.\n"
                    "nothing changed\n",
                    txid.c_str(), force.c_str());
      }
      return kExitUsage;
    }
    return PostForce(ctx, txid, {{"outcome", force}, {"participants", nlohmann::json::array()}}, wait_s, report);
  }

  auto holders = FindHolders(ctx, txid);
  if (!holders.ok()) return refuse(holders.status().message(), kExitTrouble);
  nlohmann::json plan = nlohmann::json::array();
  nlohmann::json participants = nlohmann::json::array();
  for (const Holder& h : *holders) {
    plan.push_back({{"participant", h.participant.name}, {"url", h.participant.url}, {"held", h.held}});
    participants.push_back({{"name", h.participant.name}, {"url", h.participant.url}});
  }
  report["plan"] = plan;
  if (!skip.empty()) report["skip_participants"] = skip;
  if (holders->empty()) {
    if (!commit) {
      report["coordinator_outcome"] = "aborted";
      if (ctx.json) {
        PrintJson(report);
      } else {
        std::printf("no participant holds %s and the coordinator has no record of it: it is aborted (presumed "
                    "abort); nothing to force\n",
                    txid.c_str());
      }
      return kExitOk;
    }
    return refuse("no participant holds " + txid + " prepared, so there is nothing to commit (check the txid, and "
                  "`commitctl in-doubt`)",
                  kExitTrouble);
  }

  for (const Holder& h : *holders) {
    // A conflict record exists only because a commit was delivered to it:
    // the transaction was decided commit, whatever this log lost.
    const bool conflicted = h.held.is_object() && h.held.contains("state") && h.held["state"] == "conflict";
    if (!commit && conflicted) {
      return refuse(h.participant.name + " holds " + txid + " in state conflict, which only a delivered commit "
                    "produces: it was decided commit, so forcing abort would split it. Repair the conflicting row "
                    "(docs/operations.md, \"a changeset conflict\") or force commit instead",
                    kExitTrouble);
    }
  }

  if (!ctx.flags->Has("yes")) {
    report["refused"] = "not confirmed: --yes missing";
    if (ctx.json) {
      PrintJson(report);
    } else {
      PrintPlan(txid, commit, *holders, skip);
      std::printf("nothing changed: run again with --yes to do it\n");
    }
    return kExitUsage;
  }

  if (!ctx.json) PrintPlan(txid, commit, *holders, skip);
  return PostForce(ctx, txid, {{"outcome", force}, {"participants", participants}, {"skip_participants", skip}},
                   wait_s, report);
}

}  // namespace commitd::commitctl
