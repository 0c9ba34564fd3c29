CREATE TRIGGER postings_insert_guard BEFORE INSERT ON postings
WHEN (SELECT number FROM entries WHERE id = NEW.entry_id) IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ledger: postings of a validated entry cannot be added, changed or deleted'); END
