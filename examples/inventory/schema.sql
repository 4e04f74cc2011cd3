-- The inventory service's own tables. The service creates them at start
-- (CREATE TABLE IF NOT EXISTS); the embedded agent adds its _commitd_* tables
-- to the same file.
CREATE TABLE IF NOT EXISTS stock (
  sku      TEXT PRIMARY KEY,
  quantity INTEGER NOT NULL CHECK (quantity >= 0)
);

-- One row per SKU changed by a distributed transaction: delta < 0 for a
-- reservation, > 0 for a restock. stock = seed + SUM(delta) per SKU.
CREATE TABLE IF NOT EXISTS stock_journal (
  txid  TEXT NOT NULL,
  sku   TEXT NOT NULL,
  delta INTEGER NOT NULL,
  PRIMARY KEY (txid, sku)
);
