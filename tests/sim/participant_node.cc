#include "tests/sim/participant_node.h"

#include <filesystem>
#include <utility>

namespace commitd::sim {

namespace {

// Exclusive locking, the rollback journal in memory and no fsync: a
// simulated crash does not kill the process (it closes the connection, which
// rolls back what was not committed), so a committed SQLite transaction is
// what "synced" means here. The agent's WAL would only cost time: writing
// every page twice (log, then checkpoint) was the simulator's top cost.
Result<std::unique_ptr<sqlite::Database>> OpenDatabase(const std::string& path, bool create) {
  sqlite::OpenOptions oo;
  oo.create = create;
  oo.wal = false;
  auto db = sqlite::Database::Open(path, oo);
  if (!db.ok()) return db;
  if (Status s = (*db)->Exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF");
      !s.ok()) {
    return s;
  }
  return db;
}

}  // namespace

ParticipantNode::ParticipantNode(std::string name, Context& ctx, std::string db_path,
                                 participant::Procedures procedures, std::vector<std::string> coordinator_urls)
    : name_(std::move(name)),
      ctx_(ctx),
      db_path_(std::move(db_path)),
      procedures_(std::move(procedures)),
      coordinator_urls_(std::move(coordinator_urls)),
      storage_(name_, ctx),
      timers_(ctx.scheduler, name_),
      coordinator_transport_(name_, ctx),
      peer_transport_(name_, ctx) {
  ctx_.network.AddNode(name_, [this](const Request& r, Responder respond) { Handle(r, std::move(respond)); });
  ctx_.network.Crash(name_);
  storage_.set_on_synced([this](sqlite::Database& db) { AfterSync(db); });
}

ParticipantNode::~ParticipantNode() {
  node_.reset();
  store_.reset();
  rm_.reset();
  db_.reset();
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    std::filesystem::remove(db_path_ + suffix, ec);
  }
}

Status ParticipantNode::Create(const std::string& schema_sql, const std::string& seed_sql) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::error_code ec;
    std::filesystem::remove(db_path_ + suffix, ec);
  }
  auto opened = OpenDatabase(db_path_, true);
  if (!opened.ok()) return opened.status();
  auto db = std::move(opened).value();
  if (Status s = db->Exec(schema_sql); !s.ok()) return s;
  if (Status s = db->Exec(seed_sql); !s.ok()) return s;
  Status error;
  sqlite::Statement* stmt = db->Prepare("SELECT id, balance FROM accounts ORDER BY id", &error);
  if (stmt == nullptr) return error;
  while (stmt->Step()) seed_[stmt->Text(0)] = stmt->Int(1);
  return stmt->status();
}

int64_t ParticipantNode::seed_total() const {
  int64_t total = 0;
  for (const auto& [account, balance] : seed_) total += balance;
  return total;
}

// The process boots: open the file and the ResourceManager; the Node
// recovers from the records as commit-agent does.
Status ParticipantNode::Start() {
  ++incarnation_;
  auto opened = OpenDatabase(db_path_, false);
  if (!opened.ok()) return opened.status();
  db_ = std::move(opened).value();
  auto rm = participant::ResourceManager::Open(*db_, procedures_, {});
  if (!rm.ok()) return rm.status();
  rm_ = std::move(rm).value();
  storage_.Attach(db_.get(), [this](sqlite::Database&) {
    if (Status s = rm_->RebuildLocks(); !s.ok()) ctx_.checker.Fail("locks", name_ + ": " + s.message());
  });
  store_ = std::make_unique<participant::SqliteStore>(*rm_, storage_, timers_);
  store_->set_unsafe_commit_without_sync(ctx_.bug == Bug::kCommitWithoutFsync);
  participant::NodeOptions options = participant::NodeOptions::From(ctx_.config, name_, UrlOf(name_), coordinator_urls_);
  options.register_with_coordinators = false;  // the simulated coordinators know every participant's URL
  options.unsafe_accept_not_known_from_any = ctx_.bug == Bug::kAccept404FromNonOwner;
  node_ = std::make_unique<participant::Node>(std::move(options), *store_, coordinator_transport_, peer_transport_,
                                              timers_);
  node_->set_event_log([this](log::Level, std::string_view event, const nlohmann::json& fields) {
    ctx_.Log(name_, std::string(event) + " " + fields.dump());
    if (event == "decision_answer" && ctx_.on_presumed_abort && fields.value("presumed", false) &&
        fields.value("outcome", "") == "aborted") {
      ctx_.on_presumed_abort(name_, fields.value("txid", ""), fields.value("coordinator", ""));
    }
  });
  if (Status s = node_->Start(); !s.ok()) return s;
  up_ = true;
  ctx_.network.Restart(name_);
  ctx_.Log(name_, "START (incarnation " + std::to_string(incarnation_) + ", " + std::to_string(node_->recovered()) +
                      " prepared, " + std::to_string(node_->locks().size()) + " locks)");
  return Status::Ok();
}

