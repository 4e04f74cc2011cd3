-- Accounts of bank-a (names distinct from bank-b's).
INSERT INTO accounts(id, balance) VALUES
  ('alice', 100),
  ('carol', 100),
  ('erin',  100),
  ('grace', 100);
