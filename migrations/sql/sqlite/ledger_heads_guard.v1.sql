CREATE TRIGGER ledger_heads_guard BEFORE UPDATE ON ledger_heads
WHEN NEW.last_number NOT IN (OLD.last_number, OLD.last_number + 1)
  OR (OLD.closed_through IS NOT NULL AND (NEW.closed_through IS NULL OR NEW.closed_through < OLD.closed_through))
BEGIN SELECT RAISE(ABORT, 'ledger: a ledger head only moves forward'); END
