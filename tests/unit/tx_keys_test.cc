#include "coordinator/tx_keys.h"

#include <doctest/doctest.h>

#include "common/abort_key.h"

namespace commitd::coordinator {
namespace {

TEST_CASE("a transaction's keys are those derived from the secret, for any order of txids asked about") {
  TxKeys keys;
  CHECK_FALSE(keys.enabled());
  keys.SetSecret("secret-1");
  REQUIRE(keys.enabled());
  for (const char* txid : {"t1", "t1", "t2", "t1", "t2", "t2"}) {
    CHECK(keys.CommitCheckOf(txid) == CommitCheck(CommitKey("secret-1", txid)));
    CHECK(keys.AbortKeyOf(txid) == AbortKey("secret-1", txid));
    CHECK(keys.CommitKeyOf(txid) == CommitKey("secret-1", txid));
  }
  CHECK(keys.AbortKeyOf("t1") != keys.AbortKeyOf("t2"));
}

TEST_CASE("a new secret forgets the keys kept under the old one") {
  TxKeys keys;
  keys.SetSecret("secret-1");
  const std::string old_key = keys.CommitKeyOf("t1");
  keys.SetSecret("secret-2");
  CHECK(keys.CommitKeyOf("t1") == CommitKey("secret-2", "t1"));
  CHECK(keys.CommitKeyOf("t1") != old_key);
  CHECK(keys.AbortKeyOf("t1") == AbortKey("secret-2", "t1"));
  keys.SetSecret("");
  CHECK_FALSE(keys.enabled());
}

}  // namespace
}  // namespace commitd::coordinator
