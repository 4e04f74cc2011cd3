#include <chrono>
#include <cstdio>
#include <thread>

#include "tools/commitctl/commands.h"
#include "tools/commitctl/transaction_view.h"

namespace commitd::commitctl {
namespace {

// POST /v1/admin/retry-now; the number of transactions still being driven.
Result<int64_t> RetryNow(Context& ctx) {
  auto reply = ctx.client->Call(ctx.Coordinator(), "POST", "/v1/admin/retry-now", "{}");
  if (!reply.ok()) return reply.status();
  if (reply->status / 100 != 2) {
    return Status::Unavailable("coordinator refused retry-now (HTTP " + std::to_string(reply->status) +
                               "): " + ErrorMessage(*reply));
  }
  return IntOr(reply->body, "active", 0);
}

}  // namespace

int RunRetryNow(Context& ctx) {
  auto active = RetryNow(ctx);
  if (!active.ok()) {
    PrintError(active.status().message());
    return kExitTrouble;
  }
  if (ctx.json) {
    PrintJson({{"active", *active}});
  } else {
    std::printf("coordinator retries every unfinished delivery now; %lld transaction(s) active\n",
                static_cast<long long>(*active));
    if (*active > 0) std::printf("next: `commitctl status` to watch them finish\n");
  }
  return kExitOk;
}

int RunResolve(Context& ctx) {
  using Clock = std::chrono::steady_clock;
  if (ctx.flags->Has("force")) return RunForce(ctx);
  if (ctx.flags->Has("yes")) {
    PrintError("--yes only confirms --force (see commitctl resolve --help)");
    return kExitUsage;
  }
  if (ctx.args.size() != 1) {
    PrintError("resolve needs exactly one TXID (see commitctl resolve --help)");
    return kExitUsage;
  }
  double wait_s = 10;
  if (auto text = ctx.flags->Get("wait-s")) {
    try {
      wait_s = std::stod(*text);
    } catch (const std::exception&) {
      wait_s = -1;
    }
    if (wait_s < 0) {
      PrintError("--wait-s: expected a number of seconds >= 0, got '" + *text + "'");
      return kExitUsage;
    }
  }
  const std::string& txid = ctx.args[0];
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait_s));

  auto tx = GetTransaction(ctx, txid);
  if (!tx.ok()) {
    PrintError(tx.status().message());
    return kExitTrouble;
  }
  const bool was_finished = IsFinished(*tx);
  bool pushed = false;
  if (!was_finished && !IsContradicted(*tx)) {  // no retry ends a contradicted one
    auto active = RetryNow(ctx);
    if (!active.ok()) {
      PrintError(active.status().message());
      return kExitTrouble;
    }
    pushed = true;
    if (wait_s > 0) PrintWaiting(wait_s, txid + " to finish (every participant acknowledging the decision)");
    while (!IsFinished(*tx) && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      auto next = GetTransaction(ctx, txid);
      if (!next.ok()) {
        PrintError(next.status().message());
        return kExitTrouble;
      }
      tx = std::move(next);
    }
  }
  const bool finished = IsFinished(*tx);
  const std::string outcome = tx->status == 404 ? "aborted" : Str(tx->body, "outcome");
  const double waited = std::chrono::duration<double>(Clock::now() - start).count();

  if (ctx.json) {
    PrintJson({{"txid", txid},
               {"finished", finished},
               {"outcome", outcome},
               {"was_finished", was_finished},
               {"retry_requested", pushed},
               {"waited_s", waited},
               {"transaction", tx->body}});
  } else if (tx->status == 404) {
    std::printf("%s: commitd has no record of it, so it is aborted (presumed abort); "
                "participants holding it prepared abort when they ask. Check the txid if you expected one.\n",
                txid.c_str());
  } else if (was_finished) {
    std::printf("%s: already finished, outcome %s; nothing to do\n", txid.c_str(), outcome.c_str());
  } else if (finished) {
    std::printf("%s: finished after a retry, outcome %s (%.1fs)\n", txid.c_str(), outcome.c_str(), waited);
  } else {
    PrintTransaction(tx->body);
    std::printf("%s: still %s (outcome %s) after %.1fs.\n", txid.c_str(), Str(tx->body, "state").c_str(),
                outcome.c_str(), waited);
    if (outcome == "pending") {
      std::printf("next: it is not decided yet; it aborts by itself at its prepare deadline, then try again\n");
    } else if (IsContradicted(*tx)) {
      PrintContradictedNext(txid);
    } else {
      std::printf("next: check each participant above (last_error), that its agent is up "
                  "(`commitctl status`), and what it holds (`commitctl in-doubt`); commitd keeps retrying\n");
    }
  }
  return finished ? kExitOk : kExitTrouble;
}

}  // namespace commitd::commitctl
