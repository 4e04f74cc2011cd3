#include "common/wire.h"

#include <doctest/doctest.h>

#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/json_syntax.h"
#include "common/json_text.h"
#include "participant/engine.h"

namespace commitd::wire {
namespace {

using nlohmann::json;

struct BadBody {
  std::string body;
  std::string message;
};

// One good branch, spliced into bodies that are wrong elsewhere.
const std::string kGoodBranch = R"({"participant":"bank-a","ops":[{"procedure":"debit","args":{"amount":1}}]})";

std::string WithOp(const std::string& op) {
  return R"({"branches":[{"participant":"bank-a","ops":[)" + op + "]}]}";
}

TEST_CASE("ParseTxRequest rejects bad bodies with a precise message") {
  const std::vector<BadBody> cases = {
      {"{", ""},  // message checked by prefix below
      {"[1,2]", "body: must be a JSON object"},
      {"\"hi\"", "body: must be a JSON object"},
      {"{}", "branches: is required"},
      {R"({"branches":[]})", "branches: must be a non-empty array"},
      {R"({"branches":{}})", "branches: must be a non-empty array"},
      {R"({"branches":[1]})", "branches[0]: must be an object"},
      {R"({"branches":[{"ops":[{"procedure":"p"}]}]})", "branches[0].participant: is required"},
      {R"({"branches":[{"participant":"","ops":[{"procedure":"p"}]}]})",
       "branches[0].participant: must be a non-empty string"},
      {R"({"branches":[{"participant":7,"ops":[{"procedure":"p"}]}]})", "branches[0].participant: must be a string"},
      {R"({"branches":[)" + kGoodBranch + "," + kGoodBranch + "]}",
       "branches[1].participant: 'bank-a' appears in more than one branch"},
      {R"({"branches":[{"participant":"bank-a"}]})", "branches[0].ops: is required"},
      {R"({"branches":[{"participant":"bank-a","ops":[]}]})", "branches[0].ops: must be a non-empty array"},
      {R"({"branches":[{"participant":"bank-a","ops":"x"}]})", "branches[0].ops: must be a non-empty array"},
      {R"({"branches":[{"participant":"bank-a","ops":[{"procedure":"p"}],"x":1}]})",
       "branches[0]: unknown field \"x\""},
      {WithOp("3"), "branches[0].ops[0]: must be an object"},
      {WithOp(R"({"procedure":"p","sql":"SELECT 1"})"),
       "branches[0].ops[0]: must have exactly one of \"procedure\" or \"sql\""},
      {WithOp("{}"), "branches[0].ops[0]: must have exactly one of \"procedure\" or \"sql\""},
      {WithOp(R"({"procedure":""})"), "branches[0].ops[0].procedure: must be a non-empty string"},
      {WithOp(R"({"procedure":5})"), "branches[0].ops[0].procedure: must be a string"},
      {WithOp(R"({"sql":""})"), "branches[0].ops[0].sql: must be a non-empty string"},
      {WithOp(R"({"procedure":"p","args":[1]})"), "branches[0].ops[0].args: must be an object"},
      {WithOp(R"({"procedure":"p"},{"procedure":"p","args":{"amount":{"x":1}}})"),
       "branches[0].ops[1].args.amount: must be a string, number, boolean or null"},
      {WithOp(R"({"procedure":"p","args":{"a":1,"amount":[1]}})"),
       "branches[0].ops[0].args.amount: must be a string, number, boolean or null"},
      {WithOp(R"({"sql":"SELECT ?1","params":{"a":1}})"), "branches[0].ops[0].params: must be an array"},
      {WithOp(R"({"sql":"SELECT ?1","params":[1,{"a":1}]})"),
       "branches[0].ops[0].params[1]: must be a string, number, boolean or null"},
      {WithOp(R"({"sql":"SELECT 1","args":{}})"), "branches[0].ops[0].args: only allowed with \"procedure\""},
      {WithOp(R"({"procedure":"p","params":[]})"), "branches[0].ops[0].params: only allowed with \"sql\""},
      {WithOp(R"({"procedure":"p","foo":1})"), "branches[0].ops[0]: unknown field \"foo\""},
      {R"({"branches":[)" + kGoodBranch + R"(],"extra":true})", "body: unknown field \"extra\""},
      {R"({"protocol":"4pc","branches":[)" + kGoodBranch + "]}", "protocol: must be \"2pc\" or \"3pc\""},
      {R"({"protocol":2,"branches":[)" + kGoodBranch + "]}", "protocol: must be \"2pc\" or \"3pc\""},
      {R"({"timeout_ms":0,"branches":[)" + kGoodBranch + "]}",
       "timeout_ms: must be an integer between 1 and 600000"},
      {R"({"timeout_ms":-5,"branches":[)" + kGoodBranch + "]}",
       "timeout_ms: must be an integer between 1 and 600000"},
      {R"({"timeout_ms":"100","branches":[)" + kGoodBranch + "]}",
       "timeout_ms: must be an integer between 1 and 600000"},
      {R"({"timeout_ms":600001,"branches":[)" + kGoodBranch + "]}",
       "timeout_ms: must be an integer between 1 and 600000"},
      {R"({"timeout_ms":1.5,"branches":[)" + kGoodBranch + "]}",
       "timeout_ms: must be an integer between 1 and 600000"},
      {R"({"timeout_ms":18446744073709551615,"branches":[)" + kGoodBranch + "]}",
       "timeout_ms: must be an integer between 1 and 600000"},
  };
  CHECK(cases.size() >= 20);
  for (const BadBody& c : cases) {
    CAPTURE(c.body);
    Result<TxRequest> r = ParseTxRequest(std::string_view(c.body));
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == StatusCode::kInvalidArgument);
    if (c.message.empty()) {
      CHECK(r.status().message().rfind("body is not valid JSON: ", 0) == 0);
      CHECK(r.status().message().size() > std::string("body is not valid JSON: ").size());
    } else {
      CHECK(r.status().message() == c.message);
    }
  }
}

TEST_CASE("ParseTxRequest enforces size limits") {
  json many = json::array();
  for (std::size_t i = 0; i <= kMaxBranches; ++i) {
    many.push_back({{"participant", "p" + std::to_string(i)}, {"ops", {{{"procedure", "x"}}}}});
  }
  Result<TxRequest> r = ParseTxRequest(json{{"branches", many}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "branches: must have at most 64 entries");

  json ops = json::array();
  for (std::size_t i = 0; i <= kMaxOpsPerBranch; ++i) ops.push_back({{"procedure", "x"}});
  r = ParseTxRequest(json{{"branches", {{{"participant", "a"}, {"ops", ops}}}}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "branches[0].ops: must have at most 1024 entries");
}

TEST_CASE("ParseTxRequest accepts the design's example and round-trips ops") {
  const std::string body = R"({
    "protocol": "3pc", "timeout_ms": 5000,
    "branches": [
      {"participant": "bank-a",
       "ops": [{"procedure": "debit", "args": {"account": "alice", "amount": 30, "note": null, "ok": true}},
               {"procedure": "balance"}]},
      {"participant": "bank-b",
       "ops": [{"sql": "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2", "params": [30, "bob", 1.5]},
               {"sql": "SELECT 1"}]}]})";
  Result<TxRequest> r = ParseTxRequest(std::string_view(body));
  REQUIRE(r.ok());
  CHECK(r->protocol == Protocol::k3pc);
  REQUIRE(r->timeout_ms.has_value());
  CHECK(*r->timeout_ms == 5000);
  REQUIRE(r->branches.size() == 2);
  CHECK(r->branches[0].participant == "bank-a");
  CHECK(r->branches[1].participant == "bank-b");

  const Op& debit = r->branches[0].ops[0];
  CHECK_FALSE(debit.is_raw());
  CHECK(*debit.procedure == "debit");
  CHECK(debit.args["amount"] == 30);
  CHECK(r->branches[0].ops[1].args == json::object());
  const Op& update = r->branches[1].ops[0];
  CHECK(update.is_raw());
  CHECK(update.params == json::array({30, "bob", 1.5}));
  CHECK(r->branches[1].ops[1].params == json::array());

  for (const Branch& b : r->branches) {
    for (const Op& op : b.ops) {
      Result<Op> again = ParseOp(OpToJson(op), "op");
      REQUIRE(again.ok());
      CHECK(again->procedure == op.procedure);
      CHECK(again->sql == op.sql);
      CHECK(again->args == op.args);
      CHECK(again->params == op.params);
    }
  }
  CHECK(OpToJson(debit) ==
        json{{"procedure", "debit"}, {"args", {{"account", "alice"}, {"amount", 30}, {"note", nullptr}, {"ok", true}}}});
}

TEST_CASE("ParseTxRequest defaults") {
  Result<TxRequest> r = ParseTxRequest(std::string_view(R"({"branches":[)" + kGoodBranch + "]}"));
  REQUIRE(r.ok());
  CHECK(r->protocol == Protocol::k2pc);
  CHECK_FALSE(r->timeout_ms.has_value());
  r = ParseTxRequest(std::string_view(R"({"timeout_ms":600000,"protocol":"2pc","branches":[)" + kGoodBranch + "]}"));
  REQUIRE(r.ok());
  CHECK(*r->timeout_ms == 600000);
}

TEST_CASE("ProtocolName") {
  CHECK(ProtocolName(Protocol::k2pc) == "2pc");
  CHECK(ProtocolName(Protocol::k3pc) == "3pc");
}

TEST_CASE("PrepareRequest round-trips") {
  PrepareRequest p;
  p.txid = "tx-1:a.b_c";
  p.protocol = Protocol::k3pc;
  p.participant = "bank-a";
  p.coordinator = "http://127.0.0.1:7000";
  p.timeout_ms = 2500;
  Op op1;
  op1.procedure = "debit";
  op1.args = {{"account", "alice"}, {"amount", 30}};
  Op op2;
  op2.sql = "SELECT balance FROM accounts WHERE id = ?1";
  op2.params = {"bob"};
  p.ops = {op1, op2};
  p.participants = {{"bank-a", "http://127.0.0.1:7101"}, {"bank-b", "http://127.0.0.1:7102"}};

  json j = ToJson(p);
  CHECK(j["protocol"] == "3pc");
  CHECK(j["participants"][1] == json{{"name", "bank-b"}, {"url", "http://127.0.0.1:7102"}});
  Result<PrepareRequest> back = ParsePrepareRequest(j.dump());
  REQUIRE(back.ok());
  CHECK(back->txid == p.txid);
  CHECK(back->protocol == p.protocol);
  CHECK(back->participant == p.participant);
  CHECK(back->coordinator == p.coordinator);
  CHECK(back->timeout_ms == p.timeout_ms);
  REQUIRE(back->ops.size() == 2);
  CHECK(*back->ops[0].procedure == "debit");
  CHECK(back->ops[0].args == op1.args);
  CHECK(*back->ops[1].sql == *op2.sql);
  CHECK(back->ops[1].params == op2.params);
  REQUIRE(back->participants.size() == 2);
  CHECK(back->participants[0].name == "bank-a");
  CHECK(back->participants[1].url == "http://127.0.0.1:7102");
  CHECK(ToJson(*back) == j);
}

TEST_CASE("ParsePrepareRequest rejects bad bodies") {
  json good = ToJson(PrepareRequest{"t1", Protocol::k2pc, "a", "http://c", 100, {Op{"p"}}, {}});
  REQUIRE(ParsePrepareRequest(good.dump()).ok());
  struct Case {
    json body;
    std::string message;
  };
  auto with = [&](const char* key, json value) {
    json b = good;
    b[key] = std::move(value);
    return b;
  };
  auto without = [&](const char* key) {
    json b = good;
    b.erase(key);
    return b;
  };
  const std::vector<Case> cases = {
      {without("txid"), "txid: is required"},
      {with("txid", "a b"), "txid: must be 1 to 128 characters of [A-Za-z0-9._:-]"},
      {with("txid", 1), "txid: must be a string"},
      {with("protocol", "x"), "protocol: must be \"2pc\" or \"3pc\""},
      {without("participant"), "participant: is required"},
      {with("coordinator", 3), "coordinator: must be a string"},
      {without("timeout_ms"), "timeout_ms: is required"},
      {with("timeout_ms", 0), "timeout_ms: must be an integer between 1 and 600000"},
      {with("ops", json::array()), "ops: must be a non-empty array"},
      {with("ops", {{{"sql", "x"}, {"args", json::object()}}}), "ops[0].args: only allowed with \"procedure\""},
      {with("participants", "x"), "participants: must be an array"},
      {with("participants", {{{"name", "a"}}}), "participants[0].url: is required"},
      {with("participants", {{{"name", "a"}, {"url", "u"}, {"x", 1}}}), "participants[0]: unknown field \"x\""},
      {with("extra", 1), "body: unknown field \"extra\""},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body.dump());
    Result<PrepareRequest> r = ParsePrepareRequest(c.body.dump());
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message() == c.message);
  }
  CHECK(ParsePrepareRequest("nope").status().message().rfind("body is not valid JSON: ", 0) == 0);
}

