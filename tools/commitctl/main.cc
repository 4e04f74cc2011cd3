// commitctl: admin and recovery tool for commitd.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/flags.h"
#include "common/auth.h"
#include "common/program.h"
#include "common/tls.h"
#include "tools/commitctl/commands.h"

namespace {

using namespace commitd::commitctl;

constexpr const char* kGlobalHelp = R"(usage: commitctl [global flags] COMMAND [flags]
       commitctl --version | --help

commands:
  status              coordinator role, participants and their health, pending and in-doubt counts
  tx list             list transactions [--state pending|in_doubt|committed|aborted] [--limit N]
  tx show TXID        one transaction: decision, each participant's state, timeline
  in-doubt            what each participant holds prepared, with the coordinator's decision
  retry-now           make the coordinator retry every unfinished delivery now
  resolve TXID        push one transaction to its end and wait for it [--wait-s 10]
  resolve TXID --force commit|abort [--yes]
                      heuristic decision for a transaction whose decision was lost
  close TXID [--yes]  mark finished a transaction a participant contradicted, once its data is reconciled
  cluster status      every member of the coordinator group: role, term, leader, commit and applied index
  cluster transfer-leader --to ID
                      hand leadership to another member and wait until it leads
  cluster add ID=URL  add a member started with --join; waits until it is a voter
  cluster remove ID   remove a member (not the leader: transfer first)

offline commands (the services stopped; they read and lock the files):
  inspect             --data-dir DIR and/or --participant-db FILE: decisions, unfinished ones, prepared records
  recover             --data-dir DIR... --participant-db FILE... --participant-dsn DSN... [--apply]:
                      settle prepared records (SQLite files, PostgreSQL databases) from the log
  log dump            --data-dir DIR: the decision log as JSON lines

global flags:
  --coordinator URL[,URL...]
                      the coordinator, or the members of a coordinator group: the first
                      that answers is asked (default $COMMITD_ENDPOINTS, else
                      http://127.0.0.1:7000)
  --participant N=URL a participant agent (repeatable; used by in-doubt)
  --token-file FILE   the file holding the token sent as "Authorization: Bearer ..."
                      (default $COMMITD_TOKEN)
  --token SECRET      the token itself (tests only: other local users can read it)
  --tls-ca FILE       verify https:// coordinators and agents against this CA
  --json              print JSON instead of text
  -h, --help          this text; `commitctl COMMAND --help` for one command
  --version           the version and git commit

environment:
  COMMITD_ENDPOINTS   URL[,URL...] when --coordinator is not given
  COMMITD_TOKEN       the token when neither --token-file nor --token is given

exit: 0 ok, 1 something in doubt, unhealthy or failed, 2 usage error
)";

const commitd::Program kProgram("commitctl", kGlobalHelp);

struct Command {
  std::vector<std::string> words;
  int (*run)(Context&);
  std::set<std::string> valued;  // beyond the global flags
  std::set<std::string> switches;
  const char* help;
};

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {{"status"}, RunStatus, {}, {},
       "usage: commitctl status [--json]\n\n"
       "Asks the coordinator for /v1/cluster, /v1/participants and its pending and in-doubt\n"
       "transactions, and prints a summary. Exit 1 when a transaction is in doubt (decided but\n"
       "not yet acknowledged by every participant) or a participant is unhealthy.\n"},
      {{"cluster", "status"}, RunClusterStatus, {}, {},
       "usage: commitctl cluster status [--json]\n\n"
       "Asks --coordinator for /v1/cluster, then every member it lists, and prints each member's\n"
       "role, term, the leader it follows, its commit and applied index and its membership.\n"
       "Exit 1 when a member is unreachable or no member leads.\n"},
      {{"cluster", "transfer-leader"}, RunClusterTransferLeader, {"to"}, {},
       "usage: commitctl cluster transfer-leader --to ID [--json]\n\n"
       "Asks the leader (through any member) to hand leadership to member ID once it has caught\n"
       "up (Raft's TimeoutNow), then waits up to 5 s until ID leads. Use it before taking the\n"
       "leader down for maintenance. Exit 1 when the transfer does not complete.\n"},
      {{"cluster", "add"}, RunClusterAdd, {}, {},
       "usage: commitctl cluster add ID=http://HOST:PORT [--json]\n\n"
       "Adds a new member to the coordinator group. Start it first with the group's --peers plus\n"
       "itself and --join. The leader replicates its URL, adds it as a learner, sends it the log\n"
       "(or a snapshot) and promotes it to voter once it has caught up; commitctl waits up to\n"
       "30 s for that. One membership change at a time.\n"},
      {{"cluster", "remove"}, RunClusterRemove, {}, {},
       "usage: commitctl cluster remove ID [--json]\n\n"
       "Removes a member from the coordinator group and waits until the removal is committed.\n"
       "The leader cannot remove itself: run cluster transfer-leader first. Stop the removed\n"
       "process afterwards. To replace a member: add the new one, then remove the old one.\n"},
      {{"tx", "list"}, RunTxList, {"state", "limit"}, {},
       "usage: commitctl tx list [--state pending|in_doubt|committed|aborted] [--limit N] [--json]\n\n"
       "Lists transactions, newest decisions first for committed/aborted. Without --state it lists\n"
       "recorded decisions. --limit defaults to the coordinator's (100), at most 10000.\n"},
      {{"tx", "show"}, RunTxShow, {}, {},
       "usage: commitctl tx show TXID [--json]\n\n"
       "Prints the transaction's protocol, state, outcome and reason, each participant's state\n"
       "and the timeline. Exit 1 when it is still undecided or the coordinator has no record of\n"
       "it (which under presumed abort means aborted).\n"},
      {{"in-doubt"}, RunInDoubt, {}, {},
       "usage: commitctl in-doubt [--participant NAME=URL]... [--json]\n\n"
       "Asks each participant agent (the --participant flags, else the coordinator's registry)\n"
       "for GET /v1/transactions?state=prepared, and the coordinator for each one's decision.\n"
       "Prints txid, participant, age, state, the coordinator's outcome and the last error.\n"
       "Exit 1 when any participant holds a prepared transaction or cannot be asked.\n"},
      {{"retry-now"}, RunRetryNow, {}, {},
       "usage: commitctl retry-now [--json]\n\n"
       "POST /v1/admin/retry-now: the coordinator retries every unfinished commit/abort delivery\n"
       "at once instead of waiting for its backoff. Prints how many transactions are active.\n"},
      {{"resolve"}, RunResolve, {"wait-s", "force", "skip-participants"}, {"yes"},
       "usage: commitctl resolve TXID [--wait-s 10] [--json]\n"
       "       commitctl resolve TXID --force commit|abort [--yes] [--participant N=URL]...\n"
       "                 [--skip-participants NAME[,NAME...]] [--wait-s 10] [--json]\n\n"
       "Looks the transaction up; if it is not finished, asks the coordinator to retry now and\n"
       "polls until it finishes or --wait-s passes. Exit 0 when finished (or unknown: presumed\n"
       "aborted), 1 when still unfinished at the deadline.\n\n"
       "--force: a heuristic decision, for a transaction whose decision was lost with the\n"
       "coordinator's log. Refused (exit 1) when the coordinator knows a different decision or\n"
       "has not decided yet; a no-op (exit 0) when it knows the same one. Otherwise it finds the\n"
       "participants holding TXID prepared (the --participant flags, else every registered one:\n"
       "each must answer), prints the plan and, without --yes, stops there (exit 2, nothing\n"
       "changed). With --yes the coordinator has every holder, and every participant their records\n"
       "name, adopt TXID (they refuse the lost log's decisions from then on), then records the\n"
       "decision marked heuristic (tx show and commitd_transactions_heuristic_total keep showing\n"
       "it) and delivers it; exit 0 once every participant acknowledged. Nothing is recorded when\n"
       "one of them does not answer or did the other outcome. --skip-participants: participants\n"
       "gone for good, not asked. Forcing commit is dangerous: see docs/operations.md first.\n"},
      {{"close"}, RunClose, {}, {"yes"},
       "usage: commitctl close TXID [--yes] [--json]\n\n"
       "For a transaction in state \"contradicted\": decided, and a participant answered its decision\n"
       "that it had finished the transaction the other way (e.g. a forced commit where that\n"
       "participant had aborted). The coordinator does not send it the decision again, and keeps the\n"
       "transaction in doubt (commitd_transactions_in_doubt{kind=\"contradicted\"}) until an operator\n"
       "reconciles the data by hand and closes it. Prints the transaction; without --yes stops\n"
       "there (exit 2, nothing changed). With --yes the coordinator marks it finished (POST\n"
       "/v1/admin/transactions/TXID/close); exit 0 once that is durable, 1 when refused.\n"},
      {{"inspect"}, RunInspect, {"data-dir", "participant-db", "limit"}, {},
       "usage: commitctl inspect [--data-dir DIR] [--participant-db FILE]... [--limit 20] [--json]\n\n"
       "Offline: reads a stopped coordinator's DIR/decisions.db, or a group member's DIR/raft.db (its\n"
       "term, applied index and the log entries after it, not known to be committed), then the\n"
       "decisions (decision counts, unfinished\n"
       "decisions, the newest --limit decisions, the participant registry) and stopped agents'\n"
       "databases (prepared records with age, deadline, state and last error; how many outcomes\n"
       "they remember). Each file is locked exclusively first: refused, changing nothing, while a\n"
       "commitd or commit-agent has it open. Exit 1 when something is in doubt (an unfinished\n"
       "decision or a prepared record) or a file cannot be read.\n"},
      {{"recover"}, RunRecover, {"data-dir", "participant-db", "participant-dsn"}, {"apply"},
       "usage: commitctl recover --data-dir DIR [--data-dir DIR]... --participant-db FILE [--participant-db FILE]...\n"
       "                         [--participant-dsn DSN]... [--apply] [--json]\n\n"
       "Offline, with every service stopped: for each prepared record in the agents' databases,\n"
       "looks its txid up in the coordinator's decision log (DIR/decisions.db) and plans commit\n"
       "(decided committed) or abort (decided aborted, or no record: presumed abort). A 3PC record\n"
       "with only a precommit in the log (or precommitted, with no log record) is refused: the\n"
       "agents' termination protocol may still commit it. Prints the plan;\n"
       "with --apply carries it out with the agent's own resource manager, one SQLite transaction\n"
       "per record (apply the changeset or discard it, and remember the outcome), so the agents\n"
       "start consistent. A changeset that does not apply cleanly is reported and left in place.\n"
       "--participant-dsn: a PostgreSQL participant's database (libpq DSN): its commitd:<agent>:<txid>\n"
       "transactions in pg_prepared_xacts are settled with COMMIT PREPARED / ROLLBACK PREPARED;\n"
       "refused while a commit-agent is connected to it.\n"
       "The decision log is not changed: the restarted coordinator redelivers its unfinished\n"
       "decisions and the agents acknowledge them from their remembered outcomes.\n"
       "A txid whose decision was deleted after decision_retention_ms is refused, not presumed aborted.\n"
       "A coordinator group: one --data-dir per member (each DIR/raft.db). Decisions in any member's\n"
       "state machine are committed and are carried out. Abort is presumed for a txid only when no\n"
       "given member's log holds a decision for it, at least a majority of the members' directories\n"
       "are given (fewer may all lack a decision a majority committed), and either every member's is\n"
       "given or the group committed entries of a later term than the txid's (docs/operations.md).\n"
       "Every file is locked exclusively first (refused while a service has it open). Exit 0 when\n"
       "nothing is prepared any more, 1 when records remain (plan only, conflict, refused, error).\n"},
      {{"log", "dump"}, RunLogDump, {"data-dir"}, {},
       "usage: commitctl log dump --data-dir DIR\n\n"
       "Offline: prints a stopped coordinator's decision log as JSON lines. For DIR/decisions.db\n"
       "(a single coordinator): every decision, oldest first ({\"type\":\"decision\",...}), then the\n"
       "participant registry ({\"type\":\"participant\",...}). For DIR/raft.db (a group member):\n"
       "first {\"type\":\"member\"} (term, applied index, log end), then its state machine the same\n"
       "way (every entry up to the applied index: committed), then each log entry after the\n"
       "applied index ({\"type\":\"entry\",\"committed\":\"unknown\",\"command\":{...}}): committed\n"
       "only if a majority of the members has it. Decisions deleted after decision_retention_ms\n"
       "are not in it. Locks the file like inspect. --json is accepted; the output is always JSON.\n"},
  };
  return commands;
}

