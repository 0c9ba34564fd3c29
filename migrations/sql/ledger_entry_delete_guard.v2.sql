-- template: ledger_entry_delete_guard
-- checks:
  IF EXISTS (SELECT 1 FROM postings WHERE entry_id = OLD.id) THEN
    RAISE EXCEPTION 'ledger: entry % still has postings', OLD.id USING ERRCODE = '23503';
  END IF;
