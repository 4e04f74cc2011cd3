-- Accounts of bank-b (names distinct from bank-a's).
INSERT INTO accounts(id, balance) VALUES
  ('bob',   50),
  ('dave',  50),
  ('frank', 50),
  ('heidi', 50);