const std::set<std::string> kGlobalValued = {"coordinator", "participant", "token", "token-file", "tls-ca"};
const std::set<std::string> kGlobalSwitches = {"json", "help"};

// The words that are not flags or flag values, in order.
std::vector<std::string> Words(int argc, char** argv) {
  std::set<std::string> valued = kGlobalValued;
  for (const Command& c : Commands()) valued.insert(c.valued.begin(), c.valued.end());
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.empty() || arg[0] != '-') {
      words.push_back(arg);
    } else if (arg.find('=') == std::string::npos && valued.count(arg.substr(2)) != 0) {
      ++i;
    }
  }
  return words;
}

const Command* FindCommand(const std::vector<std::string>& words) {
  for (const Command& c : Commands()) {
    if (words.size() >= c.words.size() && std::equal(c.words.begin(), c.words.end(), words.begin())) return &c;
  }
  return nullptr;
}

int Usage(const std::string& message) { return kProgram.UsageError(message); }

// The first endpoint that answers /healthz, else the first one (whose error
// the command then reports).
std::string FirstAnswering(const std::vector<std::string>& urls, BlockingClient& client) {
  if (urls.size() == 1) return urls.front();
  for (const std::string& url : urls) {
    if (client.Call({"coordinator", url, ""}, "GET", "/healthz").ok()) return url;
  }
  return urls.front();
}

