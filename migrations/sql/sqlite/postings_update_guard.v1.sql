CREATE TRIGGER postings_update_guard BEFORE UPDATE ON postings
WHEN (SELECT number FROM entries WHERE id = OLD.entry_id) IS NOT NULL
  OR (SELECT number FROM entries WHERE id = NEW.entry_id) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ledger: postings of a validated entry cannot be added, changed or deleted'); END
