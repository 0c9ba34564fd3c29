CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  head {heads}%ROWTYPE;
BEGIN
  SELECT * INTO head FROM {heads} WHERE {key} = NEW.{key} FOR UPDATE;
{checks}
  RETURN NEW;
END $$
