CREATE FUNCTION ledger_entry_insert_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.number IS NOT NULL OR NEW.hash IS NOT NULL THEN
    RAISE EXCEPTION 'ledger: entries are inserted as drafts and validated afterwards' USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$
