#include <doctest/doctest.h>

#include <set>

#include "common/entropy.h"
#include "common/wire.h"
#include "coordinator/txid_issuer.h"

namespace commitd::coordinator {
namespace {

// Always the same bytes: what an issuer makes of a source an attacker could predict.
class FixedEntropy final : public Entropy {
 public:
  void Fill(uint8_t* out, std::size_t n) override {
    for (std::size_t i = 0; i < n; ++i) out[i] = 0xab;
  }
};

TEST_CASE("txids carry the incarnation, a sequence and random digits, and parse back") {
  FixedEntropy entropy;
  TxidIssuer issuer("c-east-1", 7, entropy);
  std::string first = issuer.Next();
  std::string second = issuer.Next();
  CHECK(first == "c-east-1-7-1-abababababababab");
  CHECK(second == "c-east-1-7-2-abababababababab");
  CHECK(wire::IsValidTxid(first));
  auto parts = ParseTxid(second);
  REQUIRE(parts.has_value());
  CHECK(parts->coordinator == "c-east-1");
  CHECK(parts->incarnation == 7);
  CHECK(parts->sequence == 2);
  CHECK(issuer.issued() == 2);
}

TEST_CASE("system entropy makes txids nobody can predict from earlier ones") {
  SystemEntropy entropy;
  TxidIssuer issuer("c1", 1, entropy);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) CHECK(seen.insert(issuer.Next()).second);
  // Same incarnation and sequence in a second process (say, a restart that
  // failed to persist its incarnation): still different ids.
  TxidIssuer again("c1", 1, entropy);
  CHECK(seen.count(again.Next()) == 0);
}

TEST_CASE("strings in other formats are not taken for issued txids") {
  for (const char* bad : {"", "c1", "c1-1700000000000-5", "c1-1-1-ABABABABABABABAB", "c1-1-0-abababababababab",
                          "c1-01-1-abababababababab", "-1-1-abababababababab", "c1-1-1-abab",
                          "c1-x-1-abababababababab", "c1-1-99999999999999999999999-abababababababab"}) {
    CAPTURE(bad);
    CHECK_FALSE(ParseTxid(bad).has_value());
  }
}

}  // namespace
}  // namespace commitd::coordinator
