CREATE FUNCTION ledger_entry_advance_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE ledger_heads SET last_number = NEW.number, last_hash = NEW.hash WHERE org_id = NEW.org_id;
  RETURN NULL;
END $$
