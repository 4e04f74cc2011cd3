-- The example bank: one of these per participant database (bank-a.db, bank-b.db).
-- The agent adds its own _commitd_* tables to the same file when it starts.
CREATE TABLE IF NOT EXISTS accounts (
  id      TEXT PRIMARY KEY,
  balance INTEGER NOT NULL CHECK (balance >= 0)
);

-- One row per account touched by a transaction; txid is the coordinator's
-- transaction id (bound to :txid by the agent), so the journal tells which
-- distributed transactions were applied here.
CREATE TABLE IF NOT EXISTS journal (
  txid    TEXT NOT NULL,
  account TEXT NOT NULL,
  delta   INTEGER NOT NULL,
  PRIMARY KEY (txid, account)
);
