#include <utility>  // before Asio: Boost 1.74 uses std::exchange without including it

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/auth.h"
#include "common/http_client.h"
#include "common/tls.h"
#include "tools/bench/flag_values.h"
#include "tools/bench/latency_recorder.h"
#include "tools/bench/modes.h"
#include "tools/bench/progress.h"
#include "common/json_parse.h"

namespace commitd::bench {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct TransferOptions {
  std::string coordinator;
  std::string token;
  tls::Context tls;  // for an https:// coordinator (--tls-ca)
  int64_t clients = 1;
  double duration_s = 10;
  double warmup_s = 1;
  std::vector<std::string> accounts_a;
  std::vector<std::string> accounts_b;
  std::string participant_a = "bank-a";
  std::string participant_b = "bank-b";
  int64_t amount = 1;
  std::string protocol = "2pc";
  bool json = false;
  std::string key_prefix;  // non-empty: every request carries Idempotency-Key <prefix><client>-<n>
};

// Requests that started after the warmup and ended before the stop time.
struct Tally {
  int64_t committed = 0;
  int64_t aborted = 0;
  int64_t errors = 0;
  LatencyRecorder latency;
  std::map<std::string, int64_t> error_kinds;  // "http 429", "unavailable", ...
  std::string first_error;
  std::string first_abort_reason;
};

Result<TransferOptions> ReadOptions(const Flags& flags) {
  TransferOptions o;
  auto coordinator = flags.Get("coordinator");
  if (!coordinator) return Status::InvalidArgument("--coordinator URL is required");
  o.coordinator = *coordinator;
  const char* env_token = std::getenv("COMMITD_TOKEN");
  o.token = flags.Get("token").value_or(env_token != nullptr ? env_token : "");
  if (auto path = flags.Get("token-file")) {
    auto secret = auth::ReadSecretFile(*path);
    if (!secret.ok()) return Status::InvalidArgument("--token-file " + secret.status().message());
    o.token = std::move(secret).value();
  }
  if (auto ca = flags.Get("tls-ca")) {
    auto context = tls::ClientContext({*ca, "", ""});
    if (!context.ok()) return Status::InvalidArgument("--tls-ca " + context.status().message());
    o.tls = std::move(context).value();
  }
  o.participant_a = flags.Get("participant-a").value_or(o.participant_a);
  o.participant_b = flags.Get("participant-b").value_or(o.participant_b);
  o.protocol = flags.Get("protocol").value_or(o.protocol);
  if (o.protocol != "2pc" && o.protocol != "3pc") return Status::InvalidArgument("--protocol: 2pc or 3pc");
  o.json = flags.Has("json");
  if (flags.Has("idempotency-keys")) {
    // One prefix per run: a later run never replays an earlier run's keys.
    std::random_device random;
    o.key_prefix = "bench-" + std::to_string(random()) + std::to_string(random()) + "-";
  }

  auto clients = IntFlag(flags, "clients", 1, 1);
  auto duration = DoubleFlag(flags, "duration-s", 10, 0.1);
  auto warmup = DoubleFlag(flags, "warmup-s", 1, 0);
  auto amount = IntFlag(flags, "amount", 1, 1);
  auto count = IntFlag(flags, "accounts", 256, 1);
  for (const Status* s : {&clients.status(), &duration.status(), &warmup.status(), &amount.status(),
                          &count.status()}) {
    if (!s->ok()) return *s;
  }
  o.clients = *clients;
  o.duration_s = *duration;
  o.warmup_s = *warmup;
  o.amount = *amount;

  const bool named = flags.Has("accounts-a") || flags.Has("accounts-b");
  if (named && (flags.Has("account-prefix") || flags.Has("accounts"))) {
    return Status::InvalidArgument("give --accounts-a/--accounts-b or --account-prefix/--accounts, not both");
  }
  if (named) {
    o.accounts_a = SplitCommas(flags.Get("accounts-a").value_or(""));
    o.accounts_b = SplitCommas(flags.Get("accounts-b").value_or(""));
    if (o.accounts_a.empty() || o.accounts_b.empty()) {
      return Status::InvalidArgument("--accounts-a and --accounts-b each need at least one account");
    }
  } else {
    const std::string prefix = flags.Get("account-prefix").value_or("acct");
    for (int64_t i = 0; i < *count; ++i) o.accounts_a.push_back(prefix + std::to_string(i));
    o.accounts_b = o.accounts_a;
  }
  return o;
}

// The transfer between row `row` of each bank.
std::string TransferBody(const TransferOptions& o, std::size_t row) {
  const std::string& a = o.accounts_a[row % o.accounts_a.size()];
  const std::string& b = o.accounts_b[row % o.accounts_b.size()];
  nlohmann::json body = {
      {"protocol", o.protocol},
      {"branches",
       {{{"participant", o.participant_a},
         {"ops",
          {{{"procedure", "debit"}, {"args", {{"account", a}, {"amount", o.amount}}}},
           {{"procedure", "journal"}, {"args", {{"account", a}, {"delta", -o.amount}}}}}}},
        {{"participant", o.participant_b},
         {"ops",
          {{{"procedure", "credit"}, {"args", {{"account", b}, {"amount", o.amount}}}},
           {{"procedure", "journal"}, {"args", {{"account", b}, {"delta", o.amount}}}}}}}}}};
  return body.dump();
}

asio::awaitable<void> ClientLoop(http::Client& client, const TransferOptions& o, int64_t index,
                                 Clock::time_point measure_from, Clock::time_point stop_at, Tally& tally,
                                 Progress& progress) {
  http::ClientRequest request;
  request.base_url = o.coordinator;
  request.method = "POST";
  request.target = "/v1/transactions";
  // Client i owns rows i, i + clients, i + 2*clients, ... and takes them in
  // turn: clients never share a row while there are at least as many accounts
  // as clients, and a client's next transfer does not wait on the lock of its
  // previous one (answered once the decision is durable, before agents applied
  // it) unless it owns a single row.
  std::vector<std::string> bodies;
  const std::size_t rows = std::min(o.accounts_a.size(), o.accounts_b.size());
  for (std::size_t row = static_cast<std::size_t>(index) % rows; bodies.empty() || row < rows;
       row += static_cast<std::size_t>(o.clients)) {
    bodies.push_back(TransferBody(o, row));
  }
  std::size_t next_body = 0;
  int64_t sent = 0;
  request.headers.emplace_back("Content-Type", "application/json");
  if (!o.token.empty()) request.headers.emplace_back("Authorization", "Bearer " + o.token);
  if (!o.key_prefix.empty()) request.headers.emplace_back("Idempotency-Key", "");
  asio::steady_timer backoff(co_await asio::this_coro::executor);

  while (Clock::now() < stop_at && !progress.gave_up()) {
    request.body = bodies[next_body++ % bodies.size()];
    if (!o.key_prefix.empty()) {
      request.headers.back().second = o.key_prefix + std::to_string(index) + "-" + std::to_string(++sent);
    }
    const Clock::time_point start = Clock::now();
    Result<http::Response> reply = co_await client.Fetch(request);
    const Clock::time_point end = Clock::now();
    const bool measured = start >= measure_from && end <= stop_at;

    std::string error;
    if (!reply.ok()) {
      error = std::string(StatusCodeName(reply.status().code()));
      if (tally.first_error.empty()) tally.first_error = reply.status().ToString();
    } else if (reply->status != 200 && reply->status != 409) {
      error = "http " + std::to_string(reply->status);
      if (tally.first_error.empty()) tally.first_error = error + ": " + reply->body;
    }
    if (!reply.ok()) {
      progress.Unanswered();
    } else if (reply->status == 200) {
      progress.Committed(end - start);
    } else {
      progress.Answered(!error.empty());
    }
    if (error.empty() && reply->status == 409 && tally.first_abort_reason.empty()) {
      auto body = ParseJson(reply->body);
      tally.first_abort_reason = body.is_object() ? body.value("reason", reply->body) : reply->body;
    }
    if (measured) {
      if (!error.empty()) {
        ++tally.errors;
        ++tally.error_kinds[error];
      } else {
        (reply->status == 200 ? tally.committed : tally.aborted) += 1;
        tally.latency.Record(end - start);
      }
    }
    if (!error.empty()) {
      // Keeps a dead or overloaded coordinator from being hammered in a tight loop.
      backoff.expires_after(std::chrono::milliseconds(20));
      co_await backoff.async_wait(asio::use_awaitable);
    }
  }
}

void PrintReport(const TransferOptions& o, Tally& t, double measured_s) {
  const double committed_per_s = static_cast<double>(t.committed) / measured_s;
  const double aborted_per_s = static_cast<double>(t.aborted) / measured_s;
  nlohmann::json latency = t.latency.SummaryMs();
  if (o.json) {
    nlohmann::json out = {{"mode", "transfers"},
                          {"protocol", o.protocol},
                          {"clients", o.clients},
                          {"seconds", measured_s},
                          {"committed", t.committed},
                          {"aborted", t.aborted},
                          {"errors", t.errors},
                          {"error_kinds", t.error_kinds},
                          {"committed_per_s", committed_per_s},
                          {"aborted_per_s", aborted_per_s},
                          {"latency_ms", latency}};
    if (!t.first_error.empty()) out["first_error"] = t.first_error;
    if (!t.first_abort_reason.empty()) out["first_abort_reason"] = t.first_abort_reason;
    std::printf("%s\n", out.dump().c_str());
    return;
  }
  std::printf("transfers: %s, %lld clients, %.1f s measured (after %.1f s warmup)\n", o.protocol.c_str(),
              static_cast<long long>(o.clients), measured_s, o.warmup_s);
  std::printf("  committed  %10lld  (%.0f/s)\n", static_cast<long long>(t.committed), committed_per_s);
  std::printf("  aborted    %10lld  (%.0f/s)\n", static_cast<long long>(t.aborted), aborted_per_s);
  std::printf("  errors     %10lld\n", static_cast<long long>(t.errors));
  for (const auto& [kind, n] : t.error_kinds) std::printf("    %-20s %lld\n", kind.c_str(), static_cast<long long>(n));
  std::printf("  latency ms p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", latency["p50"].get<double>(),
              latency["p90"].get<double>(), latency["p99"].get<double>(), latency["max"].get<double>());
  if (!t.first_error.empty()) std::printf("  first error: %s\n", t.first_error.c_str());
  if (!t.first_abort_reason.empty()) std::printf("  first abort: %s\n", t.first_abort_reason.c_str());
}

}  // namespace

