// How the coordinator reads an agent's HTTP answers (status + error code)
// into the typed answers its engine acts on.
#include <doctest/doctest.h>

#include <cstdint>
#include <set>
#include <string>

#include "coordinator/agent_answers.h"
#include "participant/engine.h"

using namespace commitd;
using namespace commitd::coordinator;

namespace {

std::string ErrorBody(const std::string& code) {
  return R"({"error":{"code":")" + code + R"(","message":"m"}})";
}

}  // namespace

TEST_CASE("a precommit's answer: ack, abort, or no record of the transaction") {
  auto acked = PrecommitAnswerOf(200, R"({"txid":"t","state":"precommitted"})");
  REQUIRE(acked.ok());
  CHECK(*acked == PrecommitAnswer::kAcked);

  // An agent that finished it by committing says so: proof of the outcome.
  auto committed = PrecommitAnswerOf(200, R"({"txid":"t","state":"committed"})");
  REQUIRE(committed.ok());
  CHECK(*committed == PrecommitAnswer::kCommitted);
  // A 200 that is not an agent's answer (a proxy's page, say) acks nothing.
  for (const char* body : {R"({"state":7})", R"({"state":"prepared"})", "[]", "not json", ""}) {
    CAPTURE(body);
    auto odd = PrecommitAnswerOf(200, body);
    REQUIRE_FALSE(odd.ok());
    CHECK(odd.status().code() == StatusCode::kUnavailable);
  }

  auto aborted = PrecommitAnswerOf(409, ErrorBody("already_aborted"));
  REQUIRE(aborted.ok());
  CHECK(*aborted == PrecommitAnswer::kAborted);

  // No record is not an abort: the agent may have committed and forgotten it.
  auto unknown = PrecommitAnswerOf(404, ErrorBody("unknown_transaction"));
  REQUIRE(unknown.ok());
  CHECK(*unknown == PrecommitAnswer::kUnknownTransaction);

  // Anything else says nothing about the outcome: asked again later.
  for (auto [status, body] : {std::pair{409, ErrorBody("not_prepared")}, std::pair{404, ErrorBody("not_found")},
                              std::pair{404, std::string("not json")}, std::pair{409, std::string("{}")},
                              std::pair{503, ErrorBody("storage_error")}, std::pair{100, std::string()}}) {
    CAPTURE(status);
    CAPTURE(body);
    auto answer = PrecommitAnswerOf(status, body);
    REQUIRE_FALSE(answer.ok());
    CHECK(answer.status().code() == StatusCode::kUnavailable);
  }
}

TEST_CASE("a decision's answer: ack, no record of the transaction, or finished there already") {
  auto acked = DecisionAckOf(200, R"({"txid":"t","state":"committed"})");
  REQUIRE(acked.ok());
  CHECK(*acked == DecisionAck::kAcked);
  auto unknown = DecisionAckOf(404, ErrorBody("unknown_transaction"));
  REQUIRE(unknown.ok());
  CHECK(*unknown == DecisionAck::kUnknownTransaction);
  auto aborted = DecisionAckOf(409, ErrorBody("already_aborted"));
  REQUIRE(aborted.ok());
  CHECK(*aborted == DecisionAck::kFoundAborted);
  for (const char* code : {"already_committed", "already_committing"}) {
    auto committed = DecisionAckOf(409, ErrorBody(code));
    REQUIRE(committed.ok());
    CHECK(*committed == DecisionAck::kFoundCommitted);
  }
  // Not finished there: tried again later.
  for (const char* code : {"not_prepared", "commit_not_from_coordinator", "abort_not_from_coordinator"}) {
    auto refused = DecisionAckOf(409, ErrorBody(code));
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.status().code() == StatusCode::kUnavailable);
  }
  auto unavailable = DecisionAckOf(503, ErrorBody("stopping"));
  REQUIRE_FALSE(unavailable.ok());
  CHECK(DecisionAckName(DecisionAck::kFoundAborted) == "found_aborted");
}

