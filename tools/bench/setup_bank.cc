#include <cstdio>
#include <string>

#include "common/sqlite_db.h"
#include "tools/bench/flag_values.h"
#include "tools/bench/modes.h"

namespace commitd::bench {
namespace {

// Same as examples/bank/schema.sql.
constexpr const char* kBankSchema = R"sql(
CREATE TABLE IF NOT EXISTS accounts (
  id      TEXT PRIMARY KEY,
  balance INTEGER NOT NULL CHECK (balance >= 0)
);
CREATE TABLE IF NOT EXISTS journal (
  txid    TEXT NOT NULL,
  account TEXT NOT NULL,
  delta   INTEGER NOT NULL,
  PRIMARY KEY (txid, account)
);
)sql";

}  // namespace

int RunSetupBank(const Flags& flags) {
  auto path = flags.Get("db");
  auto accounts = IntFlag(flags, "accounts", 256, 1);
  auto balance = IntFlag(flags, "balance", 1'000'000'000, 0);
  const std::string prefix = flags.Get("prefix").value_or("acct");
  if (!path) {
    std::fprintf(stderr, "setup-bank: --db FILE is required\n");
    return 2;
  }
  for (const Status* s : {&accounts.status(), &balance.status()}) {
    if (!s->ok()) {
      std::fprintf(stderr, "setup-bank: %s\n", s->message().c_str());
      return 2;
    }
  }

  auto db = sqlite::Database::Open(*path);
  if (!db.ok()) {
    std::fprintf(stderr, "setup-bank: cannot open %s: %s\n", path->c_str(), db.status().ToString().c_str());
    return 1;
  }
  Status s = (*db)->Exec(kBankSchema);
  if (s.ok()) {
    sqlite::Transaction tx(**db);
    s = tx.status();
    for (int64_t i = 0; s.ok() && i < *accounts; ++i) {
      sqlite::Statement* insert =
          (*db)->Prepare("INSERT OR REPLACE INTO accounts(id, balance) VALUES(?1, ?2)", &s);
      if (insert == nullptr) break;
      s = insert->Bind(1, prefix + std::to_string(i)).Bind(2, *balance).Run();
    }
    if (s.ok()) s = tx.Commit();
  }
  if (!s.ok()) {
    std::fprintf(stderr, "setup-bank: %s: %s\n", path->c_str(), s.ToString().c_str());
    return 1;
  }
  std::printf("setup-bank: %s has accounts %s0..%s%lld with balance %lld\n", path->c_str(), prefix.c_str(),
              prefix.c_str(), static_cast<long long>(*accounts - 1), static_cast<long long>(*balance));
  return 0;
}

}  // namespace commitd::bench
