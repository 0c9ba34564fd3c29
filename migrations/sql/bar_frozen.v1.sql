CREATE FUNCTION bar_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'bar: % rows are never changed or deleted; record a cancelling line instead', TG_TABLE_NAME
    USING ERRCODE = '23001';
END $$
