// commitctl recover: settles every prepared record in stopped agents'
// databases from a stopped coordinator's decision log, with the resource
// manager calls the agent itself makes.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "coordinator/decision_store.h"
#include "coordinator/group_members.h"
#include "coordinator/txid_issuer.h"
#include "participant/pg_connection.h"
#include "participant/pg_records.h"
#include "tools/commitctl/commands.h"
#include "tools/commitctl/group_files.h"
#include "tools/commitctl/offline_files.h"

namespace commitd::commitctl {
namespace {

// A PostgreSQL participant's database (--participant-dsn): every commitd
// agent's prepared transactions in it.
struct PgDatabase {
  std::string label;  // for the DATABASE column: "postgres:<dbname>"
  std::unique_ptr<participant::pg::PgConnection> conn;
};

struct Step {
  ParticipantFile* file = nullptr;  // or:
  PgDatabase* pg = nullptr;
  std::string agent;  // pg: the agent whose gid it is
  std::string database() const { return file ? file->path : pg->label + "/" + agent; }
  participant::PreparedRecord record;
  std::string action;  // "commit" | "abort" | "refuse"
  std::string why;
  std::string result;  // after --apply: "committed", "aborted", "conflict: ...", "failed: ...", "left in place"
  bool trouble = false;
};

// What the directories of a coordinator group's members show (docs/operations.md,
// "Recovering a group offline"): `log` is the state machine of the member
// that applied the most (everything in it is committed).
struct GroupEvidence {
  std::size_t given = 0;           // member directories given
  std::size_t voters = 0;          // the group's voting members
  raft::Term committed_term = 0;   // the term of the last entry known committed
  std::map<std::string, std::vector<TailDecision>> in_tails;  // decisions not known to be committed
};

// Why a group's files cannot presume abort for a txid with no committed
// decision, or "" when they can.
std::string GroupCannotPresume(const GroupEvidence& g, const std::string& txid) {
  if (auto it = g.in_tails.find(txid); it != g.in_tails.end()) {
    const TailDecision& t = it->second.front();
    return std::string("a member's log holds a ") + std::string(coordinator::OutcomeName(t.outcome)) +
           " decision for it (" + t.member_path + ", entry " + std::to_string(t.index) +
           ") that is not known to be committed: start a majority of the group and it settles it";
  }
  const std::size_t quorum = g.voters / 2 + 1;
  if (g.given < quorum) {
    return "only " + std::to_string(g.given) + " of the group's " + std::to_string(g.voters) +
           " members' directories given: a decision a majority committed may be missing from them (a member that "
           "lagged behind never received it), so nothing is presumed aborted; give at least " +
           std::to_string(quorum) + " members' --data-dir";
  }
  if (g.given >= g.voters) return "";  // every log there is: a decision in none of them exists nowhere
  std::optional<coordinator::TxidParts> parts = coordinator::ParseTxid(txid);
  if (parts && parts->incarnation < g.committed_term) return "";
  return "no given member holds a decision for it, but it was issued in term " +
         (parts ? std::to_string(parts->incarnation) : std::string("(unknown)")) +
         " and the group committed nothing of a later term (last committed term " + std::to_string(g.committed_term) +
         "): a member not given here may hold its decision and could still get it committed; give every "
         "member's --data-dir, or start a majority of the group (its new leader presumes abort itself)";
}

// A 2PC staging record without a decision (docs/protocol.md, parallel
// commit) is decided as the coordinator's recovery would decide it, where the
// given databases prove the outcome: commit if one committed it, or if every
// participant holds it prepared (each voted yes). Anything else needs the
// participants' fences, which only the running coordinator sends.
Step PlanStaging(const coordinator::DecisionRecord& staging, Step step, bool commit_seen,
                 std::size_t databases_prepared) {
  const std::size_t participants = staging.participants.size();
  if (commit_seen) {
    step.action = "commit";
    step.why = "2PC: the log holds its staging record and no decision, and another given database committed it: "
               "commit";
  } else if (databases_prepared >= participants) {
    step.action = "commit";
    step.why = "2PC: the log holds its staging record and no decision, and all " + std::to_string(participants) +
               " of its participants hold it prepared here (each voted yes): commit";
  } else {
    step.action = "refuse";
    step.why = "2PC: the log holds its staging record and no decision, and " + std::to_string(databases_prepared) +
               " of its " + std::to_string(participants) +
               " participants' databases given hold it prepared: start the coordinator, which asks every "
               "participant and decides (docs/protocol.md)";
    step.trouble = true;
  }
  return step;
}

// committed_elsewhere: txids some given database remembers as committed.
// prepared_in: for each txid, the given databases that hold it prepared.
// own_urls: the URLs the log's coordinator served under (empty: not recorded).
// group: set when `log` is a group member's state machine.
Result<Step> Plan(coordinator::DecisionStore& log, Step step, const std::set<std::string>& committed_elsewhere,
                  const std::map<std::string, std::set<std::string>>& prepared_in,
                  const std::vector<std::string>& own_urls, const GroupEvidence* group) {
  auto decision = log.FindByTxid(step.record.txid);
  if (!decision.ok()) return decision.status();
  if (decision->has_value() && (*decision)->outcome == coordinator::Outcome::kPending &&
      (*decision)->protocol == wire::Protocol::k2pc) {
    // Read from step before it is moved into the call: arguments are evaluated in no set order.
    const bool commit_seen = committed_elsewhere.count(step.record.txid) != 0;
    auto in = prepared_in.find(step.record.txid);
    const std::size_t prepared = in == prepared_in.end() ? 0 : in->second.size();
    return PlanStaging(**decision, std::move(step), commit_seen, prepared);
  }
  // 3PC: a decision in the log settles it as in 2PC, and no record at all
  // means nobody was told to precommit, so presumed abort holds too. But a
  // staging record without a decision may still end either way: every
  // participant prepared is no proof of commit (termination aborts a
  // transaction nobody precommitted).
  const bool staging_only = decision->has_value() && (*decision)->outcome == coordinator::Outcome::kPending;
  if (staging_only || (!decision->has_value() && step.record.state == "precommitted")) {
    step.action = "refuse";
    step.why = staging_only
                   ? "3PC: the log holds its staging record but no decision; restart the coordinator or the agents: the "
                     "coordinator or the agents' termination protocol decides it (docs/protocol.md)"
                   : "3PC: precommitted here, yet this log has no record of it: this --data-dir is not the "
                     "coordinator that ran it; restart the agents (termination protocol) or find that log";
    step.trouble = true;
    return step;
  }
  if (!decision->has_value()) {
    auto forgotten = log.TxidForgotten(step.record.txid);
    if (!forgotten.ok()) return forgotten.status();
    if (*forgotten) {
      step.action = "refuse";
      step.why = "its decision was deleted after decision_retention_ms (this log issued it and finished it: every "
                 "participant had acknowledged it), so it is not presumed aborted: settle it by hand with what the "
                 "other participants show (docs/operations.md)";
      step.trouble = true;
      return step;
    }
    if (group != nullptr) {
      std::string why = GroupCannotPresume(*group, step.record.txid);
      if (!why.empty()) {
        step.action = "refuse";
        step.why = why;
        step.trouble = true;
        return step;
      }
    }
  }
  const bool commit_seen = committed_elsewhere.count(step.record.txid) != 0;
  if (!decision->has_value() && (step.record.state == "conflict" || commit_seen)) {
    // A commit was delivered (a conflict only arises from one) or applied
    // elsewhere, yet this log has no decision: it is not the log that ran the
    // transaction (or it lost it). Presuming abort here would split it.
    step.action = "refuse";
    step.why = std::string("no decision in this log, but ") +
               (commit_seen ? "another given database committed it" : "a commit was already attempted here") +
               ": this --data-dir is not the coordinator that decided it; find that log, or settle it by hand "
               "(docs/operations.md)";
    step.trouble = true;
    return step;
  }
  const bool other_coordinator = !own_urls.empty() && std::find(own_urls.begin(), own_urls.end(),
                                                                step.record.coordinator) == own_urls.end();
  if (!decision->has_value() && other_coordinator) {
    // Only the coordinator that ran it may presume abort.
    step.action = "refuse";
    step.why = "no decision in this log, and the record names another coordinator (" + step.record.coordinator +
               "): recover it with that coordinator's --data-dir";
    step.trouble = true;
    return step;
  }
  if (!decision->has_value()) {
    step.action = "abort";
    step.why = "no decision recorded: presumed abort";
  } else {
    const coordinator::DecisionRecord& d = **decision;
    step.action = d.outcome == coordinator::Outcome::kCommitted ? "commit" : "abort";
    if (step.action == "abort" && commit_seen) {
      step.action = "refuse";
      step.why = "the log says aborted, but another given database committed it: settle it by hand "
                 "(docs/operations.md)";
      step.trouble = true;
      return step;
    }
    step.why = std::string("decision log: ") + std::string(coordinator::OutcomeName(d.outcome)) +
               (d.heuristic ? " (heuristic)" : "") + ", decided " + FormatAge(WallNowMs() - d.decided_ms) + " ago";
  }
  if (step.record.state == "conflict") step.why += "; its last commit attempt conflicted: " + step.record.last_error;
  return step;
}

// One SQLite transaction: the resource manager's commit or abort and the
// remembered outcome, as the agent does it.
void Apply(Step& step) {
  if (step.pg) {
    // COMMIT PREPARED or ROLLBACK PREPARED, as the agent does it.
    participant::pg::PgConnection& conn = *step.pg->conn;
    Status s = conn.Wait(step.action == "commit"
                             ? participant::pg::CommitPrepared(conn, step.agent, step.record.txid,
                                                               /*side_rows=*/true)
                             : participant::pg::RollBackPrepared(conn, step.agent, step.record.txid, WallNowMs()));
    step.trouble = !s.ok();
    step.result = s.ok() ? (step.action == "commit" ? "committed" : "aborted") : "failed: " + s.message();
    return;
  }
  participant::ResourceManager& rm = *step.file->rm;
  const std::string& txid = step.record.txid;
  sqlite::Transaction txn(*step.file->db);
  Status s = txn.status();
  if (s.ok() && step.action == "commit") {
    s = rm.ApplyCommit(txid);
    if (s.ok()) s = rm.RememberOutcome(txid, "committed", WallNowMs());
  } else if (s.ok()) {
    s = rm.DiscardPrepared(txid);
    if (s.ok()) s = rm.RememberOutcome(txid, "aborted", WallNowMs());
  }
  if (s.code() == StatusCode::kConflict) {
    // ApplyCommit left the record in place, marked "conflict" with the reason: keep that.
    Status kept = txn.Commit();
    step.result = "conflict: " + s.message() + (kept.ok() ? "" : " (and recording it failed: " + kept.message() + ")");
    step.trouble = true;
    return;
  }
  if (s.ok()) s = txn.Commit();
  if (!s.ok()) {
    step.result = "failed: " + s.message();
    step.trouble = true;
    return;
  }
  step.result = step.action == "commit" ? "committed" : "aborted";
}

}  // namespace

int RunRecover(Context& ctx) {
  const auto data_dirs = ctx.flags->GetAll("data-dir");
  const auto paths = ctx.flags->GetAll("participant-db");
  const auto dsns = ctx.flags->GetAll("participant-dsn");
  if (data_dirs.empty() || (paths.empty() && dsns.empty()) || !ctx.args.empty()) {
    PrintError("recover needs --data-dir DIR and at least one --participant-db FILE or --participant-dsn DSN "
               "(see commitctl recover --help)");
    return kExitUsage;
  }
  const bool apply = ctx.flags->Has("apply");
  std::size_t group_dirs = 0;
  for (const auto& dir : data_dirs) group_dirs += IsGroupMemberDir(dir) ? 1 : 0;
  if (group_dirs != 0 && group_dirs != data_dirs.size()) {
    PrintError("--data-dir: give either one coordinator's directory (decisions.db) or group members' directories "
               "(raft.db), not both");
    return kExitUsage;
  }
  if (group_dirs == 0 && data_dirs.size() > 1) {
    PrintError("--data-dir: more than one is only for the members of a coordinator group (DIR/raft.db)");
    return kExitUsage;
  }

  // Every file is locked before anything is read, so nothing changes if one is in use.
  std::unique_ptr<sqlite::Database> single_db;
  std::vector<GroupMemberFiles> members;
  GroupEvidence evidence;
  sqlite::Database* log_db = nullptr;
  std::string log_path;
  if (group_dirs == 0) {
    auto opened = OpenDecisionLog(data_dirs.front(), /*read_only=*/!apply);
    if (!opened.ok()) {
      PrintError(opened.status().message());
      if (opened.status().code() == StatusCode::kNotFound) {
        PrintError("without the decision log nothing can be presumed aborted; if the coordinator lost it, see "
                   "docs/operations.md (\"the coordinator lost its disk\")");
      }
      return kExitTrouble;
    }
    single_db = std::move(opened).value();
    log_db = single_db.get();
    log_path = single_db->path();
  } else {
    std::set<std::string> seen;
    for (const auto& dir : data_dirs) {
      std::error_code ec;
      const std::string canonical = std::filesystem::weakly_canonical(dir, ec).string();
      if (!seen.insert(ec ? dir : canonical).second) {
        PrintError("--data-dir " + dir + " is given twice: each must be another member's directory");
        return kExitUsage;
      }
      auto member = OpenGroupMember(dir);
      if (!member.ok()) {
        PrintError(member.status().message());
        return kExitTrouble;
      }
      members.push_back(std::move(member).value());
    }
    auto tails = DecisionsInTails(members);
    if (!tails.ok()) {
      PrintError(tails.status().message() + ": nothing can be planned from these files");
      return kExitTrouble;
    }
    evidence.in_tails = std::move(tails).value();
    evidence.given = members.size();
    const GroupMemberFiles* newest_log = &members.front();
    const GroupMemberFiles* most_applied = &members.front();
    for (const auto& m : members) {
      if (std::tie(m.last_term, m.last_index) > std::tie(newest_log->last_term, newest_log->last_index)) newest_log = &m;
      if (m.applied > most_applied->applied) most_applied = &m;
    }
    evidence.voters = newest_log->membership.voters.size();
    for (const auto& m : members) evidence.voters = std::max(evidence.voters, m.membership.voters.size());
    evidence.committed_term = most_applied->applied_term;
    log_db = most_applied->db.get();
    log_path = most_applied->path;
    if (!ctx.json) {
      std::printf("group: %zu of %zu members' directories; committed state from %s (applied %llu, term %llu)\n",
                  evidence.given, evidence.voters, log_path.c_str(),
                  static_cast<unsigned long long>(most_applied->applied),
                  static_cast<unsigned long long>(most_applied->applied_term));
    }
  }
  std::vector<ParticipantFile> files;
  for (const std::string& path : paths) {
    auto file = OpenParticipantDb(path);
    if (!file.ok()) {
      PrintError(file.status().message());
      return kExitTrouble;
    }
    files.push_back(std::move(file).value());
  }

  std::vector<PgDatabase> pgs;
  for (const std::string& dsn : dsns) {
    auto conn = participant::pg::PgConnection::Connect(dsn, "commitctl");
    if (!conn.ok()) {
      PrintError(conn.status().message());
      return kExitTrouble;
    }
    // Offline like the files: no agent may be settling the same transactions.
    participant::pg::PgResult agents = (*conn)->Exec(
        "SELECT string_agg(DISTINCT application_name, ', ') FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name LIKE 'commitd:%'");
    if (!agents.ok()) {
      PrintError("PostgreSQL: " + participant::pg::Describe(agents));
      return kExitTrouble;
    }
    if (!agents.is_null(0, 0)) {
      PrintError("a commit-agent is connected to " + (*conn)->database() + " (" + agents.value(0, 0) +
                 "): stop it first");
      return kExitTrouble;
    }
    pgs.push_back({"postgres:" + (*conn)->database(), std::move(conn).value()});
  }

  coordinator::DecisionStore log(*log_db);
  std::set<std::string> committed_somewhere;
  for (PgDatabase& db : pgs) {
    participant::pg::PgResult r = db.conn->Exec(
        "SELECT txid FROM _commitd_pg_finished WHERE outcome = 'committed'");
    if (!r.ok() && r.sqlstate() != participant::pg::sqlstate::kUndefinedTable) {
      PrintError(db.label + ": " + participant::pg::Describe(r));
      return kExitTrouble;
    }
    for (int i = 0; i < r.rows(); ++i) committed_somewhere.insert(r.value(i, 0));
  }
  for (ParticipantFile& file : files) {
    auto outcomes = file.rm->LoadOutcomes();
    if (!outcomes.ok()) {
      PrintError(file.path + ": " + outcomes.status().message());
      return kExitTrouble;
    }
    for (const auto& [txid, outcome] : *outcomes) {
      if (outcome == "committed") committed_somewhere.insert(txid);
    }
  }
  auto own_urls = log.OwnUrls();
  if (own_urls.ok() && !members.empty()) {
    // A group's records name the member that ran them: every member's URL is the group's.
    auto urls = coordinator::GroupMembersTable(*log_db).Urls();
    if (!urls.ok()) own_urls = urls.status();
    for (const auto& [id, url] : urls.ok() ? *urls : std::map<std::string, std::string>{}) own_urls->push_back(url);
  }
  if (!own_urls.ok()) {
    PrintError(log_path + ": " + own_urls.status().message());
    return kExitTrouble;
  }
  std::vector<Step> proposed;
  for (ParticipantFile& file : files) {
    auto records = file.rm->LoadPrepared();
    if (!records.ok()) {
      PrintError(file.path + ": " + records.status().message());
      return kExitTrouble;
    }
    for (auto& record : *records) {
      Step step;
      step.file = &file;
      step.record = std::move(record);
      proposed.push_back(std::move(step));
    }
  }
  for (PgDatabase& db : pgs) {
    auto records = participant::pg::LoadPreparedRecords(*db.conn, std::nullopt, WallNowMs());
    if (!records.ok()) {
      PrintError(db.label + ": " + records.status().message());
      return kExitTrouble;
    }
    for (auto& p : *records) {
      Step step;
      step.pg = &db;
      step.agent = p.agent;
      step.record = std::move(p.record);
      proposed.push_back(std::move(step));
    }
  }
  std::map<std::string, std::set<std::string>> prepared_in;
  for (const Step& step : proposed) prepared_in[step.record.txid].insert(step.database());
  std::vector<Step> steps;
  for (Step& one : proposed) {
    auto step = Plan(log, std::move(one), committed_somewhere, prepared_in, *own_urls,
                     members.empty() ? nullptr : &evidence);
    if (!step.ok()) {
      PrintError(log_path + ": " + step.status().message());
      return kExitTrouble;
    }
    steps.push_back(std::move(step).value());
  }

  if (apply) {
    for (Step& step : steps) {
      if (step.action == "refuse") {
        step.result = "left in place";
      } else {
        Apply(step);
      }
    }
  }
  bool trouble = false;
  for (const Step& step : steps) trouble |= step.trouble;

  if (ctx.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const Step& step : steps) {
      nlohmann::json j = {{"txid", step.record.txid},
                          {"database", step.database()},
                          {"action", step.action},
                          {"why", step.why},
                          {"coordinator", step.record.coordinator}};
      if (apply) j["result"] = step.result;
      list.push_back(std::move(j));
    }
    PrintJson({{"applied", apply}, {"steps", list}, {"ok", !trouble && (apply || steps.empty())}});
  } else if (steps.empty()) {
    std::printf("nothing prepared in %zu database(s): nothing to recover\n", files.size() + pgs.size());
  } else {
    std::printf("%-40s %-24s %-7s %s\n", "TXID", "DATABASE", "ACTION", apply ? "RESULT  (WHY)" : "WHY");
    for (const Step& step : steps) {
      std::string tail = apply ? step.result + "  (" + step.why + ")" : step.why;
      std::printf("%-40s %-24s %-7s %s\n", step.record.txid.c_str(), step.database().c_str(), step.action.c_str(),
                  tail.c_str());
    }
    if (!apply) {
      std::set<std::string> coordinators;
      for (const Step& step : steps) coordinators.insert(step.record.coordinator);
      std::string names;
      for (const std::string& c : coordinators) names += (names.empty() ? "" : ", ") + c;
      std::printf("plan only: nothing changed. Check that --data-dir is the coordinator these records name (%s)%s, "
                  "then run again with --apply.\n",
                  names.c_str(),
                  coordinators.size() > 1 ? " -- they name more than one: recover each set with its own --data-dir"
                                          : "");
    } else if (trouble) {
      std::printf("some records are left in place (see RESULT). A conflict means rows changed behind the agent: "
                  "see docs/operations.md (\"a changeset conflict\").\n");
    } else {
      std::printf("done: nothing is prepared any more. Start commitd, then the agents: commitd redelivers the "
                  "decisions it had not finished, and the agents acknowledge them from their remembered outcomes.\n");
    }
  }
  return trouble || (!apply && !steps.empty()) ? kExitTrouble : kExitOk;
}

}  // namespace commitd::commitctl
