-- template: locked_head
-- heads: bar_heads
-- key: site_id
-- checks:
  IF NOT FOUND OR NEW.prev_hash <> head.last_closing_hash THEN
    RAISE EXCEPTION 'bar: closing % is not chained to the previous closing', NEW.period USING ERRCODE = '23514';
  END IF;
  IF NEW.kind = 'day' AND head.closed_through IS NOT NULL AND NEW.end_date < head.closed_through THEN
    RAISE EXCEPTION 'bar: the day % is already closed', NEW.end_date USING ERRCODE = '23514';
  END IF;