TEST_CASE("Vote round-trips") {
  Vote yes{"t-1", true, "", json::array({json::array({{{"balance", 70}}}), json::array()})};
  json j = ToJson(yes);
  CHECK(j == json{{"txid", "t-1"}, {"vote", "yes"}, {"reason", ""}, {"results", yes.results}});
  Result<Vote> back = ParseVote(j.dump());
  REQUIRE(back.ok());
  CHECK(back->txid == "t-1");
  CHECK(back->yes);
  CHECK(back->results == yes.results);

  Vote no{"t-2", false, "lock conflict with t-1", json::array()};
  back = ParseVote(ToJson(no).dump());
  REQUIRE(back.ok());
  CHECK_FALSE(back->yes);
  CHECK(back->reason == "lock conflict with t-1");
  CHECK(back->results == json::array());
  CHECK(back->no_code == VoteNoCode::kOther);
  CHECK_FALSE(ToJson(no).contains("code"));

  // A no because of a lock conflict says so in "code"; an unknown code is a plain no.
  Vote conflict{"t-3", false, "lock conflict with t-1", json::array(), VoteNoCode::kLockConflict};
  CHECK(ToJson(conflict)["code"] == "lock_conflict");
  back = ParseVote(ToJson(conflict).dump());
  REQUIRE(back.ok());
  CHECK(back->no_code == VoteNoCode::kLockConflict);
  back = ParseVote(R"({"txid":"t-4","vote":"no","reason":"x","code":"something_newer"})");
  REQUIRE(back.ok());
  CHECK(back->no_code == VoteNoCode::kOther);

  back = ParseVote(R"({"txid":"t","vote":"no"})");
  REQUIRE(back.ok());
  CHECK(back->reason.empty());

  CHECK(ParseVote(R"({"txid":"t","vote":"maybe"})").status().message() == "vote: must be \"yes\" or \"no\"");
  CHECK(ParseVote(R"({"txid":"t"})").status().message() == "vote: is required");
  CHECK(ParseVote(R"({"vote":"yes"})").status().message() == "txid: is required");
  CHECK(ParseVote(R"({"txid":"t","vote":"yes","results":{}})").status().message() ==
        "results: must be an array or null");
  // null: the agent no longer knows the rows (it restarted after the prepare); kept as null, not as "no rows".
  back = ParseVote(R"({"txid":"t","vote":"yes","results":null})");
  REQUIRE(back.ok());
  CHECK(back->results.is_null());
  CHECK(ToJson(*back)["results"].is_null());
}

