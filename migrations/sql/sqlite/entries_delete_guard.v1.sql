CREATE TRIGGER entries_delete_guard BEFORE DELETE ON entries WHEN OLD.number IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ledger: a validated entry cannot be deleted; post a reversing entry instead'); END
