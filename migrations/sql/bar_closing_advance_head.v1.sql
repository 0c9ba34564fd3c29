CREATE FUNCTION bar_closing_advance_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE bar_heads SET last_closing_hash = NEW.hash,
    closed_through = CASE WHEN NEW.kind = 'day' THEN NEW.end_date ELSE closed_through END
  WHERE site_id = NEW.site_id;
  RETURN NULL;
END $$
