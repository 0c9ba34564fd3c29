-- template: row_guard
-- refusal:
  IF (TG_OP <> 'INSERT' AND EXISTS (SELECT 1 FROM entries WHERE id = OLD.entry_id AND number IS NOT NULL))
     OR (TG_OP <> 'DELETE' AND EXISTS (SELECT 1 FROM entries WHERE id = NEW.entry_id AND number IS NOT NULL)) THEN
    RAISE EXCEPTION 'ledger: postings of a validated entry cannot be added, changed or deleted' USING ERRCODE = '23001';
  END IF;