TEST_CASE("an adoption's answer: adopted, what the participant did, or ask again") {
  auto adopted = AdoptAnswerOf(
      200, R"({"txid":"t","state":"prepared","adopted_by":"l","participants":[{"name":"bank-a","url":"http://a:1"},)"
           R"({"name":"bank-c","url":"http://c:3"}]})");
  REQUIRE(adopted.ok());
  CHECK(adopted->answer == AdoptAnswer::kAdopted);
  REQUIRE(adopted->participants.size() == 2);
  CHECK(adopted->participants[1].name == "bank-c");
  CHECK(adopted->participants[1].url == "http://c:3");
  CHECK(AdoptAnswerOf(200, R"({"txid":"t","state":"prepared"})")->participants.empty());  // a record that kept none
  CHECK(!AdoptAnswerOf(200, R"({"txid":"t","participants":[{"name":1}]})").ok());  // unreadable: no answer
  CHECK(AdoptAnswerOf(409, ErrorBody("already_committed"))->answer == AdoptAnswer::kCommitted);
  CHECK(AdoptAnswerOf(409, ErrorBody("already_committing"))->answer == AdoptAnswer::kCommitted);
  CHECK(AdoptAnswerOf(409, ErrorBody("already_aborted"))->answer == AdoptAnswer::kAborted);
  CHECK(AdoptAnswerOf(404, ErrorBody("unknown_transaction"))->answer == AdoptAnswer::kUnknown);
  // Still being written, another adoption running, an agent without the route, an error.
  for (auto [status, code] : {std::pair{409, "not_prepared"}, std::pair{409, "adoption_in_progress"},
                              std::pair{404, "not_found"}, std::pair{503, "storage_error"}}) {
    auto answer = AdoptAnswerOf(status, ErrorBody(code));
    REQUIRE_FALSE(answer.ok());
    CHECK(answer.status().code() == StatusCode::kUnavailable);
  }
}

TEST_CASE("a state query's answer: every state an agent names reads as holding, committed, aborted or unknown") {
  using participant::HeldState;
  auto read = [](std::string_view state) {
    return StateAnswerOf(200, R"({"txid":"t","state":")" + std::string(state) + R"("})");
  };
  for (HeldState held : {HeldState::kPreparing, HeldState::kPrepared, HeldState::kPrecommitting,
                         HeldState::kPrecommitted}) {
    auto answer = read(participant::HeldStateName(held));
    REQUIRE(answer.ok());
    CHECK(*answer == StateAnswer::kHolds);
  }
  // A commit's changeset that did not apply cleanly (conflict) was a commit all the same.
  for (HeldState held : {HeldState::kCommitting, HeldState::kConflict}) {
    auto answer = read(participant::HeldStateName(held));
    REQUIRE(answer.ok());
    CHECK(*answer == StateAnswer::kCommitted);
  }
  auto aborting = read(participant::HeldStateName(HeldState::kAborting));
  REQUIRE(aborting.ok());
  CHECK(*aborting == StateAnswer::kAborted);
  CHECK(*read("executing") == StateAnswer::kHolds);  // how agents before "preparing" name it
  CHECK(*read("persisting") == StateAnswer::kHolds);
  // An agent older than the route cannot tell, which the rule reads as unknown.
  auto no_route = StateAnswerOf(404, ErrorBody("not_found"));
  REQUIRE(no_route.ok());
  CHECK(*no_route == StateAnswer::kUnknown);
  CHECK(*read("committed") == StateAnswer::kCommitted);
  CHECK(*read("aborted") == StateAnswer::kAborted);
  CHECK(*read("unknown") == StateAnswer::kUnknown);
  // Anything else proves nothing: asked again later.
  for (auto [status, body] : {std::pair{200, std::string(R"({"state":"maybe"})")}, std::pair{200, std::string("{}")},
                              std::pair{200, std::string(R"({"state":1})")}, std::pair{200, std::string("not json")},
                              std::pair{404, std::string("{}")}, std::pair{503, ErrorBody("storage_error")}}) {
    CAPTURE(status);
    CAPTURE(body);
    auto answer = StateAnswerOf(status, body);
    REQUIRE_FALSE(answer.ok());
    CHECK(answer.status().code() == StatusCode::kUnavailable);
  }
}

TEST_CASE("a catalog's outcome retention: a non-negative integer, or not known") {
  auto with = CatalogOf(200, R"({"name":"a","procedures":["debit"],"allow_raw_sql":false,"outcome_retention_ms":60000})");
  REQUIRE(with.ok());
  REQUIRE(with->outcome_retention_ms.has_value());
  CHECK(*with->outcome_retention_ms == 60000);
  CHECK(with->procedures == std::set<std::string>{"debit"});
  for (const char* odd : {R"({"procedures":[]})", R"({"procedures":[],"outcome_retention_ms":-1})",
                          R"({"procedures":[],"outcome_retention_ms":"60000"})",
                          R"({"procedures":[],"outcome_retention_ms":1.5})"}) {
    CAPTURE(odd);
    auto catalog = CatalogOf(200, odd);
    REQUIRE(catalog.ok());
    CHECK_FALSE(catalog->outcome_retention_ms.has_value());
  }
  auto huge = CatalogOf(200, R"({"procedures":[],"outcome_retention_ms":18446744073709551615})");
  REQUIRE(huge.ok());
  CHECK(*huge->outcome_retention_ms == INT64_MAX);
}
