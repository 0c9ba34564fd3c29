CREATE TRIGGER closings_frozen_delete BEFORE DELETE ON closings
BEGIN SELECT RAISE(ABORT, 'ledger: closings rows are append-only'); END