int RunTransfers(const Flags& flags) {
  auto options = ReadOptions(flags);
  if (!options.ok()) {
    std::fprintf(stderr, "transfers: %s\n", options.status().message().c_str());
    return 2;
  }
  const TransferOptions& o = *options;
  if (static_cast<std::size_t>(o.clients) > std::min(o.accounts_a.size(), o.accounts_b.size())) {
    std::fprintf(stderr, "transfers: warning: %lld clients share fewer accounts; expect lock-conflict aborts\n",
                 static_cast<long long>(o.clients));
  }

  asio::io_context io;
  http::ClientOptions client_options;
  client_options.max_idle_per_host = static_cast<std::size_t>(o.clients);
  client_options.request_timeout = std::chrono::milliseconds(30'000);
  client_options.tls = o.tls;
  http::Client client(io, client_options);

  auto seconds = [](double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  const Clock::time_point measure_from = Clock::now() + seconds(o.warmup_s);
  const Clock::time_point stop_at = measure_from + seconds(o.duration_s);
  Tally tally;
  Progress progress("transfers", o.coordinator, measure_from);
  asio::co_spawn(io, progress.Run(stop_at), asio::detached);
  for (int64_t i = 0; i < o.clients; ++i) {
    asio::co_spawn(io, ClientLoop(client, o, i, measure_from, stop_at, tally, progress), asio::detached);
  }
  io.run();

  if (progress.gave_up()) {
    std::fprintf(stderr, "transfers: %s; is commitd running at %s? first error: %s\n",
                 progress.GiveUpMessage().c_str(), o.coordinator.c_str(), tally.first_error.c_str());
    return 1;
  }

  if (tally.committed + tally.aborted == 0 && tally.errors > 0) {
    PrintReport(o, tally, o.duration_s);
    std::fprintf(stderr, "transfers: no request succeeded; is commitd running at %s with participants %s and %s?\n",
                 o.coordinator.c_str(), o.participant_a.c_str(), o.participant_b.c_str());
    return 1;
  }
  PrintReport(o, tally, o.duration_s);
  return 0;
}

}  // namespace commitd::bench