TEST_CASE("ParseTxidBody") {
  Result<std::string> r = ParseTxidBody(R"({"txid":"abc-1"})");
  REQUIRE(r.ok());
  CHECK(*r == "abc-1");
  CHECK(ParseTxidBody("{}").status().message() == "txid: is required");
  CHECK(ParseTxidBody(R"({"txid":""})").status().message() ==
        "txid: must be 1 to 128 characters of [A-Za-z0-9._:-]");
  CHECK(ParseTxidBody(R"({"txid":"a","x":1})").status().message() == "body: unknown field \"x\"");
  CHECK(ParseTxidBody("[]").status().message() == "body: must be a JSON object");
  CHECK(ParseTxidBody("").status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("an adoption needs every field: the adopting log and its keys for the txid") {
  const AdoptRequest r{"t-1", "log-2", std::string(64, 'a'), std::string(64, 'b')};
  auto back = ParseAdoptRequest(ToJson(r).dump());
  REQUIRE(back.ok());
  CHECK(back->txid == "t-1");
  CHECK(back->log_id == "log-2");
  CHECK(back->abort_key == r.abort_key);
  CHECK(back->commit_check == r.commit_check);
  for (const char* field : {"txid", "log_id", "abort_key", "commit_check"}) {
    nlohmann::json j = ToJson(r);
    j.erase(field);
    auto missing = ParseAdoptRequest(j.dump());
    CHECK(missing.status().code() == StatusCode::kInvalidArgument);
    CHECK(missing.status().message().find(field) != std::string::npos);
  }
  nlohmann::json upper = ToJson(r);
  upper["abort_key"] = std::string(64, 'A');
  CHECK(ParseAdoptRequest(upper.dump()).status().message() ==
        "abort_key: must be a string of 1 to 128 lower-case hex digits");
  nlohmann::json empty_log = ToJson(r);
  empty_log["log_id"] = "";
  CHECK(!ParseAdoptRequest(empty_log.dump()).ok());
  nlohmann::json extra = ToJson(r);
  extra["outcome"] = "commit";
  CHECK(ParseAdoptRequest(extra.dump()).status().message() == "body: unknown field \"outcome\"");
}

TEST_CASE("a number outside double's range is a clean InvalidArgument from every parser") {
  // nlohmann throws out_of_range (not parse_error) for these while parsing.
  const std::vector<Status> statuses = {
      ParseTxRequest(std::string_view(R"({"branches":1e400})")).status(),
      ParseTxRequest(std::string_view(R"({"branches":[{"participant":"a","ops":[{"sql":"x","params":[-1e999]}]}]})"))
          .status(),
      ParsePrepareRequest(R"({"txid":"t","timeout_ms":1e400})").status(),
      ParseVote(R"({"txid":"t","vote":"yes","results":[[{"x":1e400}]]})").status(),
      ParseTxidBody(R"({"txid":1e400})").status(),
  };
  for (const Status& s : statuses) {
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK(s.message().rfind("body is not valid JSON: ", 0) == 0);
    CHECK(s.message().find("number overflow") != std::string::npos);
    CHECK(s.message().find("[json.exception") == std::string::npos);
  }
}

TEST_CASE("IsValidTxid") {
  CHECK(IsValidTxid("a"));
  CHECK(IsValidTxid("Tx-2026.11:25_abc"));
  CHECK(IsValidTxid(std::string(128, 'x')));
  CHECK_FALSE(IsValidTxid(""));
  CHECK_FALSE(IsValidTxid(std::string(129, 'x')));
  CHECK_FALSE(IsValidTxid("a b"));
  CHECK_FALSE(IsValidTxid("a/b"));
  CHECK_FALSE(IsValidTxid("é"));
  CHECK_FALSE(IsValidTxid(std::string_view("a\0b", 3)));
}

}  // namespace
}  // namespace commitd::wire

