-- template: locked_head
-- heads: bar_heads
-- key: site_id
-- seq: seq
-- no_head: bar: site % has no till
-- gap: bar: sale line % breaks the gap-free sequence (next is %)
-- unchained: bar: sale line % is not chained to the previous line
-- checks:
{chained_row}
  IF head.closed_through IS NOT NULL AND NEW.day < head.closed_through THEN
    RAISE EXCEPTION 'bar: the day % is closed', NEW.day USING ERRCODE = '23514';
  END IF;
