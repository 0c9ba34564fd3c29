CREATE TRIGGER entries_frozen BEFORE UPDATE ON entries WHEN OLD.number IS NOT NULL
BEGIN SELECT RAISE(ABORT, 'ledger: a validated entry cannot be modified; post a reversing entry instead'); END