void ParticipantNode::Crash() {
  ctx_.Log(name_, "CRASH");
  up_ = false;
  ctx_.network.Crash(name_);
  storage_.Crash();
  node_.reset();
  store_.reset();
  rm_.reset();
  db_.reset();
}

bool ParticipantNode::Settled() {
  if (!up_ || !storage_.idle() || !node_->Held().empty() || node_->locks().size() != 0 || rm_->locks().size() != 0) {
    return false;
  }
  auto records = rm_->LoadPrepared();
  return records.ok() && records->empty();
}

std::string ParticipantNode::Describe() {
  if (!up_) return name_ + " down";
  std::string out = name_ + " up, " + std::to_string(node_->locks().size()) + " lock key(s) held" +
                    (storage_.idle() ? "" : ", storage busy");
  for (const auto& v : node_->Held()) {
    out += "\n    held: " + v.txid + " " + std::string(participant::HeldStateName(v.state)) + " deadline +" + std::to_string(v.deadline_ms - ctx_.now()) +
           " ms, last error: " + v.last_error;
  }
  if (auto records = rm_->LoadPrepared(); records.ok()) {
    for (const auto& r : *records) out += "\n    prepared record: " + r.txid + " " + r.state;
  }
  return out;
}

std::size_t ParticipantNode::InDoubt() {
  if (!up_) return 0;
  std::size_t n = 0;
  for (const auto& v : node_->Held()) {
    using participant::HeldState;
    if (v.state == HeldState::kPrepared || v.state == HeldState::kPrecommitted ||
        v.state == HeldState::kPrecommitting) {
      ++n;
    }
  }
  return n;
}

std::optional<std::string> ParticipantNode::CheckBalances(int64_t* total) {
  Status error;
  sqlite::Statement* stmt = db_->Prepare(
      "SELECT a.id, a.balance, (SELECT COALESCE(SUM(j.delta), 0) FROM journal j WHERE j.account = a.id) "
      "FROM accounts a ORDER BY a.id",
      &error);
  if (stmt == nullptr) return name_ + ": " + error.message();
  int64_t sum = 0;
  std::optional<std::string> problem;
  while (stmt->Step()) {
    const std::string account = stmt->Text(0);
    const int64_t balance = stmt->Int(1);
    const int64_t journal = stmt->Int(2);
    sum += balance;
    auto seed = seed_.find(account);
    if (!problem && (seed == seed_.end() || seed->second + journal != balance)) {
      problem = name_ + " account " + account + " has balance " + std::to_string(balance) + " but seed " +
                std::to_string(seed == seed_.end() ? 0 : seed->second) + " + journal " + std::to_string(journal);
    }
  }
  if (!stmt->status().ok()) return name_ + ": " + stmt->status().message();
  if (total != nullptr) *total = sum;
  return problem;
}

namespace {
Response ErrorOf(int status, const std::string& code, const std::string& message) {
  return {status, {{"error", {{"code", code}, {"message", message}}}}};
}
}  // namespace

