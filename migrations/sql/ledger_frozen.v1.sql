CREATE FUNCTION ledger_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'ledger: % rows are append-only', TG_TABLE_NAME USING ERRCODE = '23001';
END $$
