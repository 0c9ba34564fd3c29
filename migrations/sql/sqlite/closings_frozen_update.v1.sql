CREATE TRIGGER closings_frozen_update BEFORE UPDATE ON closings
BEGIN SELECT RAISE(ABORT, 'ledger: closings rows are append-only'); END
