CREATE TRIGGER closings_insert_guard BEFORE INSERT ON closings
BEGIN
  SELECT RAISE(ABORT, 'ledger: closing is not chained to the previous closing')
    WHERE NEW.prev_hash IS NOT (SELECT last_closing_hash FROM ledger_heads WHERE org_id = NEW.org_id);
  SELECT RAISE(ABORT, 'ledger: fiscal year closes after its last month, before any later one')
    WHERE NEW.kind = 'year' AND NEW.end_date IS NOT (SELECT closed_through FROM ledger_heads WHERE org_id = NEW.org_id);
  SELECT RAISE(ABORT, 'ledger: closing does not follow the last closed period')
    WHERE NEW.kind <> 'year'
      AND NEW.start_date <> date((SELECT closed_through FROM ledger_heads WHERE org_id = NEW.org_id), '+1 day');
END