// The network's requests (the JSON the simulated coordinators and peers send,
// parsed by the same wire:: parsers as the HTTP adapter's) as Node calls.
void ParticipantNode::Handle(const Request& request, Responder respond) {
  auto reply = [this, respond](participant::NodeReply r) {
    nlohmann::json body = participant::JsonOf(r.body);
    ctx_.Log(name_, "reply " + std::to_string(r.status) + " " + body.dump());
    respond({r.status, std::move(body)});
  };
  if (request.method == "POST" && request.target == "/v1/prepare") {
    auto parsed = wire::ParsePrepareRequest(request.body.dump());
    if (!parsed.ok()) return respond(ErrorOf(400, "invalid_request", parsed.status().message()));
    ctx_.Log(name_, "recv prepare " + parsed->txid);
    node_->Prepare(std::move(parsed).value(), std::move(reply));
    return;
  }
  // What the agent lists (agent.cc: GET /v1/transactions): every record
  // whose prepare is durable and not yet resolved.
  if (request.method == "GET" && request.target.rfind("/v1/transactions?", 0) == 0) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& v : node_->HeldRecords()) list.push_back(HeldJson(v));
    respond({200, {{"transactions", std::move(list)}}});
    return;
  }
  if (request.method == "GET" && request.target == "/v1/procedures") {
    respond({200,
             {{"name", name_},
              {"procedures", node_->ProcedureNames()},
              {"allow_raw_sql", false},
              {"outcome_retention_ms", ctx_.config.outcome_retention_ms}}});
    return;
  }
  if (request.method == "GET" && request.target.rfind("/v1/transactions/", 0) == 0) {
    const std::string txid = request.target.substr(17);
    node_->LookUpState(txid, [this, txid, respond](Result<std::string> state) {
      if (!state.ok()) {
        respond(ErrorOf(503, "storage_error", state.status().message()));
        return;
      }
      ctx_.Log(name_, "state of " + txid + " asked: " + *state);
      respond({200, {{"txid", txid}, {"state", *state}}});
    });
    return;
  }
  if (request.method == "POST" && request.target == "/v1/adopt") {
    auto parsed = wire::ParseAdoptRequest(request.body.dump());
    if (!parsed.ok()) return respond(ErrorOf(400, "invalid_request", parsed.status().message()));
    ctx_.Log(name_, "recv adopt " + parsed->txid + " by log " + parsed->log_id);
    return node_->Adopt(*parsed, std::move(reply));
  }
  const bool commit = request.target == "/v1/commit";
  const bool abort = request.target == "/v1/abort";
  const bool precommit = request.target == "/v1/precommit";
  if (request.method != "POST" || !(commit || abort || precommit)) {
    respond(ErrorOf(404, "not_found", request.target));
    return;
  }
  if (abort) {
    auto parsed = wire::ParseAbortRequest(request.body.dump());
    if (!parsed.ok()) return respond(ErrorOf(400, "invalid_request", parsed.status().message()));
    const std::string txid = parsed->txid;
    ctx_.Log(name_, "recv abort " + txid);
    if (ctx_.bug == Bug::kAbortAckBeforeDurable && node_->StateOf(txid) == "unknown") {
      // The deliberate bug: the abort of a txid held nowhere here is
      // acknowledged before its tombstone is written; the real answer is dropped.
      ctx_.Log(name_, "BUG abort-ack-before-durable: acking the abort of " + txid + " before its tombstone is synced");
      node_->Abort(*parsed, [](participant::NodeReply) {});
      ctx_.checker.OnAbortAcknowledged(name_, txid);
      return respond({200, {{"txid", txid}, {"state", "aborted"}}});
    }
    return node_->Abort(*parsed, [this, txid, reply](participant::NodeReply r) {
      if (r.status == 200) ctx_.checker.OnAbortAcknowledged(name_, txid);
      reply(std::move(r));
    });
  }
  auto parsed = wire::ParseCommitRequest(request.body.dump());
  if (!parsed.ok()) return respond(ErrorOf(400, "invalid_request", parsed.status().message()));
  const std::string* txid = &parsed->txid;
  ctx_.Log(name_, "recv " + request.target.substr(4) + " " + *txid);
  if (precommit) return node_->Precommit(*parsed, std::move(reply));
  if (ctx_.bug != Bug::kAckBeforeDurable) return node_->Commit(*parsed, std::move(reply));
  // The deliberate bug: the commit is acknowledged as soon as its apply job
  // is queued, and the real acknowledgement (once durable) is dropped.
  auto answered = std::make_shared<bool>(false);
  node_->Commit(*parsed, [answered, reply](participant::NodeReply r) {
    if (!std::exchange(*answered, true)) reply(std::move(r));
  });
  if (!*answered && node_->StateOf(*txid) == "committing") {
    *answered = true;
    ctx_.Log(name_, "BUG ack-before-durable: acking commit " + *txid + " before it is synced");
    respond({200, {{"txid", *txid}, {"state", "committed"}}});
  }
}

void ParticipantNode::AfterSync(sqlite::Database& db) {
  ReadNewJournalRows(db);
  ReadNewAborts(db);
}

void ParticipantNode::ReadNewJournalRows(sqlite::Database& db) {
  Status error;
  sqlite::Statement* stmt = db.Prepare("SELECT rowid, txid FROM journal WHERE rowid > ?1 ORDER BY rowid", &error);
  if (stmt == nullptr) {
    ctx_.checker.Fail("conservation", name_ + ": cannot read the journal: " + error.message());
    return;
  }
  stmt->Bind(1, journal_rowid_);
  bool any = false;
  while (stmt->Step()) {
    journal_rowid_ = stmt->Int(0);
    ctx_.checker.OnCommitted(name_, stmt->Text(1));
    any = true;
  }
  if (!any) return;
  if (auto problem = CheckBalances(nullptr)) ctx_.checker.Fail("conservation", *problem);
}

// Aborts are facts once their outcome row is synced (an abort, a no vote or a
// tombstone): rows stamped since the last sync, or in its millisecond (an
// fsync of the WAL alone and a batch may share one; a fact read twice changes nothing).
void ParticipantNode::ReadNewAborts(sqlite::Database& db) {
  Status error;
  sqlite::Statement* stmt = db.Prepare(
      "SELECT txid FROM _commitd_finished WHERE outcome = 'aborted' AND finished_ms >= ?1 ORDER BY txid", &error);
  if (stmt == nullptr) {
    ctx_.checker.Fail("atomicity", name_ + ": cannot read the outcomes: " + error.message());
    return;
  }
  stmt->Bind(1, aborts_read_ms_);
  while (stmt->Step()) ctx_.checker.OnAborted(name_, stmt->Text(0));
  aborts_read_ms_ = ctx_.now();
}

}  // namespace commitd::sim
