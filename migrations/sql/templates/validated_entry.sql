CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
{declare}
BEGIN
  IF OLD.number IS NOT NULL THEN
    RAISE EXCEPTION 'ledger: validated entry % cannot be {refused}; post a reversing entry instead', OLD.number
      USING ERRCODE = '23001';
  END IF;
{checks}
  RETURN {row};
END $$
