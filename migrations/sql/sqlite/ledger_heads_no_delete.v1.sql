CREATE TRIGGER ledger_heads_no_delete BEFORE DELETE ON ledger_heads
BEGIN SELECT RAISE(ABORT, 'ledger: a ledger head cannot be deleted'); END
