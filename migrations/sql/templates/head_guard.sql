CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION '{head} cannot be deleted' USING ERRCODE = '23001';
  END IF;
  IF {backwards} THEN
    RAISE EXCEPTION '{head} only moves forward' USING ERRCODE = '23001';
  END IF;
  RETURN NEW;
END $$
