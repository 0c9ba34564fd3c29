CREATE TRIGGER closings_advance_head AFTER INSERT ON closings
BEGIN
  UPDATE ledger_heads SET closed_through = NEW.end_date, last_closing_hash = NEW.hash WHERE org_id = NEW.org_id;
END
