CREATE FUNCTION ledger_closing_advance_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE ledger_heads SET closed_through = NEW.end_date, last_closing_hash = NEW.hash WHERE org_id = NEW.org_id;
  RETURN NULL;
END $$
