CREATE FUNCTION bar_archive_insert_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.prev_hash <> (SELECT last_archive_hash FROM bar_heads WHERE site_id = NEW.site_id FOR UPDATE) THEN
    RAISE EXCEPTION 'bar: archive % is not chained to the previous archive', NEW.period USING ERRCODE = '23514';
  END IF;
  RETURN NEW;
END $$
