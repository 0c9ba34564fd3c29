CREATE TRIGGER entries_insert_guard BEFORE INSERT ON entries
WHEN NEW.number IS NOT NULL OR NEW.hash IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ledger: entries are inserted as drafts and validated afterwards'); END
