// Mode "agent": prepare + commit straight to one agent from N concurrent
// clients, each on rows of its own, to measure the agent's group commit
// without a coordinator in the way.
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "common/wire.h"
#include "tools/bench/flag_values.h"
#include "tools/bench/latency_recorder.h"
#include "tools/bench/modes.h"

namespace commitd::bench {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct AgentLoadOptions {
  std::string agent;
  std::string participant = "bank-a";
  std::string prefix = "acct";
  int64_t accounts = 256;
  int64_t clients = 64;
  double duration_s = 10;
  double warmup_s = 1;
  bool json = false;
};

struct Tally {
  int64_t committed = 0;
  int64_t refused = 0;  // no votes
  int64_t errors = 0;
  std::string first_problem;
  LatencyRecorder latency;  // prepare + commit
};

std::string PrepareBody(const AgentLoadOptions& o, const std::string& txid, const std::string& account) {
  wire::PrepareRequest p;
  p.txid = txid;
  p.participant = o.participant;
  p.coordinator = "http://127.0.0.1:1";  // never asked: every prepare is committed well before its deadline
  p.timeout_ms = 600'000;
  wire::Op debit;
  debit.procedure = "debit";
  debit.args = {{"account", account}, {"amount", 1}};
  wire::Op journal;
  journal.procedure = "journal";
  journal.args = {{"account", account}, {"delta", -1}};
  p.ops = {debit, journal};
  return wire::ToJson(p).dump();
}

asio::awaitable<void> ClientLoop(http::Client& client, const AgentLoadOptions& o, int64_t index,
                                 Clock::time_point measure_from, Clock::time_point stop_at, Tally& tally) {
  // Client i owns rows i, i + clients, ...; it takes them in turn.
  std::vector<std::string> rows;
  for (int64_t r = index % o.accounts; rows.empty() || r < o.accounts; r += o.clients) {
    rows.push_back(o.prefix + std::to_string(r));
  }
  const std::string run = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  http::ClientRequest prepare;
  prepare.base_url = o.agent;
  prepare.method = "POST";
  prepare.target = "/v1/prepare";
  http::ClientRequest commit = prepare;
  commit.target = "/v1/commit";
  for (int64_t n = 0; Clock::now() < stop_at; ++n) {
    const std::string txid = "bench-" + run + "-" + std::to_string(index) + "-" + std::to_string(n);
    prepare.body = PrepareBody(o, txid, rows[static_cast<std::size_t>(n) % rows.size()]);
    const Clock::time_point start = Clock::now();
    Result<http::Response> vote = co_await client.Fetch(prepare);
    std::string problem;
    bool yes = false;
    if (!vote.ok() || vote->status != 200) {
      problem = vote.ok() ? "prepare: HTTP " + std::to_string(vote->status) + " " + vote->body : vote.status().ToString();
    } else {
      auto parsed = wire::ParseVote(vote->body);
      yes = parsed.ok() && parsed->yes;
      if (!yes) problem = parsed.ok() ? "no vote: " + parsed->reason : parsed.status().ToString();
    }
    if (yes) {
      commit.body = "{\"txid\":\"" + txid + "\"}";
      Result<http::Response> ack = co_await client.Fetch(commit);
      if (!ack.ok() || ack->status != 200) {
        problem = ack.ok() ? "commit: HTTP " + std::to_string(ack->status) + " " + ack->body : ack.status().ToString();
        yes = false;
      }
    }
    const Clock::time_point end = Clock::now();
    if (start < measure_from || end > stop_at) continue;
    if (yes) {
      ++tally.committed;
      tally.latency.Record(end - start);
    } else {
      (problem.rfind("no vote", 0) == 0 ? tally.refused : tally.errors) += 1;
      if (tally.first_problem.empty()) tally.first_problem = problem;
    }
  }
}

}  // namespace

int RunAgentLoad(const Flags& flags) {
  AgentLoadOptions o;
  auto agent = flags.Get("agent");
  if (!agent) {
    std::fprintf(stderr, "agent: --agent URL is required\n");
    return 2;
  }
  o.agent = *agent;
  o.participant = flags.Get("participant").value_or(o.participant);
  o.prefix = flags.Get("account-prefix").value_or(o.prefix);
  auto accounts = IntFlag(flags, "accounts", o.accounts, 1);
  auto clients = IntFlag(flags, "clients", o.clients, 1);
  auto duration = DoubleFlag(flags, "duration-s", o.duration_s, 0.1);
  auto warmup = DoubleFlag(flags, "warmup-s", o.warmup_s, 0);
  for (const Status* s : {&accounts.status(), &clients.status(), &duration.status(), &warmup.status()}) {
    if (!s->ok()) {
      std::fprintf(stderr, "agent: %s\n", s->message().c_str());
      return 2;
    }
  }
  o.accounts = *accounts;
  o.clients = *clients;
  o.duration_s = *duration;
  o.warmup_s = *warmup;
  o.json = flags.Has("json");

  asio::io_context io;
  http::ClientOptions client_options;
  client_options.max_idle_per_host = static_cast<std::size_t>(o.clients);
  client_options.request_timeout = std::chrono::milliseconds(30'000);
  http::Client client(io, client_options);
  auto seconds = [](double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); };
  const Clock::time_point measure_from = Clock::now() + seconds(o.warmup_s);
  const Clock::time_point stop_at = measure_from + seconds(o.duration_s);
  Tally t;
  for (int64_t i = 0; i < o.clients; ++i) {
    asio::co_spawn(io, ClientLoop(client, o, i, measure_from, stop_at, t), asio::detached);
  }
  io.run();

  const double tx_per_s = static_cast<double>(t.committed) / o.duration_s;
  nlohmann::json latency = t.latency.SummaryMs();
  if (o.json) {
    nlohmann::json out = {{"mode", "agent"},          {"clients", o.clients},        {"seconds", o.duration_s},
                          {"committed", t.committed}, {"refused", t.refused},        {"errors", t.errors},
                          {"transactions_per_s", tx_per_s}, {"prepares_commits_per_s", 2 * tx_per_s},
                          {"latency_ms", latency}};
    if (!t.first_problem.empty()) out["first_problem"] = t.first_problem;
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("agent: %lld clients, %.1f s: %.0f transactions/s = %.0f prepares+commits/s; refused %lld, errors %lld\n",
                static_cast<long long>(o.clients), o.duration_s, tx_per_s, 2 * tx_per_s,
                static_cast<long long>(t.refused), static_cast<long long>(t.errors));
    std::printf("  latency ms (prepare + commit) p50 %.2f  p90 %.2f  p99 %.2f\n", latency["p50"].get<double>(),
                latency["p90"].get<double>(), latency["p99"].get<double>());
    if (!t.first_problem.empty()) std::printf("  first problem: %s\n", t.first_problem.c_str());
  }
  return t.committed == 0 ? 1 : 0;
}

}  // namespace commitd::bench
