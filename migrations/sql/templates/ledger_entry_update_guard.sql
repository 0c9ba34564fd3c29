CREATE FUNCTION ledger_entry_update_guard() RETURNS trigger LANGUAGE plpgsql AS $$
{declare}
BEGIN
  IF OLD.number IS NOT NULL THEN
    RAISE EXCEPTION 'ledger: validated entry % cannot be modified; post a reversing entry instead', OLD.number
      USING ERRCODE = '23001';
  END IF;
{keeps}
  IF NEW.number IS NULL THEN
    RETURN NEW;
  END IF;
{head}
  IF NEW.entry_date > NEW.validated_at::date THEN
    RAISE EXCEPTION 'ledger: an entry cannot be validated before its date' USING ERRCODE = '23514';
  END IF;
{postings}
  RETURN NEW;
END $$