std::optional<std::string> Environment(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc && std::string(argv[i]) != "--"; ++i) {
    if (std::string(argv[i]) == "--version") {
      std::printf("%s\n", kProgram.VersionLine().c_str());
      return kExitOk;
    }
  }
  const std::vector<std::string> words = Words(argc, argv);
  const Command* command = FindCommand(words);
  if (command == nullptr) {
    auto globals = commitd::Flags::Parse(argc, argv, kGlobalValued, kGlobalSwitches);
    if (globals.ok() && globals->Has("help") && (words.empty() || words == std::vector<std::string>{"tx"} ||
                                                   words == std::vector<std::string>{"log"})) {
      std::fputs(kGlobalHelp, stdout);
      return kExitOk;
    }
    if (words.empty()) return Usage(globals.ok() ? "a command is needed" : globals.status().message());
    if (words.size() == 1 && words[0] == "tx") return Usage("tx needs a subcommand: list or show");
    if (words.size() == 1 && words[0] == "log") return Usage("log needs a subcommand: dump");
    const bool two_words = words.size() > 1 && (words[0] == "tx" || words[0] == "log");
    return Usage("unknown command '" + words[0] + (two_words ? " " + words[1] : "") + "'");
  }

  std::set<std::string> valued = kGlobalValued;
  valued.insert(command->valued.begin(), command->valued.end());
  std::set<std::string> switches = kGlobalSwitches;
  switches.insert(command->switches.begin(), command->switches.end());
  auto flags = commitd::Flags::Parse(argc, argv, valued, switches);
  if (!flags.ok()) return Usage(flags.status().message());
  if (flags->Has("help")) {
    std::fputs(command->help, stdout);
    return kExitOk;
  }

  Context ctx;
  const std::string endpoints =
      flags->Get("coordinator").value_or(Environment("COMMITD_ENDPOINTS").value_or("http://127.0.0.1:7000"));
  const std::vector<std::string> urls = commitd::SplitCommas(endpoints);
  if (urls.empty()) return Usage("--coordinator (or COMMITD_ENDPOINTS) names no URL");
  for (const std::string& spec : flags->GetAll("participant")) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return Usage("--participant wants NAME=URL, e.g. bank-a=http://127.0.0.1:7101; got '" + spec + "'");
    }
    ctx.participants.push_back({spec.substr(0, eq), spec.substr(eq + 1)});
  }
  ctx.json = flags->Has("json");
  ctx.flags = &*flags;
  ctx.args.assign(flags->positional().begin() + static_cast<std::ptrdiff_t>(command->words.size()),
                  flags->positional().end());
  std::string token = flags->Get("token").value_or(Environment("COMMITD_TOKEN").value_or(""));
  if (auto path = flags->Get("token-file")) {
    auto secret = commitd::auth::ReadSecretFile(*path);
    if (!secret.ok()) return Usage("--token-file " + secret.status().message());
    token = std::move(secret).value();
  }
  commitd::tls::Context tls;
  if (auto ca = flags->Get("tls-ca")) {
    auto context = commitd::tls::ClientContext({*ca, "", ""});
    if (!context.ok()) return Usage("--tls-ca " + context.status().message());
    tls = std::move(context).value();
  }
  BlockingClient client(token, tls);
  ctx.client = &client;
  ctx.coordinator_url = FirstAnswering(urls, client);
  return command->run(ctx);
}
