// Mode "agent": prepare + commit straight to one agent from N concurrent
// clients, each on rows of its own, to measure the agent's group commit
// without a coordinator in the way. Messages go through a BatchingClient, as
// the coordinator sends them; with --unbatched each is its own HTTP exchange.
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/batching_client.h"
#include "common/http_client.h"
#include "common/wire.h"
#include "tools/bench/flag_values.h"
#include "tools/bench/latency_recorder.h"
#include "tools/bench/modes.h"
#include "tools/bench/progress.h"

namespace commitd::bench {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using SendFn = std::function<void(http::ClientRequest, std::function<void(Result<http::Response>)>)>;

struct AgentLoadOptions {
  std::string agent;
  std::string participant = "bank-a";
  std::string prefix = "acct";
  int64_t accounts = 256;
  int64_t clients = 64;
  double duration_s = 10;
  double warmup_s = 1;
  bool json = false;
  bool batched = true;  // coalesce messages into POST /v1/batch exchanges, as the coordinator does
  // Batched exchanges at once: with --max-batch 16, room for every client's
  // message (64 by default).
  std::size_t max_in_flight = 8;
  // Messages per exchange. An exchange is answered when its slowest message
  // is, and its callers then send again together: with the coordinator's
  // default (256) the 64 clients ended up in one exchange, moving in lockstep
  // with the agent idle in between — a convoy of the load generator, not a
  // limit of the agent (docs/benchmarking.md).
  std::size_t max_batch = 16;
};

struct Tally {
  int64_t committed = 0;
  int64_t refused = 0;  // no votes
  int64_t errors = 0;
  std::string first_problem;
  LatencyRecorder latency;  // prepare + commit
  // One sequence of txids for all clients, shaped like a coordinator's
  // (prefix + counter): the agent's B-trees keyed by txid see what they would
  // see behind a coordinator.
  std::string txid_prefix;
  int64_t last_txid = 0;
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

// One client: prepare, then commit if the vote is yes, then the next transaction.
class LoadClient {
 public:
  LoadClient(SendFn send, const AgentLoadOptions& o, int64_t index, Clock::time_point measure_from,
             Clock::time_point stop_at, Tally& tally, Progress& progress)
      : send_(std::move(send)),
        o_(o),
        measure_from_(measure_from),
        stop_at_(stop_at),
        tally_(tally),
        progress_(progress) {
    // Client i owns rows i, i + clients, ...; it takes them in turn.
    for (int64_t r = index % o.accounts; rows_.empty() || r < o.accounts; r += o.clients) {
      rows_.push_back(o.prefix + std::to_string(r));
    }
  }

  void Next() {
    if (Clock::now() >= stop_at_ || progress_.gave_up()) return;
    txid_ = tally_.txid_prefix + std::to_string(++tally_.last_txid);
    http::ClientRequest prepare = Request("/v1/prepare");
    prepare.body = PrepareBody(o_, txid_, rows_[static_cast<std::size_t>(n_) % rows_.size()]);
    ++n_;
    start_ = Clock::now();
    send_(std::move(prepare), [this](Result<http::Response> vote) { OnVote(std::move(vote)); });
  }

