CREATE TRIGGER entries_advance_head AFTER UPDATE ON entries
WHEN OLD.number IS NULL AND NEW.number IS NOT NULL
BEGIN
  UPDATE ledger_heads SET last_number = NEW.number, last_hash = NEW.hash WHERE org_id = NEW.org_id;
END