namespace wire = commitd::wire;

TEST_CASE("commit and precommit bodies: commit_key optional, hex only; prepares carry commit_check") {
  auto plain = wire::ParseCommitRequest(R"({"txid":"c1-1-1-ab"})");
  REQUIRE(plain.ok());
  CHECK(plain->commit_key.empty());
  const std::string key(64, 'c');
  auto keyed = wire::ParseCommitRequest(wire::ToJson(wire::CommitRequest{"c1-1-1-ab", key}).dump());
  REQUIRE(keyed.ok());
  CHECK(keyed->commit_key == key);
  for (const char* bad : {R"({"txid":"t","commit_key":""})", R"({"txid":"t","commit_key":"XYZ"})",
                          R"({"txid":"t","commit_key":7})", R"({"txid":"t","abort_key":"ab"})"}) {
    CHECK_FALSE(wire::ParseCommitRequest(bad).ok());
  }
  wire::PrepareRequest p;
  p.txid = "c1-1-1-ab";
  p.participant = "bank-a";
  p.timeout_ms = 1000;
  p.coordinator = "http://c1";
  wire::Op op;
  op.procedure = "debit";
  op.args = {{"account", "alice"}, {"amount", 1}};
  p.ops = {op};
  p.commit_check = std::string(64, 'd');
  auto back = wire::ParsePrepareRequest(wire::ToJson(p).dump());
  INFO(back.status().ToString());
  REQUIRE(back.ok());
  CHECK(back->commit_check == p.commit_check);
  p.commit_check.clear();
  CHECK_FALSE(wire::ToJson(p).contains("commit_check"));  // absent, as older coordinators send it
}

