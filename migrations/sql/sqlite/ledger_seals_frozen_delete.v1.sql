CREATE TRIGGER ledger_seals_frozen_delete BEFORE DELETE ON ledger_seals BEGIN SELECT RAISE(ABORT, 'ledger: ledger_seals rows are append-only'); END
