#include <doctest/doctest.h>

#include "participant/pg_gid.h"
#include "participant/pg_sql.h"

using namespace commitd::participant::pg;

TEST_CASE("gid: encode and parse back") {
  auto gid = EncodeGid("bank-b", "c1-42.x:y");
  REQUIRE(gid.ok());
  CHECK(*gid == "commitd:bank-b:c1-42.x:y");
  CHECK(TxidOfGid("bank-b", *gid) == std::optional<std::string>("c1-42.x:y"));
  // Another agent's gid, another program's, or a bare prefix: not ours.
  CHECK_FALSE(TxidOfGid("bank", *gid).has_value());
  CHECK_FALSE(TxidOfGid("bank-b", "commitd:bank-bb:t1").has_value());
  CHECK_FALSE(TxidOfGid("bank-b", "xa:bank-b:t1").has_value());
  CHECK_FALSE(TxidOfGid("bank-b", "commitd:bank-b:").has_value());
  CHECK_FALSE(TxidOfGid("bank-b", "commitd:bank-b:it's").has_value());
}

TEST_CASE("gid: names and txids that cannot go into a gid are refused") {
  CHECK_FALSE(EncodeGid("bank:b", "t1").ok());       // ':' would make the prefix ambiguous
  CHECK_FALSE(EncodeGid("bank'b", "t1").ok());       // would need escaping
  CHECK_FALSE(EncodeGid("", "t1").ok());
  CHECK_FALSE(EncodeGid(std::string(63, 'a'), "t1").ok());
  CHECK(EncodeGid(std::string(62, 'a'), std::string(128, 't')).ok());
  CHECK(EncodeGid(std::string(62, 'a'), std::string(128, 't'))->size() < 200);  // PostgreSQL's gid limit
  CHECK_FALSE(EncodeGid("bank", "t'1").ok());
  CHECK_FALSE(EncodeGid("bank", "").ok());
  CHECK_FALSE(EncodeGid("bank", std::string(129, 't')).ok());
}

TEST_CASE("named parameters become $n, the same name the same n") {
  auto t = TranslateNamedParameters(
      "UPDATE accounts SET balance = balance - :amount WHERE id = :account AND balance >= :amount");
  REQUIRE(t.ok());
  CHECK(t->sql == "UPDATE accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1");
  CHECK(t->names == std::vector<std::string>{"amount", "account"});
}

TEST_CASE("literals, identifiers, comments, dollar quotes and casts are left alone") {
  auto t = TranslateNamedParameters(
      "SELECT ':no', \"col:x\", $q$ :no $q$, $$:no$$, x::int, :yes -- :no\n/* :no */ FROM t WHERE a = :txid");
  REQUIRE(t.ok());
  CHECK(t->sql == "SELECT ':no', \"col:x\", $q$ :no $q$, $$:no$$, x::int, $1 -- :no\n/* :no */ FROM t WHERE a = $2");
  CHECK(t->names == std::vector<std::string>{"yes", "txid"});
  auto quotes = TranslateNamedParameters("SELECT 'it''s :no', :a");
  REQUIRE(quotes.ok());
  CHECK(quotes->sql == "SELECT 'it''s :no', $1");
}

TEST_CASE("positional parameters and unterminated text are refused") {
  CHECK_FALSE(TranslateNamedParameters("SELECT $1").ok());
  CHECK_FALSE(TranslateNamedParameters("SELECT 'open").ok());
  CHECK_FALSE(TranslateNamedParameters("SELECT \"open").ok());
  CHECK_FALSE(TranslateNamedParameters("SELECT 1 /* open").ok());
  CHECK_FALSE(TranslateNamedParameters("SELECT $x$ open").ok());
}

TEST_CASE("statement kinds: data statements only, never the agent's tables") {
  CHECK(CheckStatementKind("SELECT 1").ok());
  CHECK(CheckStatementKind("  update accounts set balance = 1;").ok());
  CHECK(CheckStatementKind("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x").ok());
  CHECK(CheckStatementKind("(SELECT 1)").ok());
  CHECK(CheckStatementKind("SELECT 'COMMIT; _commitd_pg_finished'").ok());  // only a literal
  CHECK_FALSE(CheckStatementKind("COMMIT").ok());
  CHECK_FALSE(CheckStatementKind("rollback").ok());
  CHECK_FALSE(CheckStatementKind("PREPARE TRANSACTION 'x'").ok());
  CHECK_FALSE(CheckStatementKind("SET synchronous_commit = off").ok());
  CHECK_FALSE(CheckStatementKind("DROP TABLE accounts").ok());
  CHECK_FALSE(CheckStatementKind("/* hi */ BEGIN").ok());
  CHECK_FALSE(CheckStatementKind("DELETE FROM _commitd_pg_finished").ok());
  CHECK_FALSE(CheckStatementKind("DELETE FROM \"_COMMITD_PG_FINISHED\"").ok());
  CHECK_FALSE(CheckStatementKind("SELECT 1; COMMIT").ok());
  CHECK_FALSE(CheckStatementKind("").ok());
}