namespace {

// Prepare requests with every optional part present or not, and strings
// that need escaping, non-ASCII and invalid UTF-8.
wire::PrepareRequest RandomPrepare(std::mt19937_64& random) {
  static const std::string kStrings[] = {"", "c1-1-7-ab", "http://127.0.0.1:7000", "é\"q\\\n", "\x01\x7f",
                                         "\xff\xc3", "😀", std::string(64, 'a')};
  auto text = [&] { return kStrings[random() % std::size(kStrings)]; };
  wire::PrepareRequest p;
  p.txid = text();
  p.protocol = random() % 2 ? wire::Protocol::k2pc : wire::Protocol::k3pc;
  p.participant = text();
  p.coordinator = text();
  p.timeout_ms = static_cast<int64_t>(random() % 100'000'000);
  p.log_id = text();
  p.abort_key = text();
  p.commit_check = text();
  for (std::size_t i = random() % 4; i > 0; --i) {
    wire::Op op;
    if (random() % 3 == 0) {
      op.sql = text();
      op.params = {text(), static_cast<int64_t>(random()), nullptr, 2.5, true};
    } else {
      op.procedure = text();
      op.args = {{text(), static_cast<int64_t>(random() % 1000)}, {"to", text()}, {"ok", false}};
    }
    p.ops.push_back(std::move(op));
  }
  for (std::size_t i = random() % 4; i > 0; --i) p.participants.push_back({text(), text()});
  return p;
}

}  // namespace

TEST_CASE("a prepare's text is what ToJson's value dumps to, byte for byte") {
  std::mt19937_64 random(42);
  for (int i = 0; i < 5'000; ++i) {
    const wire::PrepareRequest p = RandomPrepare(random);
    REQUIRE(wire::PrepareRequestText(p) == commitd::DumpJson(wire::ToJson(p)));
  }
}

TEST_CASE("a vote's text is what ToJson's value dumps to, byte for byte") {
  std::mt19937_64 random(45);
  for (int i = 0; i < 5'000; ++i) {
    const wire::PrepareRequest p = RandomPrepare(random);  // its strings, odd ones included
    wire::Vote v;
    v.txid = p.txid;
    v.yes = random() % 2 == 0;
    v.reason = p.coordinator;
    v.no_code = random() % 2 ? wire::VoteNoCode::kLockConflict : wire::VoteNoCode::kOther;
    if (random() % 5 == 0) {
      v.results = nullptr;
    } else {
      for (const wire::Op& op : p.ops) {
        v.results.push_back(op.args.is_object() ? nlohmann::json::array({op.args}) : nlohmann::json::array());
      }
    }
    REQUIRE(wire::VoteText(v) == commitd::DumpJson(wire::ToJson(v)));
  }
}

TEST_CASE("commit, precommit and abort texts are what ToJson's values dump to, byte for byte") {
  std::mt19937_64 random(43);
  for (int i = 0; i < 2'000; ++i) {
    const wire::PrepareRequest p = RandomPrepare(random);  // its strings, odd ones included
    const wire::CommitRequest commit{p.txid, i % 3 == 0 ? std::string() : p.abort_key};
    const wire::AbortRequest abort{p.txid, i % 3 == 1 ? std::string() : p.commit_check};
    REQUIRE(wire::CommitRequestText(commit) == commitd::DumpJson(wire::ToJson(commit)));
    REQUIRE(wire::AbortRequestText(abort) == commitd::DumpJson(wire::ToJson(abort)));
  }
}

TEST_CASE("a participant list's text is nlohmann's, reads back as the list, and anything else is refused") {
  std::mt19937_64 random(44);
  for (int i = 0; i < 2'000; ++i) {
    const wire::PrepareRequest p = RandomPrepare(random);
    const std::string text = wire::ParticipantsText(p.participants);
    REQUIRE(text == commitd::DumpJson(nlohmann::json(p.participants)));
    commitd::Result<std::vector<wire::ParticipantRef>> back = wire::ParseParticipants(text);
    REQUIRE(back.ok());
    REQUIRE(wire::ParticipantsText(*back) == text);  // invalid UTF-8 was written as U+FFFD, and stays so
  }
  const std::vector<wire::ParticipantRef> list = {{"bank-a", "http://a"}, {"é", ""}};
  commitd::Result<std::vector<wire::ParticipantRef>> back = wire::ParseParticipants(wire::ParticipantsText(list));
  REQUIRE(back.ok());
  CHECK(*back == list);
  CHECK(wire::ParseParticipants("[]")->empty());
  for (const char* bad : {"", "not json", "{}", "null", "[1]", "[null]", "[[]]", R"([{"name": "a"}])",
                          R"([{"url": "u"}])", R"([{"name": 1, "url": "u"}])", R"([{"name": "a", "url": null}])",
                          R"([{"name": "a", "url": "u"}, 2])"}) {
    CAPTURE(bad);
    commitd::Result<std::vector<wire::ParticipantRef>> read = wire::ParseParticipants(bad);
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().code() == commitd::StatusCode::kInvalidArgument);
  }
  CHECK(wire::ParseParticipants(R"([{"name": "a", "url": "u"}, 2])").status().message() ==
        "participants[1]: not an object with a string name and url");
}

