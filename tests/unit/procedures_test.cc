#include "participant/procedures.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace commitd::participant {
namespace {

std::string ParseError(const std::string& text) {
  Result<Procedures> parsed = Procedures::Parse(text);
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.status().code() == StatusCode::kInvalidArgument);
  return parsed.status().message();
}

TEST_CASE("parses a procedures file") {
  Result<Procedures> parsed = Procedures::Parse(R"json({ "procedures": {
    "debit":   {"sql": "UPDATE accounts SET balance = balance - :amount WHERE id = :account AND balance >= :amount",
                "expect_changes": 1},
    "journal": {"sql": "INSERT INTO journal(txid, account, delta) VALUES(:txid, :account, :delta)"},
    "transfer": {"sql": ["UPDATE a SET x = 1", "UPDATE b SET y = 2"], "expect_changes": 0} } })json");
  REQUIRE(parsed.ok());
  const Procedures& procs = parsed.value();
  CHECK(procs.Names() == std::vector<std::string>{"debit", "journal", "transfer"});

  const Procedure* debit = procs.Find("debit");
  REQUIRE(debit != nullptr);
  CHECK(debit->name == "debit");
  REQUIRE(debit->statements.size() == 1);
  CHECK(debit->statements[0].find("balance - :amount") != std::string::npos);
  CHECK(debit->expect_changes == 1);

  const Procedure* journal = procs.Find("journal");
  REQUIRE(journal != nullptr);
  CHECK_FALSE(journal->expect_changes.has_value());

  const Procedure* transfer = procs.Find("transfer");
  REQUIRE(transfer != nullptr);
  CHECK(transfer->statements == std::vector<std::string>{"UPDATE a SET x = 1", "UPDATE b SET y = 2"});
  CHECK(transfer->expect_changes == 0);

  CHECK(procs.Find("credit") == nullptr);
}

TEST_CASE("an empty procedures object is allowed") {
  Result<Procedures> parsed = Procedures::Parse(R"({"procedures": {}})");
  REQUIRE(parsed.ok());
  CHECK(parsed->Names().empty());
}

TEST_CASE("invalid JSON reports the parser's position") {
  std::string empty = ParseError("");
  CHECK(empty.rfind("invalid procedures JSON: ", 0) == 0);
  CHECK(empty.find("line 1, column 1") != std::string::npos);

  std::string broken = ParseError("{\"procedures\": {\n  \"debit\": }");
  CHECK(broken.find("line 2") != std::string::npos);
  CHECK(broken.find("[json.exception") == std::string::npos);
}

TEST_CASE("a number outside double's range is invalid JSON, not an exception") {
  std::string overflow = ParseError(R"({"procedures": {"p": {"sql": "SELECT 1", "expect_changes": 1e400}}})");
  CHECK(overflow.rfind("invalid procedures JSON: ", 0) == 0);
  CHECK(overflow.find("number overflow") != std::string::npos);
}

TEST_CASE("structural errors name the offending field") {
  CHECK(ParseError("[]") == "procedures file: must be a JSON object");
  CHECK(ParseError(R"({})") == "procedures: required");
  CHECK(ParseError(R"({"procedures": [], "x": 1})").find("x: unknown key") == 0);
  CHECK(ParseError(R"({"procedures": []})") == "procedures: must be an object");
  CHECK(ParseError(R"({"procedures": {"debit": "UPDATE"}})") == "procedures.debit: must be an object");
  CHECK(ParseError(R"({"procedures": {"debit": {}}})") == "procedures.debit.sql: required");
  CHECK(ParseError(R"({"procedures": {"debit": {"sql": 5}}})") ==
        "procedures.debit.sql: must be a string or an array of strings");
  CHECK(ParseError(R"({"procedures": {"debit": {"sql": {"a": 1}}}})") ==
        "procedures.debit.sql: must be a string or an array of strings");
  CHECK(ParseError(R"({"procedures": {"debit": {"sql": "  "}}})") == "procedures.debit.sql: must not be empty");
  CHECK(ParseError(R"({"procedures": {"debit": {"sql": []}}})") == "procedures.debit.sql: must not be empty");
  CHECK(ParseError(R"({"procedures": {"debit": {"sql": ["SELECT 1", 2]}}})") ==
        "procedures.debit.sql[1]: must be a string");
  CHECK(ParseError(R"({"procedures": {"debit": {"sql": ["SELECT 1", ""]}}})") ==
        "procedures.debit.sql[1]: must not be empty");
  CHECK(ParseError(R"({"procedures": {"debit": {"sql": "SELECT 1", "expect_changes": -1}}})") ==
        "procedures.debit.expect_changes: must be a non-negative integer");
  CHECK(ParseError(R"({"procedures": {"debit": {"sql": "SELECT 1", "expect_changes": 1.5}}})") ==
        "procedures.debit.expect_changes: must be a non-negative integer");
  CHECK(ParseError(R"({"procedures": {"debit": {"sql": "SELECT 1", "expect_changes": "1"}}})") ==
        "procedures.debit.expect_changes: must be a non-negative integer");
  CHECK(ParseError(R"({"procedures": {"debit": {"sql": "SELECT 1", "expect_changes": 18446744073709551615}}})") ==
        "procedures.debit.expect_changes: must be a non-negative integer");
  CHECK(ParseError(R"({"procedures": {"debit": {"sql": "SELECT 1", "expect": 1}}})").find(
            "procedures.debit.expect: unknown key") == 0);
  CHECK(ParseError(R"({"procedures": {"": {"sql": "SELECT 1"}}})") ==
        "procedures: a procedure name must not be empty");
}

TEST_CASE("Load reads a file") {
  char pattern[] = "/tmp/procedures_test.XXXXXX";
  REQUIRE(mkdtemp(pattern) != nullptr);
  const std::filesystem::path dir = pattern;

  const std::string good = (dir / "procedures.json").string();
  std::ofstream(good) << R"json({"procedures": {"balance": {"sql": "SELECT balance FROM accounts WHERE id = :account"}}})json";
  Result<Procedures> loaded = Procedures::Load(good);
  REQUIRE(loaded.ok());
  CHECK(loaded->Find("balance") != nullptr);

  const std::string bad = (dir / "bad.json").string();
  std::ofstream(bad) << R"({"procedures": {"debit": {"sql": 1}}})";
  Result<Procedures> invalid = Procedures::Load(bad);
  REQUIRE_FALSE(invalid.ok());
  CHECK(invalid.status().code() == StatusCode::kInvalidArgument);
  CHECK(invalid.status().message() ==
        "procedures file " + bad + ": procedures.debit.sql: must be a string or an array of strings");

  const std::string missing = (dir / "missing.json").string();
  Result<Procedures> absent = Procedures::Load(missing);
  REQUIRE_FALSE(absent.ok());
  CHECK(absent.status().message() == "cannot read procedures file " + missing + ": No such file or directory");

  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace commitd::participant
