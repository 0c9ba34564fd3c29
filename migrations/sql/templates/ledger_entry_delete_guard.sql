CREATE FUNCTION ledger_entry_delete_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.number IS NOT NULL THEN
    RAISE EXCEPTION 'ledger: validated entry % cannot be deleted; post a reversing entry instead', OLD.number
      USING ERRCODE = '23001';
  END IF;
{postings}
  RETURN OLD;
END $$
