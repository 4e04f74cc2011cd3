-- Example stock levels.
INSERT INTO stock(sku, quantity) VALUES
  ('widget', 10),
  ('gadget', 5),
  ('gizmo',  0);
