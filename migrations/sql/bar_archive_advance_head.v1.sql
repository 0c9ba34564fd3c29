CREATE FUNCTION bar_archive_advance_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE bar_heads SET last_archive_hash = NEW.hash WHERE site_id = NEW.site_id;
  RETURN NULL;
END $$
