CREATE FUNCTION bar_line_advance_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE bar_heads SET last_seq = NEW.seq, last_hash = NEW.hash WHERE site_id = NEW.site_id;
  RETURN NULL;
END $$
