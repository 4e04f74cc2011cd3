#include "tests/sim/client.h"

#include <tuple>
#include <utility>

namespace commitd::sim {
namespace {

constexpr char kClient[] = "client";
constexpr int64_t kClientTimeoutMs = 30'000;
// A client that retries (a group's, or --client-retries) gives an attempt this
// long; a group's forward to an unreachable leader gives up after
// request_timeout_ms (5 s).
constexpr int64_t kRetryingClientTimeoutMs = 10'000;
constexpr int kMaxAttempts = 30;

nlohmann::json Op(const std::string& procedure, nlohmann::json args) {
  return {{"procedure", procedure}, {"args", std::move(args)}};
}

}  // namespace

Client::Client(Context& ctx, std::vector<std::string> coordinators,
               std::map<std::string, std::vector<std::string>> accounts)
    : ctx_(ctx), coordinators_(std::move(coordinators)), accounts_(std::move(accounts)) {
  for (const auto& [bank, ids] : accounts_) banks_.push_back(bank);
  ctx_.network.AddNode(kClient, [](const Request&, Responder respond) { respond({404, nullptr}); });
}

void Client::SubmitAt(int64_t at_ms, int64_t timeout_ms) {
  ctx_.scheduler.At(at_ms, kClient, [this, timeout_ms] { Submit(timeout_ms); });
}

void Client::Submit(int64_t timeout_ms) {
  Random& rng = ctx_.random;
  // Drawn only with three banks or more: runs of two replay as before.
  if (banks_.size() >= 3 && rng.Chance(1.0 / 3)) {
    SubmitSplit(timeout_ms);
    return;
  }
  const auto [from_index, to_index] = rng.DistinctPair(banks_.size());
  const std::string& from_bank = banks_[from_index];
  const std::string& to_bank = banks_[to_index];
  const auto& from_ids = accounts_[from_bank];
  const auto& to_ids = accounts_[to_bank];
  const std::string from = from_ids[rng.Index(from_ids.size())];
  const std::string to = to_ids[rng.Index(to_ids.size())];
  const int64_t amount = rng.Uniform(1, 80);

  nlohmann::json debit = {{"participant", from_bank},
                          {"ops", {Op("debit", {{"account", from}, {"amount", amount}}),
                                   Op("journal", {{"account", from}, {"delta", -amount}})}}};
  if (rng.Chance(0.5)) debit["ops"].push_back(Op("balance", {{"account", from}}));
  nlohmann::json credit = {{"participant", to_bank},
                           {"ops", {Op("credit", {{"account", to}, {"amount", amount}}),
                                    Op("journal", {{"account", to}, {"delta", amount}})}}};
  nlohmann::json branches = nlohmann::json::array();
  if (rng.Chance(0.5)) {
    branches = {std::move(debit), std::move(credit)};
  } else {
    branches = {std::move(credit), std::move(debit)};
  }
  const uint64_t n = ++submitted_;
  Send("transfer #" + std::to_string(n) + " " + std::to_string(amount) + " " + from_bank + "/" + from + " -> " +
           to_bank + "/" + to,
       n, timeout_ms, std::move(branches));
}

// One debit at a bank, credited in two parts at two others: three branches,
// in a random order.
void Client::SubmitSplit(int64_t timeout_ms) {
  Random& rng = ctx_.random;
  std::vector<std::string> banks = banks_;
  rng.Shuffle(banks);
  auto account = [&](const std::string& bank) {
    const auto& ids = accounts_[bank];
    return ids[rng.Index(ids.size())];
  };
  const std::string from = account(banks[0]), to1 = account(banks[1]), to2 = account(banks[2]);
  const int64_t amount = rng.Uniform(2, 80);
  const int64_t part = rng.Uniform(1, amount - 1);
  nlohmann::json branches = nlohmann::json::array();
  branches.push_back({{"participant", banks[0]},
                      {"ops", {Op("debit", {{"account", from}, {"amount", amount}}),
                               Op("journal", {{"account", from}, {"delta", -amount}})}}});
  for (const auto& [bank, to, credit] : {std::tuple{banks[1], to1, part}, std::tuple{banks[2], to2, amount - part}}) {
    branches.push_back({{"participant", bank},
                        {"ops", {Op("credit", {{"account", to}, {"amount", credit}}),
                                 Op("journal", {{"account", to}, {"delta", credit}})}}});
  }
  rng.Shuffle(branches);
  const uint64_t n = ++submitted_;
  Send("split #" + std::to_string(n) + " " + std::to_string(amount) + " " + banks[0] + "/" + from + " -> " +
           banks[1] + "/" + to1 + " " + std::to_string(part) + " + " + banks[2] + "/" + to2 + " " +
           std::to_string(amount - part),
       n, timeout_ms, std::move(branches));
}

void Client::Send(std::string what, uint64_t n, int64_t timeout_ms, nlohmann::json branches) {
  ctx_.Log(kClient, "submit " + what);
  auto transfer = std::make_shared<Transfer>();
  transfer->what = std::move(what);
  transfer->request = Request{"POST", "/v1/transactions",
                              {{"protocol", ctx_.protocol}, {"timeout_ms", timeout_ms}, {"branches", std::move(branches)}}};
  for (const auto& b : transfer->request.body["branches"]) transfer->ops_per_branch[b["participant"]] = b["ops"].size();
  if (RetriesWithKey()) {
    transfer->key = "transfer-" + std::to_string(n);
    transfer->request.headers["idempotency-key"] = transfer->key;
  }
  ++in_flight_;
  Attempt(std::move(transfer));
}

bool Client::RetriesWithKey() const { return coordinators_.size() > 1 || ctx_.client_retries; }

void Client::Attempt(std::shared_ptr<Transfer> transfer) {
  const bool group = coordinators_.size() > 1;
  const bool retries = RetriesWithKey();
  ++transfer->attempts;
  const std::string to =
      group ? coordinators_[ctx_.random.Index(coordinators_.size())] : coordinators_.front();
  if (retries) {
    ctx_.Log(kClient, "attempt " + std::to_string(transfer->attempts) + " of " + transfer->what + " -> " + to);
  }
  ctx_.network.Call(kClient, to, transfer->request, retries ? kRetryingClientTimeoutMs : kClientTimeoutMs,
                    [this, transfer, retries](Result<Response> r) {
                      LoseAnswer(*transfer, r);
                      if (OnAnswer(*transfer, r) || !retries || transfer->attempts >= kMaxAttempts) {
                        if (retries && transfer->attempts >= kMaxAttempts && !r.ok()) {
                          ctx_.Log(kClient, "gave up on " + transfer->what);
                        }
                        --in_flight_;
                        return;
                      }
                      ctx_.scheduler.After(ctx_.random.Uniform(100, 1000), kClient,
                                           [this, transfer] { Attempt(transfer); });
                    });
}

// --client-retries: the connection fails after the coordinator answered, so
// the client notices at once and retries with its key.
void Client::LoseAnswer(const Transfer& transfer, Result<Response>& r) {
  if (!r.ok() || ctx_.lost_answer <= 0 || !ctx_.random.Chance(ctx_.lost_answer)) return;
  ctx_.Log(kClient, "answer lost for " + transfer.what);
  r = Status::Unavailable("the answer was lost on the way");
}

bool Client::OnAnswer(const Transfer& transfer, const Result<Response>& r) {
  const std::string& what = transfer.what;
  if (!r.ok()) {
    ctx_.Log(kClient, "no answer for " + what + ": " + r.status().message());
    return false;
  }
  const std::string txid = r->body.is_object() ? r->body.value("txid", "") : "";
  if ((r->status != 200 && r->status != 409) || txid.empty()) {
    ctx_.Log(kClient, "error for " + what + ": HTTP " + std::to_string(r->status) + " " + r->body.dump());
    return false;
  }
  ++answered_;
  const bool committed = r->status == 200;
  ctx_.Log(kClient, std::string("told ") + (committed ? "committed " : "aborted ") + txid + " for " + what +
                        (committed ? "" : ": " + r->body.value("reason", "")));
  ctx_.checker.OnClientAnswer(txid, committed);
  if (committed) CheckResults(txid, r->body, transfer.ops_per_branch);
  return true;
}

// A committed answer carries, per branch, one array of rows per op, or null
// where the agent no longer knew them (it restarted between its durable
// prepare and its vote); never a wrong count.
void Client::CheckResults(const std::string& txid, const nlohmann::json& body,
                          const std::map<std::string, std::size_t>& ops_per_branch) {
  for (const auto& [participant, ops] : ops_per_branch) {
    const nlohmann::json* results = nullptr;
    if (body.contains("branches") && body["branches"].is_array()) {
      for (const auto& b : body["branches"]) {
        if (b.value("participant", "") == participant && b.contains("results")) results = &b["results"];
      }
    }
    if (results != nullptr && results->is_null()) continue;
    if (results == nullptr || !results->is_array() || results->size() != ops) {
      ctx_.checker.Fail("agreement", "the client's committed answer for " + txid + " has results " +
                                         (results == nullptr ? "missing" : results->dump()) + " for " + participant +
                                         ", which ran " + std::to_string(ops) + " ops");
      return;
    }
  }
}

}  // namespace commitd::sim