 private:
  http::ClientRequest Request(const char* target) const {
    http::ClientRequest r;
    r.base_url = o_.agent;
    r.method = "POST";
    r.target = target;
    r.timeout = std::chrono::milliseconds(30'000);
    return r;
  }

  void OnVote(Result<http::Response> vote) {
    if (!vote.ok()) progress_.Unanswered();
    if (!vote.ok() || vote->status != 200) {
      Finish(false, vote.ok() ? "prepare: HTTP " + std::to_string(vote->status) + " " + vote->body
                              : vote.status().ToString());
      return;
    }
    auto parsed = wire::ParseVote(vote->body);
    if (!parsed.ok() || !parsed->yes) {
      Finish(false, parsed.ok() ? "no vote: " + parsed->reason : parsed.status().ToString());
      return;
    }
    http::ClientRequest commit = Request("/v1/commit");
    commit.body = "{\"txid\":\"" + txid_ + "\"}";
    send_(std::move(commit), [this](Result<http::Response> ack) {
      if (!ack.ok()) progress_.Unanswered();
      if (!ack.ok() || ack->status != 200) {
        Finish(false, ack.ok() ? "commit: HTTP " + std::to_string(ack->status) + " " + ack->body
                               : ack.status().ToString());
      } else {
        Finish(true, "");
      }
    });
  }

  void Finish(bool committed, const std::string& problem) {
    const Clock::time_point end = Clock::now();
    if (committed) {
      progress_.Committed(end - start_);
    } else if (problem.rfind("no vote", 0) == 0 || problem.rfind("prepare: HTTP", 0) == 0 ||
               problem.rfind("commit: HTTP", 0) == 0) {
      progress_.Answered(problem.rfind("no vote", 0) != 0);
    }
    if (!committed && tally_.first_problem.empty()) tally_.first_problem = problem;
    if (start_ >= measure_from_ && end <= stop_at_) {
      if (committed) {
        ++tally_.committed;
        tally_.latency.Record(end - start_);
      } else {
        (problem.rfind("no vote", 0) == 0 ? tally_.refused : tally_.errors) += 1;
      }
    }
    Next();
  }

  SendFn send_;
  const AgentLoadOptions& o_;
  const Clock::time_point measure_from_;
  const Clock::time_point stop_at_;
  Tally& tally_;
  Progress& progress_;
  std::vector<std::string> rows_;
  std::string txid_;
  int64_t n_ = 0;
  Clock::time_point start_;
};

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
  auto in_flight = IntFlag(flags, "max-in-flight", static_cast<int64_t>(o.max_in_flight), 1);
  auto per_exchange = IntFlag(flags, "max-batch", static_cast<int64_t>(o.max_batch), 1);
  for (const Status* s : {&accounts.status(), &clients.status(), &duration.status(), &warmup.status(),
                          &in_flight.status(), &per_exchange.status()}) {
    if (!s->ok()) {
      std::fprintf(stderr, "agent: %s\n", s->message().c_str());
      return 2;
    }
  }
  o.accounts = *accounts;
  o.max_in_flight = static_cast<std::size_t>(*in_flight);
  o.max_batch = static_cast<std::size_t>(*per_exchange);
  o.clients = *clients;
  o.duration_s = *duration;
  o.warmup_s = *warmup;
  o.json = flags.Has("json");
  o.batched = !flags.Has("unbatched");

  asio::io_context io;
  http::ClientOptions client_options;
  client_options.max_idle_per_host = static_cast<std::size_t>(o.clients);
  client_options.request_timeout = std::chrono::milliseconds(30'000);
  http::Client client(io, client_options);
  http::BatchingOptions batching_options;
  batching_options.max_in_flight = o.max_in_flight;
  batching_options.max_batch = o.max_batch;
  http::BatchingClient batching(client, io, batching_options);
  SendFn send = [&](http::ClientRequest request, std::function<void(Result<http::Response>)> done) {
    if (o.batched) {
      batching.Send(std::move(request), std::move(done));
    } else {
      client.Send(std::move(request), std::move(done));
    }
  };
  auto seconds = [](double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); };
  const Clock::time_point measure_from = Clock::now() + seconds(o.warmup_s);
  const Clock::time_point stop_at = measure_from + seconds(o.duration_s);
  Tally t;
  t.txid_prefix = "bench-" +
                  std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count()) +
                  "-";
  Progress progress("agent", o.agent, measure_from);
  asio::co_spawn(io, progress.Run(stop_at), asio::detached);
  std::vector<std::unique_ptr<LoadClient>> loaders;
  for (int64_t i = 0; i < o.clients; ++i) {
    loaders.push_back(std::make_unique<LoadClient>(send, o, i, measure_from, stop_at, t, progress));
    loaders.back()->Next();
  }
  io.run();
  if (progress.gave_up()) {
    std::fprintf(stderr, "agent: %s; is commit-agent running at %s? first problem: %s\n",
                 progress.GiveUpMessage().c_str(), o.agent.c_str(), t.first_problem.c_str());
    return 1;
  }
  const auto stats = batching.stats();

  const double tx_per_s = static_cast<double>(t.committed) / o.duration_s;
  nlohmann::json latency = t.latency.SummaryMs();
  if (o.json) {
    nlohmann::json out = {{"mode", "agent"},          {"clients", o.clients},        {"seconds", o.duration_s},
                          {"committed", t.committed}, {"refused", t.refused},        {"errors", t.errors},
                          {"transactions_per_s", tx_per_s}, {"prepares_commits_per_s", 2 * tx_per_s},
                          {"latency_ms", latency}, {"batched", o.batched}};
    if (o.batched) {
      out["max_in_flight"] = o.max_in_flight;
      out["max_batch"] = o.max_batch;
    }
    if (o.batched && stats.exchanges > 0) {
      out["messages_per_exchange"] = static_cast<double>(stats.requests) / static_cast<double>(stats.exchanges);
    }
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