namespace {

// Whether two JSON values have the same types all the way down (nlohmann's
// == takes 1 and 1u, or 1 and 1.0, as equal).
bool SameTypes(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.type() != b.type() || a.size() != b.size()) return false;
  if (a.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (!b.contains(it.key()) || !SameTypes(*it, b.at(it.key()))) return false;
    }
  }
  if (a.is_array()) {
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!SameTypes(a[i], b[i])) return false;
    }
  }
  return true;
}

// A prepare as a coordinator writes it, valid.
wire::PrepareRequest ValidPrepare(std::mt19937_64& random) {
  wire::PrepareRequest p = RandomPrepare(random);
  p.txid = "c1-1-" + std::to_string(random() % 1000) + "-ab";
  p.participant = random() % 2 ? "bank-a" : "b\u00e9";
  p.timeout_ms = 1 + static_cast<int64_t>(random() % wire::kMaxTimeoutMs);
  p.log_id = random() % 2 ? "" : std::string(32, 'f');
  p.abort_key = random() % 2 ? "" : std::string(64, 'a');
  p.commit_check = random() % 2 ? "" : std::string(64, 'c');
  if (p.ops.empty()) p.ops.push_back(wire::Op{"debit"});
  for (wire::Op& op : p.ops) {
    if (op.procedure && op.procedure->empty()) op.procedure = "p";
    if (op.sql && op.sql->empty()) op.sql = "SELECT 1";
  }
  for (wire::ParticipantRef& ref : p.participants) {
    if (ref.name.empty()) ref.name = "n";
  }
  return p;
}

// Small edits a hostile or broken sender might make.
std::string Mutated(std::string text, std::mt19937_64& random) {
  static const std::string kInserts[] = {",\"x\":1", "1.5", "-3", "\"\\u0032pc\"", ",\"txid\":\"t2\"", "{}", "[]",
                                         "null", "\"", "1e3", "18446744073709551616", "-9223372036854775809", " "};
  switch (random() % 4) {
    case 0:
      return text;
    case 1:
      text.erase(random() % text.size(), 1 + random() % 3);
      return text;
    case 2:
      text.insert(random() % text.size(), kInserts[random() % std::size(kInserts)]);
      return text;
    default: {
      // A value replaced: the text after a colon up to the next comma or brace.
      std::size_t colon = text.find(':', random() % text.size());
      if (colon == std::string::npos) return text;
      std::size_t end = text.find_first_of(",}]", colon + 1);
      if (end == std::string::npos) return text;
      return text.substr(0, colon + 1) + kInserts[random() % std::size(kInserts)] + text.substr(end);
    }
  }
}

// 20,000 mutated texts from make_text, each parsed by `read` (the parser
// with its fast path) and by `tree`: both accept or both refuse, with the
// same error; what both accept, `same` compares. Most must be accepted.
template <class MakeText, class Read, class Tree, class Same>
void CheckAgainstTree(uint64_t seed, MakeText make_text, Read read_text, Tree tree_text, Same same) {
  std::mt19937_64 random(seed);
  int accepted = 0;
  for (int i = 0; i < 20'000; ++i) {
    const std::string text = Mutated(make_text(random), random);
    CAPTURE(text);
    const auto read = read_text(text);
    const auto tree = tree_text(text);
    REQUIRE(read.ok() == tree.ok());
    if (!read.ok()) {
      REQUIRE(read.status().ToString() == tree.status().ToString());
      continue;
    }
    ++accepted;
    same(*read, *tree);
  }
  MESSAGE(accepted << " of 20000 accepted");
  CHECK(accepted > 5'000);
}

}  // namespace

TEST_CASE("a prepare read straight from its text is what the tree parser reads, or the tree parser answers") {
  CheckAgainstTree(
      7, [](std::mt19937_64& random) { return wire::PrepareRequestText(ValidPrepare(random)); },
      [](const std::string& text) {
        // Text already checked (a batch's sub-request) is read the same without the check.
        return commitd::IsJson(text) ? wire::ParsePrepareRequest(text, wire::BodySyntax::kChecked)
                                     : wire::ParsePrepareRequest(text);
      },
      [](const std::string& text) { return wire::ParsePrepareRequestTree(text); },
      [](const wire::PrepareRequest& read, const wire::PrepareRequest& tree) {
        REQUIRE(wire::PrepareRequestText(read) == wire::PrepareRequestText(tree));
        REQUIRE(SameTypes(wire::ToJson(read), wire::ToJson(tree)));
      });
}

