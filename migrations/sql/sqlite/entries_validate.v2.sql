CREATE TRIGGER entries_validate BEFORE UPDATE ON entries
WHEN OLD.number IS NULL AND NEW.number IS NOT NULL
BEGIN
  SELECT RAISE(ABORT, 'ledger: organisation has no ledger')
    WHERE NOT EXISTS (SELECT 1 FROM ledger_heads WHERE org_id = NEW.org_id);
  SELECT RAISE(ABORT, 'ledger: entry number breaks the gap-free sequence')
    WHERE NEW.number <> (SELECT last_number + 1 FROM ledger_heads WHERE org_id = NEW.org_id);
  SELECT RAISE(ABORT, 'ledger: entry is not chained to the previous entry')
    WHERE NEW.prev_hash <> (SELECT last_hash FROM ledger_heads WHERE org_id = NEW.org_id);
  SELECT RAISE(ABORT, 'ledger: the period is closed; date the entry after it')
    WHERE NEW.entry_date <= (SELECT closed_through FROM ledger_heads WHERE org_id = NEW.org_id);
  SELECT RAISE(ABORT, 'ledger: an entry cannot be validated before its date')
    WHERE NEW.entry_date > date(NEW.validated_at, '+2 hours');
  SELECT RAISE(ABORT, 'ledger: an entry needs at least two postings')
    WHERE (SELECT count(*) FROM postings WHERE entry_id = NEW.id) < 2;
  SELECT RAISE(ABORT, 'ledger: unbalanced entry (debits and credits differ)')
    WHERE EXISTS (SELECT 1 FROM postings WHERE entry_id = NEW.id GROUP BY currency HAVING sum(amount) <> 0);
END
