CREATE FUNCTION ledger_posting_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (TG_OP <> 'INSERT' AND EXISTS (SELECT 1 FROM entries WHERE id = OLD.entry_id AND number IS NOT NULL))
     OR (TG_OP <> 'DELETE' AND EXISTS (SELECT 1 FROM entries WHERE id = NEW.entry_id AND number IS NOT NULL)) THEN
    RAISE EXCEPTION 'ledger: postings of a validated entry cannot be added, changed or deleted' USING ERRCODE = '23001';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END $$