namespace {

// The op a coordinator read (values as text or as values) is the op an agent
// reads from the prepare it is sent in, with the tree parser's values.
void RequireAgentReadsAlike(const wire::Op& read, const wire::Op& tree) {
  wire::PrepareRequest prepare{"t1", wire::Protocol::k2pc, "a", "http://c", 100, {read}, {}};
  commitd::Result<wire::PrepareRequest> agent = wire::ParsePrepareRequest(wire::PrepareRequestText(prepare));
  REQUIRE(agent.ok());
  REQUIRE(agent->ops.size() == 1);
  const wire::Op& got = agent->ops[0];
  REQUIRE(got.values_text.empty());
  REQUIRE(got.procedure == tree.procedure);
  REQUIRE(got.sql == tree.sql);
  REQUIRE(got.args == tree.args);
  REQUIRE(SameTypes(got.args, tree.args));
  REQUIRE(got.params == tree.params);
  REQUIRE(SameTypes(got.params, tree.params));
}

// A transaction request as a client writes it, valid.
std::string ValidTxText(std::mt19937_64& random) {
  nlohmann::json branches = nlohmann::json::array();
  for (std::size_t i = 1 + random() % 3; i > 0; --i) {
    nlohmann::json ops = nlohmann::json::array();
    for (const wire::Op& op : ValidPrepare(random).ops) ops.push_back(wire::OpToJson(op));
    branches.push_back({{"participant", "bank-" + std::to_string(i)}, {"ops", ops}});
  }
  nlohmann::json body = {{"branches", branches}};
  if (random() % 2) body["protocol"] = random() % 2 ? "2pc" : "3pc";
  if (random() % 2) body["timeout_ms"] = 1 + random() % wire::kMaxTimeoutMs;
  return commitd::DumpJson(body);
}

// Everything a TxRequest holds, with the ops' JSON types.
std::string Described(const wire::TxRequest& r) {
  nlohmann::json branches = nlohmann::json::array();
  for (const wire::Branch& b : r.branches) {
    nlohmann::json ops = nlohmann::json::array();
    for (const wire::Op& op : b.ops) ops.push_back(wire::OpToJson(op));
    branches.push_back({{"participant", b.participant}, {"ops", ops}});
  }
  return nlohmann::json({{"protocol", wire::ProtocolName(r.protocol)},
                         {"timeout_ms", r.timeout_ms.value_or(-1)},
                         {"branches", branches}})
      .dump();
}

}  // namespace

TEST_CASE("a transaction request read straight from its text is what the tree parser reads, or the tree parser answers") {
  CheckAgainstTree(
      11, ValidTxText, [](const std::string& text) { return wire::ParseTxRequest(std::string_view(text)); },
      [](const std::string& text) { return wire::ParseTxRequestTree(text); },
      [](const wire::TxRequest& read, const wire::TxRequest& tree) {
        REQUIRE(Described(read) == Described(tree));
        for (std::size_t b = 0; b < read.branches.size(); ++b) {
          for (std::size_t o = 0; o < read.branches[b].ops.size(); ++o) {
            REQUIRE(SameTypes(wire::OpToJson(read.branches[b].ops[o]), wire::OpToJson(tree.branches[b].ops[o])));
            RequireAgentReadsAlike(read.branches[b].ops[o], tree.branches[b].ops[o]);
          }
        }
      });
}

TEST_CASE("a client's op values are passed on as their text, which an agent reads as the tree parser reads them") {
  const std::string body = R"({"branches":[
    {"participant":"a","ops":[{"procedure":"p","args":{ "z" : 1 ,
       "a\u0062" : "x\"y\u00e9" , "n" : null, "dup": 1, "dup": -9223372036854775808,
       "u": 18446744073709551615, "t": true }}, {"procedure":"q"}]},
    {"participant":"b","ops":[{"params":[ 1 , "é", false ], "sql":"SELECT ?1"}]}]})";
  commitd::Result<wire::TxRequest> read = wire::ParseTxRequest(std::string_view(body));
  commitd::Result<wire::TxRequest> tree = wire::ParseTxRequestTree(body);
  REQUIRE(read.ok());
  REQUIRE(tree.ok());
  const wire::Op& args = read->branches[0].ops[0];
  // As the client wrote it.
  CHECK(args.values_text == R"({ "z" : 1 ,
       "a\u0062" : "x\"y\u00e9" , "n" : null, "dup": 1, "dup": -9223372036854775808,
       "u": 18446744073709551615, "t": true })");
  CHECK(args.args == nlohmann::json::object());
  CHECK(read->branches[0].ops[1].values_text.empty());  // no args: written as {}
  CHECK(read->branches[1].ops[0].values_text == "[ 1 , \"é\", false ]");
  for (std::size_t b = 0; b < 2; ++b) {
    for (std::size_t o = 0; o < read->branches[b].ops.size(); ++o) {
      RequireAgentReadsAlike(read->branches[b].ops[o], tree->branches[b].ops[o]);
    }
  }
  // A name given twice: the last one counts, on both paths.
  CHECK(tree->branches[0].ops[0].args["dup"] == std::numeric_limits<int64_t>::min());
  // A value the fast reader does not take (a float) sends the whole request to the tree parser.
  commitd::Result<wire::TxRequest> with_float =
      wire::ParseTxRequest(std::string_view(R"({"branches":[{"participant":"a","ops":[{"procedure":"p","args":{"x":1.5}}]}]})"));
  REQUIRE(with_float.ok());
  CHECK(with_float->branches[0].ops[0].values_text.empty());
  CHECK(with_float->branches[0].ops[0].args["x"] == 1.5);
}

TEST_CASE("a body with a NUL byte is refused, though nlohmann would stop reading there") {
  const std::string prepare = wire::PrepareRequestText(wire::PrepareRequest{"t1", wire::Protocol::k2pc, "a", "http://c", 100,
                                                                           {wire::Op{"p"}}, {}});
  REQUIRE(wire::ParsePrepareRequest(prepare).ok());
  const std::string with_nul = prepare + std::string("\0junk", 5);
  CHECK(nlohmann::json::accept(with_nul));
  for (const auto& status : {wire::ParsePrepareRequest(with_nul).status(), wire::ParsePrepareRequestTree(with_nul).status(),
                             wire::ParseTxRequest(std::string_view("{\"branches\":[]}\0", 16)).status()}) {
    CHECK(status.code() == commitd::StatusCode::kInvalidArgument);
    CHECK(status.message() == "body is not valid JSON: it holds a NUL byte");
  }
}


