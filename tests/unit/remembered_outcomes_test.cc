#include <doctest/doctest.h>

#include <deque>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>

#include "participant/remembered_outcomes.h"

using commitd::participant::Outcome;
using commitd::participant::RememberedOutcomes;

TEST_CASE("remembered outcomes: found by txid, oldest first, a txid kept once") {
  RememberedOutcomes r;
  CHECK(r.empty());
  CHECK(r.Find("t1") == nullptr);
  CHECK(r.Add("t1", Outcome::kCommitted, 10));
  CHECK(r.Add("t2", Outcome::kAborted, 20));
  CHECK_FALSE(r.Add("t1", Outcome::kAborted, 30));  // keeps its outcome and place
  REQUIRE(r.Find("t1") != nullptr);
  CHECK(*r.Find("t1") == Outcome::kCommitted);
  CHECK(*r.Find("t2") == Outcome::kAborted);
  CHECK(r.Find("t3") == nullptr);
  CHECK(r.size() == 2);

  *r.Find("t2") = Outcome::kCommitted;  // the store's outcome replaces the one in memory
  CHECK(*r.Find("t2") == Outcome::kCommitted);

  CHECK(r.oldest_txid() == "t1");
  CHECK(r.oldest_at_ms() == 10);
  r.RequeueOldest(40);  // t1 goes behind t2, at its new time
  CHECK(r.oldest_txid() == "t2");
  CHECK(*r.Find("t1") == Outcome::kCommitted);
  r.ForgetOldest();
  CHECK(r.Find("t2") == nullptr);
  CHECK(r.oldest_txid() == "t1");
  CHECK(r.oldest_at_ms() == 40);
  r.ForgetOldest();
  CHECK(r.empty());
  CHECK(r.Find("t1") == nullptr);
  CHECK(r.Add("t1", Outcome::kAborted, 50));  // forgotten, so remembered anew
  CHECK(*r.Find("t1") == Outcome::kAborted);
}

// Every operation checked against a plain map and queue, through growth,
// shrinking, and long probe runs that wrap around the end of the table.
TEST_CASE("remembered outcomes: agrees with a map and a queue over random use") {
  std::mt19937_64 random(7);
  RememberedOutcomes r;
  std::unordered_map<std::string, Outcome> model;
  std::deque<std::pair<std::string, int64_t>> order;
  int64_t now = 0;
  uint64_t next_txid = 0;
  auto txid_of = [](uint64_t n) { return "c1-1-" + std::to_string(n) + "-" + std::to_string(n * 2654435761u); };

  for (int step = 0; step < 200'000; ++step) {
    ++now;
    // Phases: grow to tens of thousands, drain to a handful (the table
    // shrinks), grow again.
    const bool growing = (step / 40'000) % 2 == 0;
    const uint64_t roll = random() % 100;
    if (roll < (growing ? 60u : 25u)) {
      const std::string txid = txid_of(next_txid++);
      const Outcome outcome = random() % 2 == 0 ? Outcome::kCommitted : Outcome::kAborted;
      CHECK(r.Add(txid, outcome, now));
      model.emplace(txid, outcome);
      order.emplace_back(txid, now);
    } else if (roll < 80 && !order.empty()) {
      REQUIRE(r.oldest_txid() == order.front().first);
      REQUIRE(r.oldest_at_ms() == order.front().second);
      if (random() % 10 == 0) {
        r.RequeueOldest(now);
        order.emplace_back(order.front().first, now);
      } else {
        r.ForgetOldest();
        model.erase(order.front().first);
      }
      order.pop_front();
    } else if (!order.empty()) {
      // A remembered txid, and one never or no longer remembered.
      const std::string& known = order[random() % order.size()].first;
      const Outcome* found = r.Find(known);
      REQUIRE(found != nullptr);
      CHECK(*found == model.at(known));
      CHECK_FALSE(r.Add(known, Outcome::kAborted, now));
      const std::string other = txid_of(random() % (next_txid + 100));
      CHECK((r.Find(other) != nullptr) == (model.count(other) != 0));
    }
    REQUIRE(r.size() == model.size());
  }
  for (const auto& [txid, outcome] : model) {
    REQUIRE(r.Find(txid) != nullptr);
    CHECK(*r.Find(txid) == outcome);
  }
  while (!r.empty()) r.ForgetOldest();
  for (const auto& [txid, outcome] : model) CHECK(r.Find(txid) == nullptr);
}
