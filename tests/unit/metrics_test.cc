#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "tests/unit/support/temp_dir.h"

namespace commitd::metrics {
namespace {

bool Contains(const std::string& text, const std::string& line) { return text.find(line) != std::string::npos; }

TEST_CASE("counters, gauges and labelled series render once per family, in name order") {
  Registry r;
  Counter& committed = r.AddCounter("commitd_transactions_total", "Transactions by outcome.", {{"outcome", "committed"}});
  Counter& aborted = r.AddCounter("commitd_transactions_total", "Transactions by outcome.", {{"outcome", "aborted"}});
  Gauge& in_doubt = r.AddGauge("commitd_transactions_in_doubt", "Decided, not delivered.");
  r.AddGaugeFn("commitd_participant_healthy", "1 if healthy.", {{"participant", "bank \"a\"\\x"}}, [] { return 1.0; });
  committed.Inc();
  committed.Inc(2);
  aborted.Inc();
  in_doubt.Set(4);
  const std::string text = r.Render();
  CHECK(text ==
        "# HELP commitd_participant_healthy 1 if healthy.\n"
        "# TYPE commitd_participant_healthy gauge\n"
        "commitd_participant_healthy{participant=\"bank \\\"a\\\"\\\\x\"} 1\n"
        "# HELP commitd_transactions_in_doubt Decided, not delivered.\n"
        "# TYPE commitd_transactions_in_doubt gauge\n"
        "commitd_transactions_in_doubt 4\n"
        "# HELP commitd_transactions_total Transactions by outcome.\n"
        "# TYPE commitd_transactions_total counter\n"
        "commitd_transactions_total{outcome=\"committed\"} 3\n"
        "commitd_transactions_total{outcome=\"aborted\"} 1\n");
}

TEST_CASE("histograms have cumulative buckets, +Inf, sum and count") {
  Registry r;
  Histogram& h = r.AddHistogram("commitd_x_seconds", "X.", {0.001, 0.01, 0.1}, {{"protocol", "2pc"}});
  h.Observe(0.0005);
  h.Observe(0.001);  // on a bound: counted in that bucket (le)
  h.Observe(0.05);
  h.Observe(3);
  const std::string text = r.Render();
  CHECK(Contains(text, "commitd_x_seconds_bucket{protocol=\"2pc\",le=\"0.001\"} 2\n"));
  CHECK(Contains(text, "commitd_x_seconds_bucket{protocol=\"2pc\",le=\"0.01\"} 2\n"));
  CHECK(Contains(text, "commitd_x_seconds_bucket{protocol=\"2pc\",le=\"0.1\"} 3\n"));
  CHECK(Contains(text, "commitd_x_seconds_bucket{protocol=\"2pc\",le=\"+Inf\"} 4\n"));
  CHECK(Contains(text, "commitd_x_seconds_sum{protocol=\"2pc\"} 3.0515\n"));
  CHECK(Contains(text, "commitd_x_seconds_count{protocol=\"2pc\"} 4\n"));
}

TEST_CASE("a labelled family resolves each child once and renders every child under one name") {
  Registry r;
  HistogramFamily rtt(r, "commitd_participant_round_trip_seconds", "Round trips.", {"participant", "phase"},
                      {0.01, 0.1});
  CounterFamily errors(r, "commitd_participant_errors_total", "Errors.", {"participant", "kind"});
  Histogram& a_prepare = rtt.With({"bank-a", "prepare"});
  CHECK(&rtt.With({"bank-a", "prepare"}) == &a_prepare);
  CHECK(&rtt.With({"bank-b", "prepare"}) != &a_prepare);
  a_prepare.Observe(0.005);
  errors.With({"bank-a", "timeout"}).Inc();
  errors.With({"bank-b", "unreachable"}).Inc(2);
  std::string text = r.Render();
  CHECK(Contains(text, "commitd_participant_round_trip_seconds_bucket{participant=\"bank-a\",phase=\"prepare\",le=\"0.01\"} 1\n"));
  CHECK(Contains(text, "commitd_participant_round_trip_seconds_count{participant=\"bank-b\",phase=\"prepare\"} 0\n"));
  CHECK(Contains(text, "commitd_participant_errors_total{participant=\"bank-b\",kind=\"unreachable\"} 2\n"));
  // A removed participant's series go; the rest stay.
  errors.Remove({"bank-b", "unreachable"});
  rtt.Remove({"bank-b", "prepare"});
  text = r.Render();
  CHECK(!Contains(text, "bank-b"));
  CHECK(Contains(text, "commitd_participant_errors_total{participant=\"bank-a\",kind=\"timeout\"} 1\n"));
  // Made again after removal: from zero.
  CHECK(errors.With({"bank-b", "unreachable"}).value() == 0);
}

TEST_CASE("a family whose every series was removed renders nothing") {
  Registry r;
  GaugeFamily healthy(r, "commitd_participant_healthy", "Health.", {"participant"});
  healthy.With({"bank-a"}).Set(1);
  healthy.Remove({"bank-a"});
  CHECK(r.Render().empty());
}

TEST_CASE("recording from several threads loses nothing") {
  Registry r;
  Histogram& h = r.AddHistogram("commitd_x_seconds", "X.", {0.5});
  Counter& c = r.AddCounter("commitd_x_total", "X.");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        h.Observe(i % 2 == 0 ? 0.25 : 1.0);
        c.Inc();
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(h.count() == 40000);
  CHECK(h.Cumulative()[0] == 20000);
  CHECK(h.sum() == doctest::Approx(20000 * 0.25 + 20000 * 1.0));
  CHECK(c.value() == 40000);
}

TEST_CASE("process metrics and build info read real values") {
  Registry r;
  AddProcessMetrics(r);
  AddBuildInfo(r, "commitd", "1.2.3", "abc1234");
  const std::string text = r.Render();
  CHECK(Contains(text, "commitd_build_info{version=\"1.2.3\",commit=\"abc1234\"} 1\n"));
  CHECK(Contains(text, "# TYPE process_cpu_seconds_total counter\n"));
  auto value_of = [&](const std::string& name) {
    std::size_t at = text.find("\n" + name + " ");
    REQUIRE(at != std::string::npos);
    return std::stod(text.substr(at + name.size() + 2));
  };
  CHECK(value_of("process_resident_memory_bytes") > 1e5);
  CHECK(value_of("process_open_fds") >= 3);
  CHECK(value_of("process_start_time_seconds") > 1.6e9);
}

TEST_CASE("the rendered text passes promtool check metrics") {
  const char* promtool = "/usr/bin/promtool";
  if (std::FILE* f = std::fopen(promtool, "r")) {
    std::fclose(f);
  } else {
    MESSAGE("promtool is not installed (Debian package prometheus, installed by scripts/deps.sh); skipped");
    return;
  }
  Registry r;
  AddProcessMetrics(r);
  AddBuildInfo(r, "commitd", "1.2.3", "abc1234");
  r.AddCounter("commitd_transactions_total", "Transactions by outcome.", {{"outcome", "committed"}}).Inc();
  r.AddHistogram("commitd_transaction_duration_seconds", "Latency.", LatencyBuckets(), {{"protocol", "2pc"}})
      .Observe(0.002);
  testing::TempDir dir;
  const std::string path = dir.File("metrics.txt");
  std::ofstream(path) << r.Render();
  const std::string command = std::string(promtool) + " check metrics < " + path + " > " + dir.File("out.txt") + " 2>&1";
  const int rc = std::system(command.c_str());
  std::ifstream out(dir.File("out.txt"));
  std::string report((std::istreambuf_iterator<char>(out)), std::istreambuf_iterator<char>());
  CHECK_MESSAGE(rc == 0, report);
}

}  // namespace
}  // namespace commitd::metrics