TEST_CASE("an agent's state names parse to what they say, older agents' names included") {
  using commitd::wire::AgentTxState;
  using commitd::wire::ParseAgentTxState;
  for (auto held : {commitd::participant::HeldState::kPreparing, commitd::participant::HeldState::kPrepared,
                    commitd::participant::HeldState::kPrecommitting, commitd::participant::HeldState::kPrecommitted,
                    commitd::participant::HeldState::kCommitting, commitd::participant::HeldState::kAborting,
                    commitd::participant::HeldState::kConflict}) {
    CAPTURE(commitd::participant::HeldStateName(held));
    CHECK(ParseAgentTxState(commitd::participant::HeldStateName(held)).has_value());
  }
  CHECK(ParseAgentTxState("executing") == AgentTxState::kPreparing);
  CHECK(ParseAgentTxState("persisting") == AgentTxState::kPreparing);
  CHECK(ParseAgentTxState("precommitting") == AgentTxState::kPrecommitted);
  CHECK(ParseAgentTxState("conflict") == AgentTxState::kCommitted);
  CHECK(ParseAgentTxState("aborting") == AgentTxState::kAborted);
  CHECK(ParseAgentTxState("unknown") == AgentTxState::kUnknown);
  CHECK_FALSE(ParseAgentTxState("Committed").has_value());
  CHECK_FALSE(ParseAgentTxState("").has_value());
}

namespace {

// A vote as an agent writes it, valid: yes with its rows, or no with a reason.
std::string ValidVoteText(std::mt19937_64& random) {
  wire::Vote v;
  v.txid = "c1-1-" + std::to_string(random() % 1000) + "-ab";
  v.yes = random() % 2 == 0;
  v.reason = v.yes ? "" : random() % 2 ? "lock conflict with c1-1-2-ab" : "caf\u00e9 \"closed\"";
  v.results = nlohmann::json::array();
  for (std::size_t i = 1 + random() % 3; i > 0; --i) {
    nlohmann::json rows = nlohmann::json::array();
    if (random() % 3 == 0) rows.push_back({{"balance", static_cast<int64_t>(random() % 1000) - 500}, {"id", "a"}});
    v.results.push_back(std::move(rows));
  }
  if (random() % 4 == 0) v.results = nullptr;
  if (!v.yes && random() % 2) v.no_code = wire::VoteNoCode::kLockConflict;
  return commitd::DumpJson(wire::ToJson(v));
}

}  // namespace

TEST_CASE("a vote read straight from its text is what the tree parser reads, or the tree parser answers") {
  CheckAgainstTree(
      13, ValidVoteText,
      [](const std::string& text) {
        // Text already checked (a batch's sub-response) is read the same without the check.
        return commitd::IsJson(text) ? wire::ParseVote(text, wire::BodySyntax::kChecked) : wire::ParseVote(text);
      },
      [](const std::string& text) { return wire::ParseVoteTree(text); },
      [](const wire::Vote& read, const wire::Vote& tree) {
        REQUIRE(read.txid == tree.txid);
        REQUIRE(read.yes == tree.yes);
        REQUIRE(read.reason == tree.reason);
        REQUIRE(read.no_code == tree.no_code);
        REQUIRE(read.results.dump() == tree.results.dump());
        REQUIRE(SameTypes(read.results, tree.results));
      });
}

TEST_CASE("a vote with a member the fast reader does not know is read by the tree parser, which ignores it") {
  commitd::Result<wire::Vote> v = wire::ParseVote(R"({"txid":"t-1","vote":"no","code":7,"newer":{"x":[1]},"results":[[],[{"a":1}]]})");
  REQUIRE(v.ok());
  CHECK(!v->yes);
  CHECK(v->no_code == wire::VoteNoCode::kOther);
  CHECK(v->results.dump() == R"([[],[{"a":1}]])");
}

namespace {

// A commit as a coordinator writes it, valid, with or without its key.
std::string ValidCommitText(std::mt19937_64& random) {
  wire::CommitRequest r;
  r.txid = "c1-1-" + std::to_string(random() % 1000) + "-ab";
  if (random() % 4 != 0) r.commit_key = std::string(64, "0123456789abcdef"[random() % 16]);
  return commitd::DumpJson(wire::ToJson(r));
}

}  // namespace

TEST_CASE("a commit read straight from its text is what the tree parser reads, or the tree parser answers") {
  CheckAgainstTree(
      17, ValidCommitText,
      [](const std::string& text) {
        return commitd::IsJson(text) ? wire::ParseCommitRequest(text, wire::BodySyntax::kChecked)
                                     : wire::ParseCommitRequest(text);
      },
      [](const std::string& text) { return wire::ParseCommitRequestTree(text); },
      [](const wire::CommitRequest& read, const wire::CommitRequest& tree) {
        REQUIRE(read.txid == tree.txid);
        REQUIRE(read.commit_key == tree.commit_key);
      });
}
