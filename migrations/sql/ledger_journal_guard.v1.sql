CREATE FUNCTION ledger_journal_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (TG_OP = 'DELETE' OR NEW.code <> OLD.code) AND EXISTS (SELECT 1 FROM entries WHERE journal_code = OLD.code) THEN
    RAISE EXCEPTION 'ledger: journal % has entries', OLD.code USING ERRCODE = '23503';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END $$
